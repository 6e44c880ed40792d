"""Stage 5: dynamic regions, where the observed flow disagrees with the flow that the camera's
rigid motion induces on the static scene (the motion-segmentation cue of Uni4D, sec. 3.2, and of
classic plane+parallax methods), with spatio-temporal hysteresis.

For each pair (t, t+1) the rigid flow of pixel x is ``pi(K, T_{t+1} T_t^-1 (z_t(x) K^-1 x)) - x``; for
a static or rotating camera it does not depend on depth (a homography). The residual
``|flow - rigid_flow|`` is normalised by ``sigma + relative * |rigid_flow|`` (flow error grows with
motion), then thresholded with hysteresis over the (T, h, w) volume: strong seeds grow into
connected weak evidence in space *and time*, so a mover that pauses a frame keeps its mask.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np
from scipy import ndimage

from insertanywhere.progress import Progress, null_progress
from insertanywhere.scene.flow import fb_consistency


@dataclass
class ResidualConfig:
    """Thresholds on the normalised flow residual (working-resolution pixels)."""

    sigma_px: float = 0.6
    relative: float = 0.08
    low: float = 1.5
    high: float = 3.0
    min_area_fraction: float = 0.0015
    close_px: int = 3
    parallax_tolerance: float = 0.3


def pixel_rays(width: int, height: int, K: np.ndarray) -> np.ndarray:
    """(h, w, 3) float32 camera rays with z = 1 through the pixel centres."""
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32) + 0.5, np.arange(height, dtype=np.float32) + 0.5)
    return (np.stack([xs, ys, np.ones_like(xs)], axis=-1) @ np.linalg.inv(K).T.astype(np.float32)).astype(np.float32)


def rigid_flow(
    depth: np.ndarray,
    K: np.ndarray,
    cam_from_world_a: np.ndarray,
    cam_from_world_b: np.ndarray,
    rays: np.ndarray | None = None,
) -> np.ndarray:
    """Flow that the camera motion a -> b induces on static pixels.

    Args:
        depth: (h, w) float32 z-depth in camera a (scene units); 0/unknown pixels are treated as
            far (their flow is the rotation's homography).
        K: (3, 3) intrinsics at this resolution.
        cam_from_world_a, cam_from_world_b: (4, 4).
        rays: optional precomputed ``pixel_rays`` (h, w, 3).

    Returns:
        (h, w, 2) float32 displacement in pixels from a to b.
    """
    return _rigid_and_rotation_flow(depth, K, cam_from_world_a, cam_from_world_b, rays)[0]


def _rigid_and_rotation_flow(
    depth: np.ndarray,
    K: np.ndarray,
    cam_from_world_a: np.ndarray,
    cam_from_world_b: np.ndarray,
    rays: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``rigid_flow`` and the flow of the same motion at infinite depth (the rotation's homography), both
    (h, w, 2) float32, from one projection of the rays (flat BLAS products, no per-pixel matmul)."""
    height, width = depth.shape
    if rays is None:
        rays = pixel_rays(width, height, K)
    b_from_a = cam_from_world_b @ np.linalg.inv(cam_from_world_a)
    known = depth > 0
    inverse_depth = np.where(known, 1.0 / np.where(known, depth, 1.0), 0.0).astype(np.float32).reshape(-1)
    # Points in homogeneous form (ray, 1/z): works for the plane at infinity too. Project with K directly.
    projection = (K @ b_from_a[:3, :3]).astype(np.float32)
    offset = (K @ b_from_a[:3, 3]).astype(np.float32)
    planar_rays = np.ascontiguousarray(rays.reshape(-1, 3).T)  # (3, N): contiguous operands keep matmul on BLAS
    at_infinity = projection @ planar_rays  # (3, N)
    source = K[:2].astype(np.float32) @ planar_rays  # the pixel centres themselves (rays have z = 1)
    outputs = []
    for homogeneous in (at_infinity + offset[:, None] * inverse_depth[None, :], at_infinity):
        z = homogeneous[2]
        inv_z = 1.0 / np.where(np.abs(z) < 1e-9, np.float32(1e-9), z)
        flow = np.empty((height * width, 2), np.float32)
        flow[:, 0] = homogeneous[0] * inv_z - source[0]
        flow[:, 1] = homogeneous[1] * inv_z - source[1]
        outputs.append(flow.reshape(height, width, 2))
    return outputs[0], outputs[1]


def residual_score(
    flow: np.ndarray,
    flow_rigid: np.ndarray,
    config: ResidualConfig,
    parallax: np.ndarray | None = None,
    depth_confidence: np.ndarray | None = None,
) -> np.ndarray:
    """(h, w) float32 normalised residual
    ``|flow - rigid| / (sigma + relative |rigid| + parallax_tolerance |parallax| (1.2 - confidence))``.

    Args:
        flow, flow_rigid: (h, w, 2) float32 observed and rigid flow, pixels.
        parallax: optional (h, w, 2) translation-induced part of the rigid flow (rigid minus its value at
            infinite depth): an error in the interpolated depth scales it, so poorly supported depth
            (low ``depth_confidence`` (h, w) in [0, 1]) tolerates a larger residual.
    """
    difference = flow - flow_rigid
    residual = np.sqrt(difference[..., 0] ** 2 + difference[..., 1] ** 2)
    rigid_norm = np.sqrt(flow_rigid[..., 0] ** 2 + flow_rigid[..., 1] ** 2)
    tolerance = config.sigma_px + config.relative * rigid_norm
    if parallax is not None:
        parallax_norm = np.sqrt(parallax[..., 0] ** 2 + parallax[..., 1] ** 2)
        confidence = depth_confidence if depth_confidence is not None else np.zeros_like(parallax_norm)
        tolerance = tolerance + config.parallax_tolerance * parallax_norm * (1.2 - confidence)
    return (residual / tolerance).astype(np.float32)


def hysteresis_masks(scores: np.ndarray, config: ResidualConfig) -> np.ndarray:
    """(T, h, w) float32 scores -> (T, h, w) bool masks: 3D hysteresis, closing, small blobs removed."""
    # Hysteresis (as skimage's apply_hysteresis_threshold): components of the low mask, connected in space and
    # time, that contain a high seed; a lookup table instead of per-label sums.
    labels, n_labels = ndimage.label(scores > config.low)
    seeded = np.zeros(n_labels + 1, bool)
    seeded[np.unique(labels[scores > config.high])] = True
    seeded[0] = False
    masks = seeded[labels]
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * config.close_px + 1, 2 * config.close_px + 1))
    min_area = config.min_area_fraction * scores.shape[1] * scores.shape[2]
    cleaned = np.zeros_like(masks)
    for t, mask in enumerate(masks):
        closed = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE, kernel)
        _, labels, stats, _ = cv2.connectedComponentsWithStats(closed, connectivity=8)
        keep = np.nonzero(stats[:, cv2.CC_STAT_AREA] >= min_area)[0]
        keep = keep[keep > 0]
        cleaned[t] = np.isin(labels, keep)
    return cleaned


class DynamicBackend(Protocol):
    """Turns rigid-motion residual evidence (and the frames) into per-frame dynamic masks."""

    name: str

    def __call__(self, frames_work: list[np.ndarray], scores: np.ndarray, coarse_masks: np.ndarray) -> np.ndarray:
        """Args: frames (h, w, 3) uint8 at the working resolution; scores (T, h, w) float32 residual;
        coarse_masks (T, h, w) bool. Returns (T, h, w) bool masks."""


@dataclass
class ResidualDynamic:
    """The default: the hysteresis masks themselves."""

    name: str = "residual"

    def __call__(self, frames_work: list[np.ndarray], scores: np.ndarray, coarse_masks: np.ndarray) -> np.ndarray:
        return coarse_masks


DYNAMIC_BACKENDS: dict[str, Callable[..., DynamicBackend]] = {"residual": ResidualDynamic}


def residual_scores(
    flow_forward: np.ndarray,
    flow_backward: np.ndarray,
    depth: np.ndarray,
    K: np.ndarray,
    cam_from_world: np.ndarray,
    config: ResidualConfig,
    progress: Progress = null_progress,
    depth_confidence: np.ndarray | None = None,
    consistency: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Per-frame residual scores, forward flow for frames 0..T-2 and backward flow for the last frame;
    each frame takes the larger of its forward and backward evidence.

    Args:
        flow_forward, flow_backward: (T-1, h, w, 2) float32 working-resolution flows.
        depth: (T, h, w) float32 working-resolution z-depth (0 = unknown).
        K: (3, 3) working-resolution intrinsics; cam_from_world: (T, 4, 4).
        depth_confidence: optional (T, h, w) float32 in [0, 1] (see ``residual_score``).
        consistency: optional precomputed ``fb_consistency`` of the forward and of the backward flows, each
            (T-1, h, w) bool (``FlowStream`` computes them beside the flow); computed here when absent.

    Returns:
        (T, h, w) float32 scores.
    """
    n_frames = len(cam_from_world)
    scores = np.zeros(depth.shape, np.float32)
    rays = pixel_rays(depth.shape[2], depth.shape[1], K)

    def consistent(pair: int, forward: bool) -> np.ndarray:
        if consistency is not None:
            return consistency[0 if forward else 1][pair]
        if forward:
            return fb_consistency(flow_forward[pair], flow_backward[pair])
        return fb_consistency(flow_backward[pair], flow_forward[pair])

    def score_frame(t: int) -> None:
        confidence = depth_confidence[t] if depth_confidence is not None else None
        direction_scores, direction_valid = [], []
        for other, pair, forward in ((t + 1, t, True), (t - 1, t - 1, False)):
            if not 0 <= other < n_frames:
                continue
            flow = flow_forward[pair] if forward else flow_backward[pair]
            rigid, rotation_only = _rigid_and_rotation_flow(depth[t], K, cam_from_world[t], cam_from_world[other], rays)
            parallax = rigid - rotation_only
            direction_scores.append(residual_score(flow, rigid, config, parallax, confidence))
            # A pixel occluded in that direction has meaningless flow there (forward-backward test).
            direction_valid.append(consistent(pair, forward))
        stacked = np.stack(direction_scores)
        valid = np.stack(direction_valid)
        # The strongest evidence among directions where the pixel stays visible; where it is occluded in
        # every direction, the weakest (a disocclusion beside a mover is not itself moving).
        best_valid = np.max(np.where(valid, stacked, 0.0), axis=0)
        scores[t] = np.where(valid.any(axis=0), best_valid, stacked.min(axis=0))

    # Frames are independent and numpy's element-wise passes release the GIL: two threads use both cores.
    with ThreadPoolExecutor(max_workers=2) as pool:
        for done, _ in enumerate(pool.map(score_frame, range(n_frames))):
            progress("dynamic", done + 1, n_frames)
    return scores
