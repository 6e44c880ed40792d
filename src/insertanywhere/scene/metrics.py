"""Accuracy measures of a reconstruction against ground truth (tests and benchmarks)."""

from __future__ import annotations

import numpy as np

from insertanywhere.geometry.rigid import umeyama


def umeyama_sim3(source: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Similarity ``target ~ s R source + t`` by least squares (Umeyama, PAMI 1991;
    ``insertanywhere.geometry.rigid.umeyama``).

    Args:
        source, target: (N, 3) corresponding points.

    Returns:
        scale s, rotation R (3, 3), translation t (3,).
    """
    if np.allclose(source, source.mean(axis=0)):  # no spread: no scale or rotation to recover
        return 1.0, np.eye(3), target.mean(axis=0) - source.mean(axis=0)
    target_from_source = umeyama(source, target, with_scale=True)
    scale = float(np.cbrt(np.linalg.det(target_from_source[:3, :3])))
    return scale, target_from_source[:3, :3] / scale, target_from_source[:3, 3]


def camera_centers(cam_from_world: np.ndarray) -> np.ndarray:
    """(T, 4, 4) cam_from_world -> (T, 3) camera centres in the world frame."""
    rotations = cam_from_world[:, :3, :3]
    return -np.einsum("tji,tj->ti", rotations, cam_from_world[:, :3, 3])


def ate_percent(estimated_cam_from_world: np.ndarray, true_cam_from_world: np.ndarray) -> dict[str, float]:
    """Absolute trajectory error after Sim(3) alignment of camera centres.

    Returns ``{"ate_rmse": in GT units, "trajectory_length": GT units, "ate_percent": rmse / length * 100}``;
    for a (near) static GT trajectory the percentage is reported against 1 GT unit.
    """
    estimated = camera_centers(estimated_cam_from_world)
    truth = camera_centers(true_cam_from_world)
    length = float(np.sum(np.linalg.norm(np.diff(truth, axis=0), axis=1)))
    if np.ptp(estimated, axis=0).max() < 1e-9 or np.ptp(truth, axis=0).max() < 1e-9:
        aligned = estimated - estimated.mean(axis=0) + truth.mean(axis=0)
    else:
        scale, rotation, translation = umeyama_sim3(estimated, truth)
        aligned = scale * estimated @ rotation.T + translation
    rmse = float(np.sqrt(np.mean(np.sum((aligned - truth) ** 2, axis=1))))
    return {"ate_rmse": rmse, "trajectory_length": length, "ate_percent": 100.0 * rmse / max(length, 1e-9)}


def _orthonormal(rotations: np.ndarray) -> np.ndarray:
    """(T, 3, 3) nearly-rotation matrices -> the nearest rotations (Frobenius, via SVD)."""
    u, _, vt = np.linalg.svd(rotations)
    fixed = u @ vt
    flip = np.linalg.det(fixed) < 0
    u[flip, :, -1] *= -1
    return np.where(flip[:, None, None], u @ vt, fixed)


def relative_rotation_error_deg(estimated_cam_from_world: np.ndarray, true_cam_from_world: np.ndarray) -> float:
    """Mean angle (degrees) between estimated and true relative rotations of consecutive frames.

    Rotations are first projected onto SO(3) (SVD): ground truth from RGB-D fusion (7-Scenes) is not
    exactly orthonormal, which would otherwise swamp sub-degree errors.
    """
    estimated = _orthonormal(estimated_cam_from_world[:, :3, :3])
    truth = _orthonormal(true_cam_from_world[:, :3, :3])
    errors = []
    for t in range(len(estimated) - 1):
        rel_est = estimated[t + 1] @ estimated[t].T
        rel_true = truth[t + 1] @ truth[t].T
        diff = rel_est @ rel_true.T
        errors.append(np.degrees(np.arccos(np.clip((np.trace(diff) - 1) / 2, -1.0, 1.0))))
    return float(np.mean(errors)) if errors else 0.0


def _abs_rel(estimated: np.ndarray, truth: np.ndarray) -> float:
    """Mean of |estimated - truth| / truth over (N,) matched depths."""
    return float(np.mean(np.abs(estimated - truth) / truth))


def depth_errors(estimated: np.ndarray, truth: np.ndarray, valid: np.ndarray) -> dict[str, float]:
    """AbsRel and delta < 1.25 after median scaling with one scale for the whole clip.

    The clip's scale is the median of the per-pixel ratios ``truth / estimated``: the robust estimate of the
    one factor that relates the two (the model is ``truth = s * estimated`` up to error). The ratio of the two
    medians, ``median(truth) / median(estimated)`` (Eigen et al.'s per-image recipe applied to a whole clip),
    compares two distributions rather than matched pixels: when a band of mid-range pixels is off, it moves
    both medians and misscales every pixel. On the 7-Scenes clip it gave a scale 22% off and AbsRel 0.23 where
    the median of ratios gives 0.085. It is still reported (``abs_rel_ratio_of_medians``), as is the per-frame
    version of the usual recipe (``abs_rel_per_frame``), which forgives scale drift between frames.

    Args:
        estimated, truth: (..., H, W) z-depth; valid: (..., H, W) bool pixels to score (both known).
    """
    valid = valid & (estimated > 0) & (truth > 0) & np.isfinite(estimated) & np.isfinite(truth)
    if not valid.any():
        nan = float("nan")
        return {"abs_rel": nan, "delta_1_25": nan, "abs_rel_ratio_of_medians": nan, "abs_rel_per_frame": nan,
                "coverage": 0.0}  # fmt: skip
    est, tru = estimated[valid].astype(np.float64), truth[valid].astype(np.float64)
    scaled = est * np.median(tru / est)
    ratio = np.maximum(scaled / tru, tru / scaled)
    per_frame = []
    if valid.ndim == 3:
        for frame_est, frame_true, frame_valid in zip(estimated, truth, valid, strict=True):
            if frame_valid.any():
                e, t = frame_est[frame_valid].astype(np.float64), frame_true[frame_valid].astype(np.float64)
                per_frame.append(_abs_rel(e * np.median(t) / np.median(e), t))
    return {
        "abs_rel": _abs_rel(scaled, tru),
        "delta_1_25": float(np.mean(ratio < 1.25)),
        "abs_rel_ratio_of_medians": _abs_rel(est * np.median(tru) / np.median(est), tru),
        "abs_rel_per_frame": float(np.mean(per_frame)) if per_frame else float("nan"),
        "coverage": float(valid.mean()),
    }


def mask_iou(estimated: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two bool masks of the same shape (1.0 when both are empty)."""
    union = np.logical_or(estimated, truth).sum()
    return float(np.logical_and(estimated, truth).sum() / union) if union else 1.0
