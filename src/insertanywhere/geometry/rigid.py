"""Rigid and similarity transforms between point sets (Kabsch / Umeyama), and rotation helpers."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation


def umeyama(source: np.ndarray, target: np.ndarray, with_scale: bool = True) -> np.ndarray:
    """Least-squares similarity (or rigid) transform mapping ``source`` onto ``target``.

    Umeyama, "Least-squares estimation of transformation parameters between two point
    patterns", PAMI 1991, eqs. 34-43 (Kabsch when ``with_scale`` is False).

    Args:
        source: (N, 3) points in frame a.
        target: (N, 3) corresponding points in frame b.

    Returns:
        (4, 4) float64 ``b_from_a`` = [s R | t].
    """
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    mu_s, mu_t = source.mean(0), target.mean(0)
    src, tgt = source - mu_s, target - mu_t
    covariance = tgt.T @ src / len(source)
    u, d, vt = np.linalg.svd(covariance)
    sign = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[2, 2] = -1
    rotation = u @ sign @ vt
    scale = 1.0
    if with_scale:
        variance = (src**2).sum() / len(source)
        scale = float(np.trace(np.diag(d) @ sign) / max(variance, 1e-300))
    transform = np.eye(4)
    transform[:3, :3] = scale * rotation
    transform[:3, 3] = mu_t - scale * rotation @ mu_s
    return transform


def kabsch_ransac(
    source: np.ndarray, target: np.ndarray, threshold: float, rng: np.random.Generator, iterations: int = 100
) -> tuple[np.ndarray, np.ndarray]:
    """Robust rigid fit: RANSAC over 3-point Kabsch hypotheses, refit on the inliers.

    Args:
        source, target: (N, 3) corresponding points.
        threshold: inlier distance (target units).

    Returns:
        (4, 4) ``target_from_source`` and an (N,) bool inlier mask.
    """
    n = len(source)
    best = np.zeros(n, dtype=bool)
    for idx in rng.integers(0, n, size=(iterations, 3)):
        if len(set(idx.tolist())) < 3:
            continue
        transform = umeyama(source[idx], target[idx], with_scale=False)
        residual = np.linalg.norm(source @ transform[:3, :3].T + transform[:3, 3] - target, axis=1)
        inliers = residual < threshold
        if inliers.sum() > best.sum():
            best = inliers
    if best.sum() < 3:
        best = np.ones(n, dtype=bool)
    transform = umeyama(source[best], target[best], with_scale=False)
    return transform, best


def rotation_about_axis(axis: np.ndarray, angle_rad: float) -> np.ndarray:
    """(3, 3) rotation by ``angle_rad`` about the unit ``axis`` (right-handed)."""
    axis = np.asarray(axis, dtype=np.float64)
    return Rotation.from_rotvec(axis / np.linalg.norm(axis) * angle_rad).as_matrix()


def _local_linear_value(offsets: np.ndarray, weights: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Value at offset 0 of the weighted least-squares line through (offsets, values (n, d))."""
    if np.count_nonzero(weights) < 3 or np.ptp(offsets[weights > 0]) == 0:
        return (values * weights[:, None]).sum(0) / weights.sum()
    design = np.stack([np.ones_like(offsets), offsets], axis=1) * np.sqrt(weights)[:, None]
    coefficients, *_ = np.linalg.lstsq(design, values * np.sqrt(weights)[:, None], rcond=None)
    return coefficients[0]


def smooth_poses(poses: np.ndarray, sigma_frames: float, valid: np.ndarray | None = None) -> np.ndarray:
    """Zero-lag temporal smoothing of (T, 4, 4) rigid poses.

    A Gaussian-weighted local *linear* fit around each frame (LOESS of degree 1):
    two-sided, so there is no lag, and exact on constant-velocity motion even at
    the clip's ends, where a plain truncated Gaussian would pull toward the inside.
    Rotations are fitted as rotation vectors relative to each frame's own rotation
    (exact for small neighbourhoods), translations linearly. Frames with ``valid``
    False get no weight as neighbours.
    """
    poses = np.asarray(poses, dtype=np.float64)
    count = len(poses)
    if sigma_frames <= 0 or count < 3:
        return poses.copy()
    valid = np.ones(count, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    radius = int(np.ceil(3 * sigma_frames))
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma_frames) ** 2)
    rotations = Rotation.from_matrix(poses[:, :3, :3])
    out = poses.copy()
    for t in range(count):
        idx = t + offsets
        keep = (idx >= 0) & (idx < count)
        idx, w, off = idx[keep], kernel[keep], offsets[keep].astype(np.float64)
        w = w * valid[idx]
        if w.sum() <= 0:
            continue
        relative = (rotations[t].inv() * rotations[idx]).as_rotvec()
        rotvec = _local_linear_value(off, w, relative)
        out[t, :3, :3] = (rotations[t] * Rotation.from_rotvec(rotvec)).as_matrix()
        out[t, :3, 3] = _local_linear_value(off, w, poses[idx, :3, 3])
    return out


def pnp_refined(
    object_points: np.ndarray,
    image_points: np.ndarray,
    K: np.ndarray,
    guess: np.ndarray,
    reprojection_px: float,
    min_inliers: int,
) -> tuple[np.ndarray, np.ndarray] | None:
    """A camera pose from 3D-2D matches: OpenCV's RANSAC PnP seeded with ``guess``, then Levenberg-Marquardt
    on the inliers.

    Args:
        object_points: (N, 3) float64 points (any frame, scene units); image_points: (N, 2) float64 pixels
            (pixel-corner origin, the project's convention; PnP is invariant to it given a matching K).
        K: (3, 3) intrinsics; guess: (4, 4) initial cam_from_points pose.
        reprojection_px: RANSAC inlier threshold, pixels; min_inliers: fewer inliers means failure.

    Returns:
        (4, 4) float64 cam_from_points pose and the (M,) reprojection errors (px) of its inliers, or None.
    """
    import cv2

    object_points = np.asarray(object_points, np.float64)
    image_points = np.asarray(image_points, np.float64)
    rvec0, _ = cv2.Rodrigues(guess[:3, :3])
    tvec0 = guess[:3, 3].reshape(3, 1).copy()
    ok, rvec, tvec, inliers = cv2.solvePnPRansac(
        object_points,
        image_points,
        K,
        None,
        rvec=rvec0.copy(),
        tvec=tvec0.copy(),
        useExtrinsicGuess=True,
        iterationsCount=60,
        reprojectionError=reprojection_px,
        confidence=0.995,
        flags=cv2.SOLVEPNP_ITERATIVE,
    )
    if not ok or inliers is None or len(inliers) < min_inliers:
        return None
    inliers = inliers[:, 0]
    rvec, tvec = cv2.solvePnPRefineLM(object_points[inliers], image_points[inliers], K, None, rvec, tvec)
    pose = np.eye(4)
    pose[:3, :3] = cv2.Rodrigues(rvec)[0]
    pose[:3, 3] = tvec[:, 0]
    projected = object_points[inliers] @ pose[:3, :3].T + pose[:3, 3]
    projected = projected @ K.T
    errors = np.linalg.norm(projected[:, :2] / projected[:, 2:] - image_points[inliers], axis=1)
    return pose, errors


def keep_upright(motions: np.ndarray, axis: np.ndarray, pivot: np.ndarray) -> np.ndarray:
    """Rigid motions with their rotation reduced to its twist about ``axis``, moving ``pivot`` as before.

    Swing-twist decomposition ``R = R_swing R_twist``: the twist is the quaternion's part along the axis.
    A support that slides and turns on a floor (a cart, a tray on a table) keeps its normal; tracking a
    small, nearly planar patch leaves its tilt poorly constrained, and a tilted estimate topples what stands
    on it.

    Args:
        motions: (T, 4, 4) rigid motions (world -> world).
        axis: (3,) unit axis in world coordinates (the support's normal).
        pivot: (3,) world point whose motion is kept (the object's contact).

    Returns:
        (T, 4, 4) motions whose rotations are about ``axis`` only.
    """
    quaternions = Rotation.from_matrix(motions[:, :3, :3]).as_quat()  # (x, y, z, w)
    along = quaternions[:, :3] @ axis
    twist = np.concatenate([along[:, None] * axis[None], quaternions[:, 3:]], axis=1)
    norm = np.linalg.norm(twist, axis=1, keepdims=True)
    twist = np.where(norm > 1e-12, twist / np.maximum(norm, 1e-12), np.array([0.0, 0.0, 0.0, 1.0]))
    upright = np.tile(np.eye(4), (len(motions), 1, 1))
    upright[:, :3, :3] = Rotation.from_quat(twist).as_matrix()
    moved_pivot = motions[:, :3, :3] @ pivot + motions[:, :3, 3]
    upright[:, :3, 3] = moved_pivot - upright[:, :3, :3] @ pivot
    return upright
