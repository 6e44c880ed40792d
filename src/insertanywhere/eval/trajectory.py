"""Camera and object trajectory errors of an output ``track.json`` against GT cameras and object poses.

All three measures are independent of the reconstruction's gauge (its world frame and,
for the first, its scale):

* ``rotation_error_deg``: per frame, the angle between the estimated and the GT relative
  rotation from camera 0 to camera t (``R_t R_0^T`` of ``cam_from_world``), averaged.
* ``ate``: absolute trajectory error of the camera centres after a Sim(3) Umeyama
  alignment (Sturm et al., IROS 2012), RMSE in GT units (metres); undefined when the GT
  centres do not spread (static or tripod camera).
* ``contact_px``: per frame, the pixel distance between the object origin (its contact
  point) projected with the estimated camera and pose and the same with the GT ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from insertanywhere.conventions import Camera, ObjectTrack
from insertanywhere.geometry.rigid import umeyama

MIN_CENTRE_SPREAD = 1e-3
"""GT camera centres spreading less than this (scene units, RMS) make the ATE undefined."""


@dataclass
class TrajectoryScores:
    """Per-frame trajectory errors (None where undefined) and the aligned centres for plots.

    Attributes:
        rotation_error_deg: (T,) relative-rotation error per frame, degrees.
        contact_px: per-frame contact-point error in pixels, None where a pose is missing or behind a camera.
        ate_rmse: camera-centre RMSE after Sim(3) alignment, GT units; None when undefined.
        estimated_centres_aligned: (T, 3) estimated centres mapped into the GT world, or None.
        gt_centres: (T, 3) GT camera centres in the GT world.
    """

    rotation_error_deg: np.ndarray
    contact_px: list[float | None]
    ate_rmse: float | None
    estimated_centres_aligned: np.ndarray | None
    gt_centres: np.ndarray

    def summary(self) -> dict[str, float | None]:
        contact = [c for c in self.contact_px if c is not None]
        return {
            "rotation_error_deg_mean": float(np.mean(self.rotation_error_deg))
            if len(self.rotation_error_deg)
            else None,
            "ate_rmse": self.ate_rmse,
            "contact_px_mean": float(np.mean(contact)) if contact else None,
            "contact_px_max": float(np.max(contact)) if contact else None,
        }


def rotation_angle_deg(rotation: np.ndarray) -> float:
    """Angle in degrees of a (3, 3) rotation matrix."""
    cosine = (np.trace(rotation) - 1.0) / 2.0
    return math.degrees(math.acos(float(np.clip(cosine, -1.0, 1.0))))


def relative_rotation_errors(estimated: list[Camera], gt: list[Camera]) -> np.ndarray:
    """(T,) float64 degrees between estimated and GT rotations from camera 0 to camera t."""
    est_0 = estimated[0].cam_from_world[:3, :3]
    gt_0 = gt[0].cam_from_world[:3, :3]
    errors = []
    for est_t, gt_t in zip(estimated, gt, strict=True):
        est_rel = est_t.cam_from_world[:3, :3] @ est_0.T
        gt_rel = gt_t.cam_from_world[:3, :3] @ gt_0.T
        errors.append(rotation_angle_deg(est_rel @ gt_rel.T))
    return np.asarray(errors, dtype=np.float64)


def aligned_centres(estimated: list[Camera], gt: list[Camera]) -> tuple[np.ndarray | None, np.ndarray, float | None]:
    """Sim(3)-align the estimated camera centres onto the GT ones.

    Returns:
        (aligned estimated centres (T, 3) or None, GT centres (T, 3), ATE RMSE or None).
    """
    gt_centres = np.stack([c.center_world for c in gt])
    est_centres = np.stack([c.center_world for c in estimated])
    spread = math.sqrt(float(np.mean(np.sum((gt_centres - gt_centres.mean(0)) ** 2, axis=1))))
    if len(gt_centres) < 3 or spread < MIN_CENTRE_SPREAD:
        return None, gt_centres, None
    gt_from_est = umeyama(est_centres, gt_centres, with_scale=True)
    aligned = est_centres @ gt_from_est[:3, :3].T + gt_from_est[:3, 3]
    rmse = math.sqrt(float(np.mean(np.sum((aligned - gt_centres) ** 2, axis=1))))
    return aligned, gt_centres, rmse


def contact_pixel(camera: Camera, world_from_object: np.ndarray | None) -> np.ndarray | None:
    """(2,) pixel (x, y) of the object origin, or None without a pose or behind the camera."""
    if world_from_object is None:
        return None
    pixels, depth = camera.project(np.asarray(world_from_object)[:3, 3][None])
    if depth[0] <= 0:
        return None
    return pixels[0]


def score_trajectory(
    estimated: ObjectTrack, gt_cameras: list[Camera], gt_world_from_object: list[np.ndarray | None]
) -> TrajectoryScores:
    """Compare an output track with GT.

    Args:
        estimated: the output's ``track.json`` (cameras and world_from_object per frame).
        gt_cameras: GT cameras, one per frame (``gt/cameras.json``).
        gt_world_from_object: GT (4, 4) object poses per frame (``gt/object_poses.json``), None if unknown.

    Raises:
        ValueError: when the frame counts differ.
    """
    if len(estimated.frames) != len(gt_cameras):
        raise ValueError(f"track has {len(estimated.frames)} frames, GT has {len(gt_cameras)}")
    estimated_cameras = estimated.cameras
    aligned, gt_centres, ate = aligned_centres(estimated_cameras, gt_cameras)
    contact: list[float | None] = []
    for frame, gt_camera, gt_pose in zip(estimated.frames, gt_cameras, gt_world_from_object, strict=True):
        est_px = contact_pixel(frame.camera, frame.world_from_object)
        gt_px = contact_pixel(gt_camera, gt_pose)
        contact.append(None if est_px is None or gt_px is None else float(np.linalg.norm(est_px - gt_px)))
    return TrajectoryScores(
        rotation_error_deg=relative_rotation_errors(estimated_cameras, gt_cameras),
        contact_px=contact,
        ate_rmse=ate,
        estimated_centres_aligned=aligned,
        gt_centres=gt_centres,
    )
