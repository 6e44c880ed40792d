"""Stage 6: joint refinement with a depth prior, in the spirit of Uni4D (Yao et al., CVPR 2025, sec. 3.3).

When a per-frame depth prior ``d_t`` is available (Depth Anything V2, or depth files), camera poses
``T_t``, static points ``X_j`` and per-frame prior alignments ``(s_t, b_t)`` are optimised together:

    E = sum_(t,j) rho(|pi(K, T_t X_j) - x_tj|^2 / sigma_px^2)                    (reprojection)
      + w_d sum_(t,j) rho((g(T_t X_j) - (s_t d_t(x_tj) + b_t))^2 / sigma_d^2)  (prior consistency)
      + w_s sum_t |log s_t - log s_(t-1)|^2                                     (alignment smoothness)
      + w_c sum_t |c_(t-1) - 2 c_t + c_(t+1)|^2 / sigma_c^2                      (camera smoothness)

with g(p) = 1 / p_z for disparity priors (affine-invariant inverse depth) and g(p) = p_z for depth
priors (then b_t = 0), rho the Huber loss. scipy's ``least_squares`` solves it with a finite-difference
Jacobian restricted to its sparsity pattern. The depth of frame t is then ``s_t d_t + b_t`` mapped to z.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import least_squares
from scipy.sparse import coo_matrix

from insertanywhere.scene.bundle import params_to_poses, poses_to_params
from insertanywhere.scene.cameras import CameraEstimate
from insertanywhere.scene.depth import PriorKind, align_prior, prior_to_depth
from insertanywhere.scene.tracks import Tracks

LOG_SCALE_LIMIT = 30.0
"""Per-frame prior scales are kept within exp(+-30): wider trial steps are clipped (huge residual, rejected)."""


def _sample(prior: np.ndarray, xy: np.ndarray) -> np.ndarray:
    height, width = prior.shape
    cols = np.clip(xy[:, 0].astype(int), 0, width - 1)
    rows = np.clip(xy[:, 1].astype(int), 0, height - 1)
    return prior[rows, cols].astype(np.float64)


def joint_refine(
    estimate: CameraEstimate,
    tracks: Tracks,
    priors: list[np.ndarray],
    kind: PriorKind,
    scales: np.ndarray,
    shifts: np.ndarray,
    max_points: int = 500,
    weight_depth: float = 1.0,
    weight_scale_smooth: float = 10.0,
    weight_camera_smooth: float = 1.0,
    max_nfev: int = 15,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Minimise the energy in the module docstring.

    Args:
        estimate: cameras and static points (general model) at the working resolution.
        tracks: the tracks the points come from.
        priors: T (h, w) float32 priors at the working resolution.
        kind: "disparity" or "depth".
        scales, shifts: (T,) initial per-frame alignments.

    Returns:
        refined cam_from_world (T, 4, 4), points (P, 3) (only the refined subset moves), scales (T,), shifts (T,).
    """
    n_frames = len(estimate.cam_from_world)
    quality = tracks.quality[estimate.point_track] * tracks.visible[:, estimate.point_track].sum(axis=0)
    chosen = np.sort(np.argsort(-quality)[:max_points])
    track_ids = estimate.point_track[chosen]
    sub = tracks.xy[:, track_ids]
    obs_frame, obs_point = np.nonzero(np.isfinite(sub[..., 0]))
    obs_xy = sub[obs_frame, obs_point].astype(np.float64)
    obs_prior = np.zeros(len(obs_frame))
    for t in range(n_frames):
        here = obs_frame == t
        obs_prior[here] = _sample(priors[t], obs_xy[here])
    K = estimate.K
    points0 = estimate.points_world[chosen]
    pose_params0 = poses_to_params(estimate.cam_from_world)
    median_depth = float(np.median(points0 @ estimate.cam_from_world[0][2, :3] + estimate.cam_from_world[0][2, 3]))
    sigma_d = 0.05 / median_depth if kind == "disparity" else 0.05 * median_depth
    n_pose = 6 * (n_frames - 1)
    n_point = 3 * len(points0)
    use_shift = kind == "disparity"

    def unpack(x: np.ndarray):
        params = pose_params0.copy()
        params[1:] = x[:n_pose].reshape(-1, 6)
        points = x[n_pose : n_pose + n_point].reshape(-1, 3)
        log_scales = x[n_pose + n_point : n_pose + n_point + n_frames]
        shift = x[n_pose + n_point + n_frames :] if use_shift else np.zeros(n_frames)
        # A trial step of the trust region can try log-scales far out (seen with a poor prior): clipped, it
        # costs a huge residual and is rejected, instead of overflowing to inf and inf * 0 = nan.
        return params_to_poses(params), points, np.exp(np.clip(log_scales, -LOG_SCALE_LIMIT, LOG_SCALE_LIMIT)), shift

    def residuals(x: np.ndarray) -> np.ndarray:
        poses, points, scale, shift = unpack(x)
        cam = np.matmul(poses[obs_frame, :3, :3], points[obs_point][:, :, None])[:, :, 0] + poses[obs_frame, :3, 3]
        z = np.where(np.abs(cam[:, 2]) < 1e-9, 1e-9, cam[:, 2])
        pixels = (cam @ K.T)[:, :2] / z[:, None]
        reprojection = (pixels - obs_xy).ravel()
        predicted = scale[obs_frame] * obs_prior + shift[obs_frame]
        measured = 1.0 / z if use_shift else z
        depth_term = np.sqrt(weight_depth) * (measured - predicted) / sigma_d
        centers = -np.matmul(np.transpose(poses[:, :3, :3], (0, 2, 1)), poses[:, :3, 3][:, :, None])[:, :, 0]
        accel = (centers[:-2] - 2 * centers[1:-1] + centers[2:]).ravel() / (0.01 * median_depth)
        log_scales = x[n_pose + n_point : n_pose + n_point + n_frames]  # smooth in log space, no exp/log round trip
        scale_smooth = np.sqrt(weight_scale_smooth) * np.diff(log_scales)
        return np.concatenate([reprojection, depth_term, np.sqrt(weight_camera_smooth) * accel, scale_smooth])

    x0 = np.concatenate(
        [pose_params0[1:].ravel(), points0.ravel(), np.log(np.maximum(scales, 1e-9))]
        + ([shifts.astype(np.float64)] if use_shift else [])
    )
    # Sparsity: which parameters each residual touches.
    rows, cols = [], []
    n_obs = len(obs_frame)
    obs_rows = np.arange(n_obs)
    has_pose = obs_frame > 0
    for axis in range(2):
        for k in range(6):
            rows.append(2 * obs_rows[has_pose] + axis)
            cols.append(6 * (obs_frame[has_pose] - 1) + k)
        for k in range(3):
            rows.append(2 * obs_rows + axis)
            cols.append(n_pose + 3 * obs_point + k)
    depth_rows = 2 * n_obs + obs_rows
    for k in range(6):
        rows.append(depth_rows[has_pose])
        cols.append(6 * (obs_frame[has_pose] - 1) + k)
    for k in range(3):
        rows.append(depth_rows)
        cols.append(n_pose + 3 * obs_point + k)
    rows.append(depth_rows)
    cols.append(n_pose + n_point + obs_frame)
    if use_shift:
        rows.append(depth_rows)
        cols.append(n_pose + n_point + n_frames + obs_frame)
    accel_start = 3 * n_obs
    for t in range(n_frames - 2):
        for frame in (t, t + 1, t + 2):
            if frame == 0:
                continue
            for axis in range(3):
                rows.append(np.full(6, accel_start + 3 * t + axis))
                cols.append(6 * (frame - 1) + np.arange(6))
    scale_start = accel_start + 3 * max(n_frames - 2, 0)
    for t in range(n_frames - 1):
        rows.append(np.array([scale_start + t, scale_start + t]))
        cols.append(n_pose + n_point + np.array([t, t + 1]))
    n_rows = scale_start + n_frames - 1
    sparsity = coo_matrix(
        (np.ones(sum(len(r) for r in rows), np.int8), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_rows, len(x0)),
    ).tocsr()
    result = least_squares(
        residuals, x0, jac_sparsity=sparsity, method="trf", tr_solver="lsmr", loss="huber", f_scale=1.0,
        x_scale="jac", max_nfev=max_nfev, ftol=1e-9,
    )  # fmt: skip
    poses, points, scale, shift = unpack(result.x)
    refined_points = estimate.points_world.copy()
    refined_points[chosen] = points
    return poses, refined_points, scale, shift


def align_priors(
    priors: list[np.ndarray], kind: PriorKind, metric: bool, tracks: Tracks, estimate: CameraEstimate
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Per-frame depth from priors, aligned to the reconstruction (and jointly refined with it when the
    camera translates). Updates ``estimate`` in place with the refined poses and points.

    Args:
        priors: T (h, w) float32 priors at the working resolution.
        kind: "disparity" (affine-invariant inverse depth) or "depth" (z up to scale, or metric).
        metric: the prior is metric (depth files): the world is rescaled to metres.

    Returns:
        depth (T, h, w) float32, confidence (T, h, w) float32, info for SceneMeta.extra
        (``world_scale`` multiplies translations and points when the units become metric).
    """
    n_frames = len(priors)
    info: dict = {}
    if estimate.camera_model == "general" and len(estimate.points_world) >= 10:
        scales = np.ones(n_frames)
        shifts = np.zeros(n_frames)
        for t in range(n_frames):
            visible = tracks.visible[t, estimate.point_track]
            pose = estimate.cam_from_world[t]
            z = estimate.points_world[visible] @ pose[2, :3] + pose[2, 3]
            scales[t], shifts[t] = align_prior(priors[t], kind, z, tracks.xy[t, estimate.point_track[visible]])
        poses, points, scales, shifts = joint_refine(estimate, tracks, priors, kind, scales, shifts)
        estimate.cam_from_world, estimate.points_world = poses, points
        info["joint_refinement"] = "poses, points and per-frame scale/shift"
    else:
        # No parallax: one alignment for the clip keeps depth temporally stable; median depth 1 unless metric.
        stacked = np.stack(priors)
        positive = stacked[stacked > 0]
        median = float(np.median(positive)) if positive.size else 1.0
        if metric:
            scales, shifts = np.ones(n_frames), np.zeros(n_frames)
        else:
            scales, shifts = np.full(n_frames, 1.0 / median if kind == "depth" else median), np.zeros(n_frames)
            if kind == "disparity":
                scales = np.full(n_frames, 1.0 / median)  # 1/z = d / median(d): median depth 1
        info["joint_refinement"] = "none (no parallax): one scale for the clip"
    depth = np.stack([prior_to_depth(p, kind, s, b) for p, s, b in zip(priors, scales, shifts, strict=True)])
    if metric and estimate.camera_model == "general":
        # z_recon = s z_metric: metres per scene unit is 1 / median(s).
        world_scale = 1.0 / float(np.median(scales))
        info["world_scale"] = world_scale
        depth = np.stack([prior_to_depth(p, kind, 1.0, 0.0) for p in priors])
    info["metric"] = bool(metric)
    info["prior_scales"] = [float(v) for v in scales]
    confidence = np.where(depth > 0, 0.8, 0.0).astype(np.float32)
    return depth, confidence, info
