"""Re-registration of a moving support to the placement frame (removes the drift of chained tracking).

Frame-to-frame scene flow composes small errors: over 80 frames a tray's estimated pose drifts by
several pixels and the object slowly slides and grows against the truth. Each frame's estimate is
therefore corrected against the placement frame itself, where the support's 3D points are known:

1. the support disk's plane induces a homography from the placement image to frame t under the current
   estimate; the placement image is warped by it, so what remains between the warped image and frame t is
   only the estimate's error (a few pixels), whatever the change of viewpoint or the tray's turn;
2. pyramidal Lucas-Kanade (OpenCV) finds that residual at the grid points, checked forward-backward;
3. PnP (RANSAC, then Levenberg-Marquardt) from the grid's placement-frame 3D points to the corrected
   pixels gives the support's absolute motion at t.

A frame whose correction is unreliable (too few consistent points, large residual) keeps its chained
estimate. This is direct image alignment with a plane prior, as in keyframe-based trackers (PTAM, ORB-SLAM
relocalisation); no library offers it for a rigid plane moving under a moving camera, so it is written here
from OpenCV's building blocks.
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from insertanywhere.conventions import Camera, transform_points
from insertanywhere.geometry.rigid import pnp_refined, rotation_about_axis, umeyama

MIN_POINTS = 20
FB_TOLERANCE_PX = 0.5
MAX_MEDIAN_ERROR_PX = 1.0
MAX_CORRECTION_PX = 15.0
"""Corrections larger than this are not drift but a failed alignment (the estimate is kept)."""
MAX_ROLL_DEG = 5.0
"""A still support's image turning further than this in one frame's correction is a failed alignment."""
MAX_POINTS = 160
"""Grid points aligned per frame (an even subset): PnP needs far fewer, LK costs per point."""
CROP_MARGIN_PX = 72
"""Margin around the grid's pixels of the crop that is aligned: LK's search at pyramid level 2 reaches
(15 / 2 + MAX_CORRECTION_PX / 4) * 4 = 45 px, plus the borders its pyramid needs."""
LK_PARAMS = {
    "winSize": (15, 15),
    "maxLevel": 2,
    "criteria": (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01),
    "minEigThreshold": 1e-3,
}


def _visible(camera: Camera, points: np.ndarray, width: int, height: int, margin: float = 12.0) -> np.ndarray:
    pixels, z = camera.project(points)
    return (
        (z > 0)
        & (pixels[:, 0] >= margin)
        & (pixels[:, 0] < width - margin)
        & (pixels[:, 1] >= margin)
        & (pixels[:, 1] < height - margin)
    )


def _align(
    anchor_gray: np.ndarray,
    anchor_camera: Camera,
    gray: np.ndarray,
    camera: Camera,
    grid: np.ndarray,
    motion: np.ndarray,
    usable: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Where the support's grid points really are in frame t, near where ``motion`` puts them.

    Returns:
        (M, 3) world grid points (placement frame), (M, 2) float64 pixels found in frame t and (M, 2)
        float64 pixels predicted by ``motion``; None when fewer than MIN_POINTS align.
    """
    height, width = gray.shape
    moved = transform_points(motion, grid)
    keep = usable & _visible(anchor_camera, grid, width, height) & _visible(camera, moved, width, height)
    if keep.sum() < MIN_POINTS:
        return None
    if keep.sum() > MAX_POINTS:
        chosen = np.flatnonzero(keep)[np.linspace(0, keep.sum() - 1, MAX_POINTS).astype(int)]
        keep = np.zeros_like(keep)
        keep[chosen] = True
    source, _ = anchor_camera.project(grid[keep])
    predicted, _ = camera.project(moved[keep])
    homography, _ = cv2.findHomography(source - 0.5, predicted - 0.5, 0)  # OpenCV: pixel centres at integers
    if homography is None:
        return None
    # Only the grid's neighbourhood is aligned: LK's pyramid and the warp on the whole frame cost 5-10 times more.
    x0, y0 = np.maximum(np.floor(predicted.min(axis=0)).astype(int) - CROP_MARGIN_PX, 0)
    x1, y1 = np.minimum(np.ceil(predicted.max(axis=0)).astype(int) + CROP_MARGIN_PX, [width, height])
    to_crop = np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0], [0.0, 0.0, 1.0]])
    warped = cv2.warpPerspective(anchor_gray, to_crop @ homography, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR)
    crop = np.ascontiguousarray(gray[y0:y1, x0:x1])
    offset = np.array([x0, y0], np.float32)
    start = (predicted - 0.5 - offset).astype(np.float32).reshape(-1, 1, 2)  # OpenCV: pixel centres at integers
    found, status, _ = cv2.calcOpticalFlowPyrLK(
        warped, crop, start, start.copy(), flags=cv2.OPTFLOW_USE_INITIAL_FLOW, **LK_PARAMS
    )
    back, status_back, _ = cv2.calcOpticalFlowPyrLK(
        crop, warped, found, start.copy(), flags=cv2.OPTFLOW_USE_INITIAL_FLOW, **LK_PARAMS
    )
    found, back, start = found[:, 0] + offset, back[:, 0] + offset, start[:, 0] + offset
    good = (status[:, 0] == 1) & (status_back[:, 0] == 1) & (np.linalg.norm(back - start, axis=1) < FB_TOLERANCE_PX)
    good &= np.linalg.norm(found - start, axis=1) < MAX_CORRECTION_PX
    if good.sum() < MIN_POINTS:
        return None
    return grid[keep][good], (found[good] + 0.5).astype(np.float64), predicted[good].astype(np.float64)


def register_frame(
    anchor_gray: np.ndarray,
    anchor_camera: Camera,
    gray: np.ndarray,
    camera: Camera,
    grid: np.ndarray,
    motion: np.ndarray,
    usable: np.ndarray,
) -> np.ndarray | None:
    """The support's absolute motion at one frame, aligned to the placement frame, or None.

    Args:
        anchor_gray: (H, W) uint8 placement frame; anchor_camera: its camera.
        gray: (H, W) uint8 frame t; camera: its camera.
        grid: (N, 3) world points of the support disk at the placement frame (scene units).
        motion: (4, 4) current estimate of the support's world motion from the placement frame to t.
        usable: (N,) bool grid points that see the support in the placement frame.

    Returns:
        (4, 4) float64 corrected world motion, or None when the alignment is not reliable.
    """
    aligned = _align(anchor_gray, anchor_camera, gray, camera, grid, motion, usable)
    if aligned is None:
        return None
    object_points, image_points, _ = aligned
    solved = pnp_refined(object_points, image_points, camera.K, camera.cam_from_world @ motion, 1.5, MIN_POINTS)
    if solved is None or float(np.median(solved[1])) > MAX_MEDIAN_ERROR_PX:
        return None
    return camera.world_from_cam @ solved[0]


def reregister(
    frames: Iterable[np.ndarray],
    anchor_gray: np.ndarray,
    cameras: list[Camera],
    anchor_frame: int,
    grid: np.ndarray,
    usable: np.ndarray,
    motion: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Correct every frame's support motion against the placement frame (streams the frames once).

    Args:
        frames: the clip's (H, W) uint8 grey frames in order.
        anchor_gray: (H, W) uint8 grey placement frame.
        cameras: every frame's Camera.
        anchor_frame: the placement frame index.
        grid: (N, 3) support disk at the placement frame (world, scene units); usable: (N,) bool.
        motion: (T, 4, 4) chained estimate of the support's world motion from the placement frame.

    Returns:
        (T, 4, 4) corrected motion and (T,) bool frames that were re-registered.
    """
    corrected = np.array(motion, dtype=np.float64, copy=True)
    registered = np.zeros(len(motion), dtype=bool)
    registered[anchor_frame] = True
    for t, gray in enumerate(frames):
        if t == anchor_frame or t >= len(motion):
            continue
        result = register_frame(anchor_gray, cameras[anchor_frame], gray, cameras[t], grid, motion[t], usable)
        if result is not None:
            corrected[t], registered[t] = result, True
    return corrected, registered


def _image_shift_and_roll(
    camera: Camera, contact: np.ndarray, predicted: np.ndarray, found: np.ndarray
) -> np.ndarray | None:
    """(4, 4) world motion that moves the image of a still support from ``predicted`` to ``found`` pixels
    (M, 2) by a shift and an in-plane turn about the contact's image, or None for an implausible turn.

    The shift moves the contact (3,) (world) at its own depth in this frame; the turn is about the ray through
    it. A rotation model fitted to the background (or a general model's drifting cameras and depth) turns and
    shifts a nearer support's image a little (the camera's translation, seen as parallax): on the synthetic
    moving_occluder the vase ends 2 px to the side at its top and level at its foot when only the shift is
    corrected.

    The points beyond three times the median residual of a rigid fit are dropped (twice), then a 2D
    least-squares affine map about the contact's image is fitted to the rest; the shift is its displacement at
    the contact and the turn its dy/dx term. The rigid (Kabsch) fit alone gave the grid's mean displacement
    and read the turn from both cross terms: a floor seen at a grazing angle under a translating camera has a
    parallax that grows with depth (a shear and a vertical stretch across the disk), and where a passing
    occluder hid part of the disk, the surviving points' mean moved away from the contact's own displacement
    (moving_occluder, with the floor tilted by the scene's verticals: the vase 1.2 px low and leaning after the
    panel passed; object PSNR 25.1 -> 26.1 dB).
    """
    pixels, z = camera.project(contact[None])
    centre, depth = pixels[0], z[0]
    source, target = predicted - centre, found - centre
    keep = np.ones(len(source), bool)
    for _ in range(2):  # outliers by a rigid fit: an affine one would bend toward an occluder's edge
        rigid = umeyama(
            np.c_[source[keep], np.zeros(keep.sum())], np.c_[target[keep], np.zeros(keep.sum())], with_scale=False
        )
        residual = np.linalg.norm(source @ rigid[:2, :2].T + rigid[:2, 3] - target, axis=1)
        keep = residual <= 3.0 * max(float(np.median(residual)), 0.1)
        if keep.sum() < MIN_POINTS:
            return None
    design = np.c_[source[keep], np.ones(keep.sum())]
    affine, *_ = np.linalg.lstsq(design, target[keep], rcond=None)  # (3, 2): target = [source, 1] @ affine
    # The turn is read from how the vertical displacement changes along x (d target_y / d source_x), and the
    # shift is the fitted displacement of the contact itself (the coordinates are centred on it).
    angle = float(np.arcsin(np.clip(affine[0, 1], -1.0, 1.0)))
    shift = affine[2]
    if abs(angle) > np.radians(MAX_ROLL_DEG):
        return None
    moved = camera.unproject((centre + shift)[None], np.array([depth]))[0]
    turn = np.eye(4)
    turn[:3, :3] = rotation_about_axis(moved - camera.center_world, angle)
    turn[:3, 3] = moved - turn[:3, :3] @ contact
    return turn


def follow_drift(
    frames: Iterable[np.ndarray],
    cameras: list[Camera],
    anchor_frame: int,
    grid: np.ndarray,
    contact: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Motions of a still support that keep it on its image under a moving camera: a shift and a turn.

    Each frame is aligned to the placement frame (as ``register_frame``) starting from its neighbour's
    result, outward from the placement frame, so a drift that grows slowly is followed beyond
    MAX_CORRECTION_PX. The correction is a shift of the contact's image and a turn about it, read from the grid
    points' image (``_image_shift_and_roll``): three degrees of freedom, not PnP's six, because the disk of a
    support seen at a grazing angle is nearly a line in the image. Streams the frames once; only the frames before the
    placement frame are held.

    Args:
        frames: the clip's (H, W) uint8 grey frames in order.
        cameras: every frame's Camera.
        grid: (N, 3) support disk at the placement frame (world);
        contact: (3,) the object's contact point (world).

    Returns:
        (T, 4, 4) world motions from the placement frame and (T,) bool frames that aligned.
    """
    count = len(cameras)
    motion = np.tile(np.eye(4), (count, 1, 1))
    aligned_frames = np.zeros(count, bool)
    aligned_frames[anchor_frame] = True
    usable = np.ones(len(grid), bool)
    anchor_camera = cameras[anchor_frame]
    anchor_gray: np.ndarray | None = None
    before: list[np.ndarray] = []

    def step(t: int, gray: np.ndarray, last: np.ndarray) -> np.ndarray:
        assert anchor_gray is not None
        aligned = _align(anchor_gray, anchor_camera, gray, cameras[t], grid, last, usable)
        if aligned is not None:
            _, found, predicted = aligned
            correction = _image_shift_and_roll(cameras[t], transform_points(last, contact[None])[0], predicted, found)
            if correction is not None:
                last = correction @ last
                aligned_frames[t] = True
        motion[t] = last
        return last

    last = np.eye(4)
    for t, gray in enumerate(frames):
        if t >= count:
            break
        if t < anchor_frame:
            before.append(gray)
        elif t == anchor_frame:
            anchor_gray = gray
        else:
            last = step(t, gray, last)
    if anchor_gray is None:
        return motion, np.zeros(count, bool)
    last = np.eye(4)
    for t in range(len(before) - 1, -1, -1):
        last = step(t, before[t], last)
    return motion, aligned_frames
