"""Stage 3: camera motion model selection and camera poses from point tracks.

Motion models (chosen per clip, reason recorded):

* ``static``: the tracks do not move (median displacement below a pixel threshold): all poses identity.
* ``rotation``: on wide frame pairs, the best rotation-induced homography ``K R K^-1`` (focal free)
  explains the tracks about as well as a general homography does. A camera translating in front of a
  near-planar scene is explained by a homography too (two-view GRIC cannot tell), but not by a rotation:
  the excess of the rotation fit over the homography fit is the test. Rotations are then refined with
  the focal length by a rotation-only bundle adjustment on bearings.
* ``general``: incremental structure from motion on keyframes (essential-matrix initialisation,
  PnP registration, triangulation, sparse bundle adjustment), then every other frame registered by
  PnP and one global bundle adjustment over all frames.

All pixel values here are at the *working* resolution; poses are ``cam_from_world`` with frame 0's
camera as the world frame.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from scipy.optimize import minimize_scalar
from scipy.spatial import cKDTree

from insertanywhere.conventions import CameraModel
from insertanywhere.progress import Progress, null_progress
from insertanywhere.scene.bundle import (
    BundleResult,
    Observations,
    bundle_adjust,
    colmap_bundle_adjust,
    rotation_adjust,
)
from insertanywhere.scene.tracks import Tracks


@dataclass
class CameraConfig:
    """Thresholds of the camera stage, in working-resolution pixels."""

    static_px: float = 0.35
    pair_min_tracks: int = 30
    pair_min_overlap: float = 0.3
    parallax_px: float = 0.8
    gric_sigma_px: float = 0.5
    # A pair votes "translating" when the rotation fit's median error exceeds both this many times the
    # homography's and the homography's plus rotation_excess_width times the image width (0.9 px at the
    # default 416-pixel working width: lens distortion and rolling shutter scale with the image).
    rotation_excess_ratio: float = 3.0
    rotation_excess_width: float = 0.9 / 416
    general_vote_share: float = 0.34
    keyframe_px: float = 12.0
    keyframe_overlap: float = 0.7
    min_triangulation_deg: float = 1.0
    max_reprojection_px: float = 2.0
    register_min_inliers: float = 0.3  # share of a frame's points a PnP pose must explain to be kept
    points_min_angle_deg: float = 1.0  # the output points (they make the classical depth)
    points_max_error_px: float = 2.0
    optimize_focal: bool = True
    ba_max_nfev: int = 20
    keyframe_ba_iterations: int = 20  # the keyframes' last adjustment (the global one over all frames follows)
    max_ba_points: int = 800
    rotation_ba_max_nfev: int = 30
    rotation_coarse_nfev: int = 15
    rotation_coarse_loss_px: float = 5.0
    rotation_ba_points: int = 300
    global_ba_max_frames: int = 30
    ba_backend: str = "colmap"  # "colmap" (pycolmap's Ceres adjuster, all points) | "scipy" (least_squares, a subset)
    ba_loss_px: float = 1.0
    global_ba_tolerances_px: tuple[float, ...] = (3.0,)
    global_ba_iterations: int = 50
    colmap_max_points: int = 2500
    incremental_max_points: int = 1000
    # Keyframe adjustment after every 4 registrations: every 8 let a run of fast-moving keyframes (the end of
    # 7-Scenes, with a given focal 6 % off) shrink to a near-zero scale that the global adjustment kept.
    incremental_ba_every: int = 4
    global_ba_max_observations: int | None = 20  # per track (long tracks thinned evenly)
    # Robust cost (Ceres' 0.5 sum rho, px^2) by which a self-calibrated focal must beat the initial one held
    # (the pycolmap global adjustment).
    focal_min_gain: float = 2.5
    # Tracks among movers (``tracks_among_movers``) are left out of the pycolmap global adjustment and make no
    # points; mover_seed_px = 0 turns it off.
    mover_seed_px: float = 1.0
    mover_seed_ratio: float = 5.0  # x the median long track's error, when that is more than mover_seed_px
    mover_seed_frames: int = 20
    mover_radius: float = 0.05  # share of the working width (about 20 px at 416)
    mover_share: float = 0.5
    mover_protect: float = 0.5


@dataclass
class CameraEstimate:
    """The camera stage's result, at the working resolution.

    Attributes:
        cam_from_world: (T, 4, 4) float64, frame 0 = identity.
        K: (3, 3) float64 working-resolution intrinsics.
        camera_model: "static" | "rotation" | "general".
        points_world: (P, 3) float64 triangulated static points (general model), else (0, 3).
        point_track: (P,) int index of the track each point comes from.
        model_reason: statistics that decided the model (goes to SceneMeta.extra).
        keyframes: indices of the frames used for structure from motion.
    """

    cam_from_world: np.ndarray
    K: np.ndarray
    camera_model: CameraModel
    points_world: np.ndarray
    point_track: np.ndarray
    model_reason: dict[str, Any] = field(default_factory=dict)
    keyframes: list[int] = field(default_factory=list)


# ----------------------------------------------------------------------------- model selection


def _common(tracks: Tracks, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
    both = tracks.visible[a] & tracks.visible[b]
    return tracks.xy[a, both].astype(np.float64), tracks.xy[b, both].astype(np.float64)


def gric(errors_sq: np.ndarray, sigma: float, manifold_dim: int, n_params: int) -> float:
    """Geometric Robust Information Criterion (Torr, 1998) for a 2-view relation fitted to n matches.

    ``GRIC = sum rho(e^2 / sigma^2) + lambda1 d n + lambda2 k`` with ``rho(x) = min(x, lambda3 (r - d))``,
    r = 4 (two 2D points), lambda1 = ln r, lambda2 = ln(r n), lambda3 = 2; d = 2, k = 8 for a homography,
    d = 3, k = 7 for a fundamental matrix. The lower wins.

    Args:
        errors_sq: (n,) squared residuals in pixels^2 (transfer error for H, Sampson for F).
    """
    n = len(errors_sq)
    r = 4.0
    rho = np.minimum(errors_sq / sigma**2, 2.0 * (r - manifold_dim))
    return float(rho.sum() + math.log(r) * manifold_dim * n + math.log(r * n) * n_params)


def _sampson_sq(F: np.ndarray, xa: np.ndarray, xb: np.ndarray) -> np.ndarray:
    ha = np.concatenate([xa, np.ones((len(xa), 1))], axis=1)
    hb = np.concatenate([xb, np.ones((len(xb), 1))], axis=1)
    Fa = ha @ F.T
    Ftb = hb @ F
    numerator = np.sum(hb * Fa, axis=1) ** 2
    return numerator / (Fa[:, 0] ** 2 + Fa[:, 1] ** 2 + Ftb[:, 0] ** 2 + Ftb[:, 1] ** 2 + 1e-12)


def _transfer_sq(H: np.ndarray, xa: np.ndarray, xb: np.ndarray) -> np.ndarray:
    mapped = cv2.perspectiveTransform(xa.reshape(-1, 1, 2), H).reshape(-1, 2)
    return np.sum((mapped - xb) ** 2, axis=1)


def procrustes_rotation(xa: np.ndarray, xb: np.ndarray, K_inv: np.ndarray) -> np.ndarray:
    """(3, 3) ``R_ba = argmin sum |b - R a|^2`` over the unit bearings of matched pixels xa, xb (n, 2):
    the rotation from camera a to camera b (orthogonal Procrustes)."""
    rays_a = np.concatenate([xa, np.ones((len(xa), 1))], axis=1) @ K_inv.T
    rays_b = np.concatenate([xb, np.ones((len(xb), 1))], axis=1) @ K_inv.T
    rays_a /= np.linalg.norm(rays_a, axis=1, keepdims=True)
    rays_b /= np.linalg.norm(rays_b, axis=1, keepdims=True)
    return _nearest_rotation(rays_b.T @ rays_a)


def rotation_fit_px(xa: np.ndarray, xb: np.ndarray, center: np.ndarray, width: int) -> tuple[float, float]:
    """Median transfer error of the best rotation-induced homography ``K R K^-1`` between matches.

    The focal length is free (one shared by both views, searched over 19-119 degrees of horizontal field
    of view); for each focal R is the orthogonal Procrustes fit of the bearings.

    Args:
        xa, xb: (n, 2) matched pixels; center: (2,) principal point; width: image width (pixels).

    Returns:
        (median transfer error in pixels, the best focal length in pixels).
    """

    def error(log_focal: float) -> np.ndarray:
        focal = math.exp(log_focal)
        K = np.array([[focal, 0.0, center[0]], [0.0, focal, center[1]], [0.0, 0.0, 1.0]])
        K_inv = np.linalg.inv(K)
        rotation = procrustes_rotation(xa, xb, K_inv)
        return np.sqrt(_transfer_sq(K @ rotation @ K_inv, xa, xb))

    result = minimize_scalar(
        lambda log_focal: float(np.median(error(log_focal))),
        bounds=(math.log(0.3 * width), math.log(3.0 * width)), method="bounded", options={"xatol": 1e-3},
    )  # fmt: skip
    return float(np.median(error(result.x))), float(math.exp(result.x))


def pair_statistics(
    xa: np.ndarray, xb: np.ndarray, config: CameraConfig, center: np.ndarray, width: int
) -> dict[str, float] | None:
    """Homography, fundamental-matrix and rotation fits of one frame pair's matches (n, 2) pixels.

    ``homography_px`` and ``rotation_px`` are median transfer errors over the homography's RANSAC
    inliers (so a large mover or an outlier does not weigh); ``translating`` is the pair's vote.
    GRIC and the residual parallax of the epipolar inliers are kept as diagnostics.
    """
    if len(xa) < 20:
        return None
    sigma = config.gric_sigma_px
    H, mask_h = cv2.findHomography(xa, xb, cv2.RANSAC, 3.0 * sigma, maxIters=500)
    F, mask_f = cv2.findFundamentalMat(xa, xb, cv2.FM_RANSAC, 2.0 * sigma, 0.999, 500)
    if H is None or F is None or F.shape != (3, 3):
        return None
    inliers_h = mask_h.ravel().astype(bool)
    inliers_f = mask_f.ravel().astype(bool)
    if inliers_h.sum() < 8:
        return None
    h_err = _transfer_sq(H, xa, xb)
    f_err = _sampson_sq(F, xa, xb)
    homography_px = float(np.sqrt(np.median(h_err[inliers_h])))
    rotation_px, rotation_focal = rotation_fit_px(xa[inliers_h], xb[inliers_h], center, width)
    translating = rotation_px > max(
        config.rotation_excess_ratio * homography_px, homography_px + config.rotation_excess_width * width
    )
    return {
        "homography_px": homography_px,
        "rotation_px": rotation_px,
        "rotation_fov_deg": float(np.degrees(2.0 * np.arctan(0.5 * width / rotation_focal))),
        "translating": bool(translating),
        "gric_h": gric(h_err, sigma, 2, 8),
        "gric_f": gric(f_err, sigma, 3, 7),
        "parallax_px": float(np.sqrt(np.median(h_err[inliers_f]))) if inliers_f.any() else 0.0,
        "displacement_px": float(np.median(np.linalg.norm(xb - xa, axis=1))),
        "n_matches": len(xa),
    }


def static_like_tracks(tracks: Tracks) -> np.ndarray:
    """(N,) bool: tracks that follow the dominant image motion on at least 80 % of their consecutive frame
    pairs (homography RANSAC at 1.5 px). The others follow something else than the camera (movers); a
    mover filling the frame can win one pair's RANSAC, but its tracks are outliers over the rest of their life.
    """
    outlier_pairs = np.zeros(tracks.n_tracks)
    for t in range(1, tracks.xy.shape[0]):
        both = np.nonzero(tracks.visible[t - 1] & tracks.visible[t])[0]
        if len(both) >= 8:
            xa, xb = tracks.xy[t - 1, both].astype(np.float64), tracks.xy[t, both].astype(np.float64)
            _, inlier_mask = cv2.findHomography(xa, xb, cv2.RANSAC, 1.5)
            if inlier_mask is not None:
                outlier_pairs[both[inlier_mask.ravel() == 0]] += 1
    n_pairs = np.maximum(tracks.visible.sum(axis=0) - 1, 1)
    return outlier_pairs <= 0.2 * n_pairs


def select_motion_model(
    tracks: Tracks, config: CameraConfig, static_like: np.ndarray | None = None, K: np.ndarray | None = None
) -> tuple[CameraModel, dict[str, Any]]:
    """Choose static / rotation / general for a clip and say why.

    Pairs are taken at the widest gap that keeps most tracks in common, so that slow forward motion
    accumulates measurable parallax. A pair votes ``general`` when no rotation explains it although a
    homography does (``rotation_px > max(ratio * homography_px, homography_px + excess * width)``): that holds
    for translation in front of any scene, planar or not, while a real pan's lens distortion and rolling
    shutter spoil both fits alike. A third of the pairs voting ``general`` selects it.

    Args:
        static_like: (N,) bool, the tracks that may vote (default: ``static_like_tracks(tracks)``).
        K: (3, 3) intrinsics guess; its principal point centres the rotation fits and twice it is taken as
            the image size (default: the tracks' extent).
    """
    n_frames = tracks.xy.shape[0]
    if n_frames < 2:
        return "static", {"reason": "a single frame"}
    # Static: the median track barely moves between any frame and the ones a short gap later.
    gap = max(1, min(10, n_frames - 1))
    displacements = []
    for a in range(0, n_frames - gap, max(1, gap // 2)):
        xa, xb = _common(tracks, a, a + gap)
        if len(xa):
            displacements.append(float(np.median(np.linalg.norm(xb - xa, axis=1))))
    max_displacement = max(displacements) if displacements else 0.0
    if max_displacement < config.static_px:
        return "static", {
            "reason": f"median track motion <= {max_displacement:.2f} px (< {config.static_px}) over {gap} frames",
            "max_median_displacement_px": max_displacement,
        }
    voters = tracks.subset(np.nonzero(static_like_tracks(tracks) if static_like is None else static_like)[0])
    if voters.n_tracks < config.pair_min_tracks:
        voters = tracks
    if K is not None:
        center = np.asarray(K, np.float64)[:2, 2]
    else:
        center = 0.5 * np.ceil(np.nanmax(tracks.xy.reshape(-1, 2), axis=0))
    width = round(float(2.0 * center[0]))
    # Rotation vs general on pairs spread over the clip, each as wide as the shared tracks allow.
    stats = []
    anchors = np.linspace(0, n_frames - 2, num=min(8, n_frames - 1)).astype(int)
    for a in sorted(set(anchors.tolist())):
        best = None
        for b in range(n_frames - 1, a, -max(1, (n_frames - a) // 6)):
            xa, xb = _common(voters, a, b)
            if len(xa) >= max(config.pair_min_tracks, config.pair_min_overlap * voters.visible[a].sum()):
                best = (b, xa, xb)
                break
        if best is None:
            continue
        pair = pair_statistics(best[1], best[2], config, center, width)
        if pair is not None and pair["displacement_px"] > 2.0:
            pair["frames"] = [int(a), int(best[0])]
            stats.append(pair)
    if not stats:
        return "rotation", {"reason": "too few matched pairs with motion to see parallax", "pairs": []}
    votes_general = int(sum(s["translating"] for s in stats))
    worst = max(stats, key=lambda s: s["rotation_px"] - s["homography_px"])
    summary = {"pairs": stats, "pairs_for_general": votes_general, "n_pairs": len(stats)}
    if votes_general >= max(1, math.ceil(config.general_vote_share * len(stats))):
        summary["reason"] = (
            f"no rotation explains {votes_general}/{len(stats)} frame pairs that a homography explains (up to "
            f"{worst['rotation_px']:.2f} px against {worst['homography_px']:.2f} px): the camera translates"
        )
        return "general", summary
    summary["reason"] = (
        f"a rotation explains the motion about as well as a homography on {len(stats) - votes_general}/"
        f"{len(stats)} frame pairs (worst {worst['rotation_px']:.2f} px against {worst['homography_px']:.2f} px): "
        "pure rotation"
    )
    return "rotation", summary


# ----------------------------------------------------------------------------- rotation model


def select_ba_tracks(tracks: Tracks, candidates: np.ndarray, frames: np.ndarray, budget: int) -> np.ndarray:
    """At most ``budget`` tracks for bundle adjustment, chosen per frame so that every frame keeps
    support: each frame contributes its best k visible candidates, ranked by quality x length, with the
    largest k (at least 30) whose union fits the budget. A global top-k would starve frames seen only by
    short tracks.

    Args:
        candidates: (N,) track indices to choose from; frames: (F,) frame indices of the adjustment.

    Returns:
        sorted (M,) track indices.
    """
    if len(candidates) <= budget:
        return candidates
    visible = tracks.visible[np.ix_(frames, candidates)]
    score = tracks.quality[candidates] * visible.sum(axis=0)
    order = np.argsort(-score)
    # rank[f, j]: position of candidate order[j] among the candidates visible in frame f (large if not visible).
    seen = visible[:, order]
    rank = np.where(seen, np.cumsum(seen, axis=1) - 1, np.iinfo(np.int64).max)
    best_rank = rank.min(axis=0)  # a candidate enters once k exceeds its best rank over the frames
    low = 30
    chosen_count = np.searchsorted(np.sort(best_rank), np.arange(1, len(order) + 2), side="left")
    k = int(np.searchsorted(chosen_count, budget, side="right"))  # largest k with union <= budget
    k = max(k, low)
    return np.sort(candidates[order[best_rank < k]])


def _nearest_rotation(matrix: np.ndarray) -> np.ndarray:
    u, _, vt = np.linalg.svd(matrix)
    rotation = u @ vt
    if np.linalg.det(rotation) < 0:
        rotation = u @ np.diag([1.0, 1.0, -1.0]) @ vt
    return rotation


def _observations(
    tracks: Tracks, frames: np.ndarray, track_ids: np.ndarray, max_per_track: int | None = None
) -> Observations:
    """Observations of ``track_ids`` (point index = position in track_ids) in ``frames`` (camera index = position).

    ``max_per_track`` thins long tracks to about that many observations: every s-th one with a per-track
    phase (so frames are covered evenly), plus the first and last (the widest baseline is kept).
    """
    sub = tracks.xy[np.ix_(frames, track_ids)]
    visible = np.isfinite(sub[..., 0])
    if max_per_track is not None:
        order = np.cumsum(visible, axis=0) - 1  # rank of each observation along its track
        counts = visible.sum(axis=0)
        stride = np.maximum(1, np.ceil(counts / max_per_track)).astype(np.int64)
        phase = np.arange(len(track_ids)) % stride
        keep = ((order - phase) % stride == 0) | (order == 0) | (order == counts - 1)
        visible &= keep
    cam_index, point_index = np.nonzero(visible)
    weights = tracks.quality[track_ids][point_index].astype(np.float64) + 0.1
    return Observations(cam_index, point_index, sub[cam_index, point_index].astype(np.float64), weights)


def estimate_rotation(
    tracks: Tracks, K: np.ndarray, optimize_focal: bool, config: CameraConfig, static_like: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Poses of a purely rotating camera.

    ``static_like``: (N,) bool, the tracks that follow the camera (default: ``static_like_tracks``).

    Returns:
        cam_from_world (T, 4, 4) with zero translation, and the refined K (3, 3).
    """
    n_frames = tracks.xy.shape[0]
    K_inv = np.linalg.inv(K)
    static_like = static_like_tracks(tracks) if static_like is None else static_like
    # Relative rotations from the static-like tracks only: RANSAC again on them, then orthogonal Procrustes
    # on the inliers' bearings.
    world_from_cam = [np.eye(3)]
    for t in range(1, n_frames):
        both = np.nonzero(tracks.visible[t - 1] & tracks.visible[t])[0]
        ids = both[static_like[both]] if static_like[both].sum() >= 8 else both
        rel = np.eye(3)
        if len(ids) >= 8:
            xa, xb = tracks.xy[t - 1, ids].astype(np.float64), tracks.xy[t, ids].astype(np.float64)
            _, inlier_mask = cv2.findHomography(xa, xb, cv2.RANSAC, 1.5)
            if inlier_mask is not None and inlier_mask.sum() >= 3:
                ids = ids[inlier_mask.ravel() > 0]
        if len(ids) >= 3:
            xa, xb = tracks.xy[t - 1, ids].astype(np.float64), tracks.xy[t, ids].astype(np.float64)
            rel = procrustes_rotation(xa, xb, K_inv)  # cam_b_from_cam_a
        world_from_cam.append(world_from_cam[-1] @ rel.T)
    world_from_cam_arr = np.stack(world_from_cam)
    keep = np.nonzero((tracks.visible.sum(axis=0) >= 2) & (tracks.quality > 0.2) & static_like)[0]
    keep = select_ba_tracks(tracks, keep, np.arange(n_frames), config.rotation_ba_points)
    first = np.argmax(tracks.visible[:, keep], axis=0)
    xy_first = tracks.xy[first, keep].astype(np.float64)
    rays = np.concatenate([xy_first, np.ones((len(keep), 1))], axis=1) @ K_inv.T
    bearings = np.einsum("nij,nj->ni", world_from_cam_arr[first], rays)
    observations = _observations(tracks, np.arange(n_frames), keep)
    # Two stages: the chained homographies drift by pixels, where a Cauchy loss at 1 px would flatten the cost and
    # crawl; a wide Huber loss first removes the drift, then the Cauchy loss refines against outliers.
    rotations, bearings, K_refined, _ = rotation_adjust(
        world_from_cam_arr, bearings, K, observations, optimize_focal=optimize_focal,
        max_nfev=config.rotation_coarse_nfev, loss="huber", loss_scale_px=config.rotation_coarse_loss_px,
    )  # fmt: skip
    rotations, _, K_refined, _ = rotation_adjust(
        np.transpose(rotations, (0, 2, 1)), bearings, K_refined, observations, optimize_focal=optimize_focal,
        max_nfev=config.rotation_ba_max_nfev,
    )  # fmt: skip
    cam_from_world = np.tile(np.eye(4), (n_frames, 1, 1))
    cam_from_world[:, :3, :3] = rotations
    return cam_from_world, K_refined


# ----------------------------------------------------------------------------- general model


def select_keyframes(tracks: Tracks, config: CameraConfig) -> list[int]:
    """Keyframes: a new one when the median displacement since the last exceeds ``keyframe_px`` or
    fewer than ``keyframe_overlap`` of its tracks survive; the last frame is always one."""
    n_frames = tracks.xy.shape[0]
    keyframes = [0]
    for t in range(1, n_frames):
        last = keyframes[-1]
        xa, xb = _common(tracks, last, t)
        n_last = max(int(tracks.visible[last].sum()), 1)
        moved = float(np.median(np.linalg.norm(xb - xa, axis=1))) if len(xa) else np.inf
        if moved > config.keyframe_px or len(xa) < config.keyframe_overlap * n_last:
            keyframes.append(t if t - 1 == last else t - 1 if len(xa) < 0.5 * n_last else t)
    if keyframes[-1] != n_frames - 1:
        keyframes.append(n_frames - 1)
    return sorted(set(keyframes))


def _triangulate(
    P_a: np.ndarray, P_b: np.ndarray, xa_norm: np.ndarray, xb_norm: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Two-view DLT. P_*: (3, 4) cam_from_world; x*_norm: (n, 2) normalised coordinates.
    Returns world points (n, 3) and the triangulation angle (n,) degrees."""
    homogeneous = cv2.triangulatePoints(P_a, P_b, xa_norm.T, xb_norm.T)
    points = (homogeneous[:3] / np.where(np.abs(homogeneous[3]) < 1e-12, 1e-12, homogeneous[3])).T
    center_a = -P_a[:, :3].T @ P_a[:, 3]
    center_b = -P_b[:, :3].T @ P_b[:, 3]
    ray_a = points - center_a
    ray_b = points - center_b
    cos = np.sum(ray_a * ray_b, axis=1) / (np.linalg.norm(ray_a, axis=1) * np.linalg.norm(ray_b, axis=1) + 1e-12)
    return points, np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


class _Reconstruction:
    """Mutable state of incremental SfM (internal)."""

    def __init__(self, tracks: Tracks, K: np.ndarray, config: CameraConfig) -> None:
        self.tracks = tracks
        self.K = K
        self.K_inv = np.linalg.inv(K)
        self.config = config
        self.poses: dict[int, np.ndarray] = {}
        self.points = np.full((tracks.n_tracks, 3), np.nan)

    def normalised(self, frame: int, ids: np.ndarray) -> np.ndarray:
        xy = self.tracks.xy[frame, ids].astype(np.float64)
        return (np.concatenate([xy, np.ones((len(xy), 1))], axis=1) @ self.K_inv.T)[:, :2]

    def reprojection_px(self, frame: int, ids: np.ndarray) -> np.ndarray:
        pose = self.poses[frame]
        with np.errstate(over="ignore", invalid="ignore"):  # a degenerate PnP pose can be astronomically far
            cam = self.points[ids] @ pose[:3, :3].T + pose[:3, 3]
            z = cam[:, 2]
            pixels = cam @ self.K.T
            pixels = pixels[:, :2] / np.where(np.abs(z) < 1e-9, 1e-9, z)[:, None]
            error = np.linalg.norm(pixels - self.tracks.xy[frame, ids], axis=1)
        return np.where((z > 0) & np.isfinite(error), error, np.inf)

    def initialise(self, a: int, b: int) -> bool:
        both = np.nonzero(self.tracks.visible[a] & self.tracks.visible[b])[0]
        if len(both) < 30:
            return False
        na, nb = self.normalised(a, both), self.normalised(b, both)
        threshold = self.config.max_reprojection_px / self.K[0, 0]
        E, mask = cv2.findEssentialMat(na, nb, np.eye(3), cv2.RANSAC, 0.999, threshold)
        if E is None or E.shape != (3, 3):
            return False
        _, R, t, mask = cv2.recoverPose(E, na, nb, np.eye(3), mask=mask)
        self.poses[a] = np.eye(4)
        pose_b = np.eye(4)
        pose_b[:3, :3], pose_b[:3, 3] = R, t.ravel()
        self.poses[b] = pose_b
        inliers = both[mask.ravel() > 0]
        return self.triangulate_between(a, b, inliers) >= 20

    def triangulate_between(self, a: int, b: int, ids: np.ndarray) -> int:
        if len(ids) == 0:
            return 0
        points, angle = _triangulate(
            self.poses[a][:3], self.poses[b][:3], self.normalised(a, ids), self.normalised(b, ids)
        )
        previous = self.points[ids].copy()
        self.points[ids] = points
        good = angle > self.config.min_triangulation_deg
        good &= self.reprojection_px(a, ids) < self.config.max_reprojection_px
        good &= self.reprojection_px(b, ids) < self.config.max_reprojection_px
        self.points[ids[~good]] = previous[~good]
        return int(good.sum())

    def register(self, frame: int, guess: np.ndarray | None) -> bool:
        """Pose of ``frame`` by PnP-RANSAC on its triangulated tracks, refined by Levenberg-Marquardt.

        ``guess`` (4, 4) cam_from_world, when given, seeds an iterative RANSAC instead of EPnP. The pose is
        kept only if it explains a ``register_min_inliers`` share of all the frame's points (not only of
        RANSAC's sample): a handful of consistent points can give a degenerate pose (cafe: a camera 90 km
        away whose other 180 points were all off by 120 px) that the global adjustment cannot repair.
        """
        ids = np.nonzero(self.tracks.visible[frame] & np.isfinite(self.points[:, 0]))[0]
        if len(ids) < 12:
            return False
        object_points = self.points[ids]
        image_points = self.tracks.xy[frame, ids].astype(np.float64)
        threshold = self.config.max_reprojection_px * 1.5
        if guess is None:
            ok, rvec, tvec, inliers = cv2.solvePnPRansac(
                object_points, image_points, self.K, None, reprojectionError=threshold,
                iterationsCount=200, confidence=0.999, flags=cv2.SOLVEPNP_EPNP,
            )  # fmt: skip
        else:
            ok, rvec, tvec, inliers = cv2.solvePnPRansac(
                object_points, image_points, self.K, None, cv2.Rodrigues(guess[:3, :3])[0], guess[:3, 3].copy(),
                useExtrinsicGuess=True, reprojectionError=threshold, iterationsCount=200, confidence=0.999,
                flags=cv2.SOLVEPNP_ITERATIVE,
            )  # fmt: skip
        if not ok or inliers is None or len(inliers) < 10:
            return False
        inliers = inliers.ravel()
        rvec, tvec = cv2.solvePnPRefineLM(object_points[inliers], image_points[inliers], self.K, None, rvec, tvec)
        pose = np.eye(4)
        pose[:3, :3] = cv2.Rodrigues(rvec)[0]
        pose[:3, 3] = tvec.ravel()
        self.poses[frame] = pose
        explained = self.reprojection_px(frame, ids) < threshold
        if explained.sum() < 10 or explained.mean() < self.config.register_min_inliers:
            del self.poses[frame]
            return False
        return True

    def triangulate_new(self, frame: int) -> None:
        """Triangulate tracks seen in ``frame`` and in an earlier registered frame, picking the widest baseline."""
        missing = self.tracks.visible[frame] & ~np.isfinite(self.points[:, 0])
        registered = sorted(f for f in self.poses if f != frame)
        for other in registered:  # oldest first: widest baseline
            ids = np.nonzero(missing & self.tracks.visible[other] & ~np.isfinite(self.points[:, 0]))[0]
            if len(ids):
                self.triangulate_between(other, frame, ids)

    def bundle(self, frames: list[int], optimize_focal: bool, max_nfev: int) -> None:
        ids = np.nonzero(np.isfinite(self.points[:, 0]))[0]
        budget = self.config.max_ba_points if self.config.ba_backend == "scipy" else self.config.incremental_max_points
        ids = select_ba_tracks(self.tracks, ids, np.array(frames), budget)
        frame_array = np.array(frames)
        observations = _observations(self.tracks, frame_array, ids, self.config.global_ba_max_observations)
        poses = np.stack([self.poses[f] for f in frames])
        fixed = (0,) if frames[0] == 0 else ()
        result = _adjust(poses, self.points[ids], self.K, observations, fixed, optimize_focal, max_nfev, self.config)
        for index, frame in enumerate(frames):
            self.poses[frame] = result.cam_from_world[index]
        self.points[ids] = result.points_world
        if optimize_focal:
            self.K = result.K
            self.K_inv = np.linalg.inv(self.K)
        # Drop points that stay inconsistent (movers, bad tracks): median error over their observations.
        errors = np.zeros(len(ids))
        counts = np.zeros(len(ids))
        np.add.at(errors, observations.point, result.residuals_px > 3.0 * self.config.max_reprojection_px)
        np.add.at(counts, observations.point, 1)
        bad = errors > 0.3 * counts
        self.points[ids[bad]] = np.nan


def _adjust(
    poses: np.ndarray,
    points: np.ndarray,
    K: np.ndarray,
    observations: Observations,
    fixed: tuple[int, ...],
    optimize_focal: bool,
    iterations: int,
    config: CameraConfig,
) -> BundleResult:
    """One bundle adjustment with the configured backend (robust loss at ``ba_loss_px``)."""
    if config.ba_backend == "colmap":
        # The working image's size, from the principal point (only used by COLMAP's camera checks).
        size = (max(2, round(2 * K[0, 2])), max(2, round(2 * K[1, 2])))
        return colmap_bundle_adjust(
            poses, points, K, observations, size, fixed_frames=fixed, optimize_focal=optimize_focal,
            loss="cauchy", loss_scale_px=config.ba_loss_px, max_iterations=iterations,
        )  # fmt: skip
    return bundle_adjust(
        poses, points, K, observations, fixed_frames=fixed, optimize_focal=optimize_focal,
        loss="huber", loss_scale_px=config.ba_loss_px, max_nfev=iterations,
    )  # fmt: skip


def estimate_general(
    tracks: Tracks, K: np.ndarray, optimize_focal: bool, config: CameraConfig, progress: Progress = null_progress
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
    """Incremental keyframe SfM, then PnP for every frame and a global bundle adjustment.

    Returns:
        cam_from_world (T, 4, 4), K (3, 3), the (N_tracks,) bool tracks left out of the global adjustment as
        living among movers (``tracks_among_movers``), keyframes.
    """
    n_frames = tracks.xy.shape[0]
    keyframes = select_keyframes(tracks, config)
    recon = _Reconstruction(tracks, K, config)
    among_movers = np.zeros(tracks.n_tracks, bool)
    # Initial pair: frame 0 and the first keyframe with enough parallax (or the widest shared one).
    initialised = False
    for second in keyframes[1:]:
        xa, xb = _common(tracks, 0, second)
        if len(xa) < 30:
            break
        stats = pair_statistics(xa, xb, config, K[:2, 2], round(float(2.0 * K[0, 2])))
        if stats and stats["parallax_px"] > 2.0 * config.parallax_px and recon.initialise(0, second):
            initialised = True
            break
    if not initialised:
        for second in reversed(keyframes[1:]):
            if recon.initialise(0, second):
                initialised = True
                break
    if not initialised:
        raise RuntimeError("structure from motion could not initialise: too few tracked points with parallax")
    # COLMAP's adjuster has no focal prior: the focal is left to the global adjustment over all frames, where
    # it is best constrained (freed in the incremental ones it drifts with the young, short-baseline structure).
    incremental_focal = optimize_focal and config.ba_backend == "scipy"
    # Register the remaining keyframes in order of distance from frame 0.
    pending = [k for k in keyframes if k not in recon.poses]
    for count, frame in enumerate(pending):
        if recon.register(frame, None):
            recon.triangulate_new(frame)
            if count % config.incremental_ba_every == config.incremental_ba_every - 1:
                recon.bundle(sorted(recon.poses), incremental_focal, max_nfev=5)
        progress("cameras", count + 1, len(pending) + 1)
    recon.bundle(sorted(recon.poses), incremental_focal, max_nfev=config.keyframe_ba_iterations)

    def nearest_registered(frame: int) -> np.ndarray:
        return recon.poses[min(recon.poses, key=lambda f: abs(f - frame))]

    # Every other frame by PnP (RANSAC, then Levenberg-Marquardt) against the adjusted keyframe structure.
    for frame in range(n_frames):
        if frame not in recon.poses and not recon.register(frame, None):
            # Seeded by the nearest registered camera, PnP finds the pose that EPnP-RANSAC missed.
            recon.register(frame, nearest_registered(frame))
    missing = [f for f in range(n_frames) if f not in recon.poses]
    for frame in missing:  # rare: copy the nearest registered pose
        recon.poses[frame] = nearest_registered(frame).copy()
    cam_from_world = np.stack([recon.poses[f] for f in range(n_frames)])
    K = recon.K
    if config.ba_backend == "colmap":
        # Global refinement: every track re-triangulated from all registered frames, then one adjustment of
        # all frames and all consistent tracks (robust loss) that do not live among movers.
        trusted = tracks
        if config.mover_seed_px > 0:
            among_movers = tracks_among_movers(tracks, cam_from_world, K, config)
            if (~among_movers).sum() >= 20:
                trusted = tracks.subset(~among_movers)
            else:
                among_movers[:] = False
        for tolerance in config.global_ba_tolerances_px:
            points, ids = triangulate_tracks(trusted, cam_from_world, K, tolerance, config.min_triangulation_deg)
            if len(ids) < 20:
                break
            chosen = select_ba_tracks(trusted, ids, np.arange(n_frames), config.colmap_max_points)
            points, ids = points[np.searchsorted(ids, chosen)], chosen
            observations = _observations(trusted, np.arange(n_frames), ids, config.global_ba_max_observations)
            result = _adjust(
                cam_from_world, points, K, observations, (0,), optimize_focal, config.global_ba_iterations, config
            )
            if optimize_focal:
                # A focal the data do not ask for is not taken: the same adjustment with the focal held must cost
                # more by focal_min_gain. A low-parallax clip leaves the focal all but free (moving_support: the
                # cost is flat from 54 to 66 degrees), and there it drifted to 62 for a true 57.5 at a higher
                # cost than 60 held, which misshaped the depth (AbsRel 0.124 against 0.059).
                iterations = config.global_ba_iterations
                held = _adjust(cam_from_world, points, K, observations, (0,), False, iterations, config)
                if held.cost <= result.cost + config.focal_min_gain:
                    result = held
            cam_from_world, K = result.cam_from_world, result.K
    elif n_frames <= config.global_ba_max_frames:  # short clips: every frame in one adjustment (cheap there)
        recon.bundle(list(range(n_frames)), optimize_focal, max_nfev=config.ba_max_nfev)
        cam_from_world = np.stack([recon.poses[f] for f in range(n_frames)])
        K = recon.K
    progress("cameras", len(pending) + 1, len(pending) + 1)
    return cam_from_world, K, among_movers, keyframes


def _midpoint_triangulation(
    tracks: Tracks, cam_from_world: np.ndarray, K: np.ndarray, min_angle_deg: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every track's multi-view midpoint with fixed cameras, and its reprojection errors.

    Each track's point minimises the summed squared distance to its viewing rays,
    ``X = (sum_i A_i)^-1 sum_i A_i C_i`` with ``A_i = I - d_i d_i^T`` (unit ray d_i from centre C_i).

    Args:
        tracks: working-resolution tracks (T, N).
        cam_from_world: (T, 4, 4); K: (3, 3) working-resolution intrinsics.

    Returns:
        points (N, 3) float64 world, nan for tracks seen once or whose rays span less than ``min_angle_deg``;
        the (N,) median and (N,) largest reprojection error in working pixels (inf where a point has none
        or falls behind a camera).
    """
    frames, ids = np.nonzero(tracks.visible)  # observations ordered by frame
    bounds = np.searchsorted(frames, np.arange(len(cam_from_world) + 1))
    world_from_cam = np.linalg.inv(cam_from_world)
    pixels = np.concatenate([tracks.xy[frames, ids].astype(np.float64), np.ones((len(ids), 1))], axis=1)
    rays = pixels @ np.linalg.inv(K).T
    for frame, (start, end) in enumerate(itertools.pairwise(bounds)):  # one matrix product a frame
        rays[start:end] = rays[start:end] @ world_from_cam[frame, :3, :3].T
    rays /= np.linalg.norm(rays, axis=1, keepdims=True)
    centers = world_from_cam[frames, :3, 3]
    # sum_i A_i = n I - sum_i d_i d_i^T and sum_i A_i C_i = sum_i C_i - sum_i d_i (d_i . C_i), summed per track
    # by bincount (np.add.at over (M, 3, 3) projectors took 4x as long).
    n_tracks = tracks.n_tracks
    counts = np.bincount(ids, minlength=n_tracks)
    A = np.zeros((n_tracks, 3, 3))
    b = np.zeros((n_tracks, 3))
    along = np.einsum("mi,mi->m", rays, centers)
    for i in range(3):
        b[:, i] = np.bincount(ids, centers[:, i] - rays[:, i] * along, minlength=n_tracks)
        for j in range(i, 3):
            A[:, i, j] = A[:, j, i] = (i == j) * counts - np.bincount(ids, rays[:, i] * rays[:, j], minlength=n_tracks)
    # The smallest eigenvalue of sum A_i grows with the spread of the rays' directions (~ angle^2).
    eigen_min = np.linalg.eigvalsh(A)[:, 0]
    usable = (counts >= 2) & (eigen_min > 0.5 * np.radians(min_angle_deg) ** 2)
    points = np.full((n_tracks, 3), np.nan)
    points[usable] = np.linalg.solve(A[usable], b[usable][:, :, None])[:, :, 0]
    cam = points[ids]
    for frame, (start, end) in enumerate(itertools.pairwise(bounds)):
        cam[start:end] = cam[start:end] @ cam_from_world[frame, :3, :3].T + cam_from_world[frame, :3, 3]
    z = cam[:, 2]
    projected = cam @ K.T
    error = np.linalg.norm(projected[:, :2] / np.where(np.abs(z) < 1e-9, 1e-9, z)[:, None] - pixels[:, :2], axis=1)
    error = np.where(z > 0, error, np.inf)
    # Per-track median error, vectorised: sort by (track, error) and average the middle element(s).
    order = np.lexsort((error, ids))
    sorted_ids, sorted_error = ids[order], error[order]
    starts = np.searchsorted(sorted_ids, np.arange(n_tracks))
    ends = np.searchsorted(sorted_ids, np.arange(n_tracks), side="right")
    seen = ends > starts
    lower = np.minimum(starts + np.maximum(ends - starts - 1, 0) // 2, len(sorted_error) - 1)
    upper = np.minimum(starts + (ends - starts) // 2, len(sorted_error) - 1)
    with np.errstate(invalid="ignore"):
        median_error = np.where(seen & usable, 0.5 * (sorted_error[lower] + sorted_error[upper]), np.inf)
    max_error = np.zeros(n_tracks)
    np.maximum.at(max_error, ids, np.where(np.isfinite(error), error, np.inf))
    max_error[~usable] = np.inf
    return points, median_error, max_error


def triangulate_tracks(
    tracks: Tracks,
    cam_from_world: np.ndarray,
    K: np.ndarray,
    max_error_px: float,
    min_angle_deg: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Multi-view midpoint triangulation of every track with fixed cameras, then outlier rejection.

    Tracks whose median reprojection error exceeds ``max_error_px`` (movers, drifting tracks) or whose
    largest exceeds 4x that, whose rays span less than ``min_angle_deg`` or that fall behind a camera are
    dropped.

    Args:
        tracks: working-resolution tracks (T, N).
        cam_from_world: (T, 4, 4); K: (3, 3) working-resolution intrinsics.

    Returns:
        points (P, 3) float64 and the (P,) indices of their tracks.
    """
    points, median_error, max_error = _midpoint_triangulation(tracks, cam_from_world, K, min_angle_deg)
    good = (median_error < max_error_px) & (max_error < 4.0 * max_error_px)
    track_ids = np.nonzero(good)[0]
    return points[track_ids], track_ids


def tracks_among_movers(tracks: Tracks, cam_from_world: np.ndarray, K: np.ndarray, config: CameraConfig) -> np.ndarray:
    """Tracks that live mostly beside long tracks no static point explains: (N,) bool.

    A slow mover (a cart rolling a third of a pixel a frame) leaves short tracks that one static point
    explains within noise over their short lives, while the long tracks beside them are not explained.
    Seeds are tracks seen in ``mover_seed_frames`` frames or more whose median reprojection error exceeds the
    seed bar: ``mover_seed_px``, or ``mover_seed_ratio`` x the median long track's error where that is larger.
    Such tracks bend the cameras of a low-parallax clip (moving_support: ATE 1.9 % with them, 0.4 % without),
    so they are left out of the global adjustment and make no points: a track is flagged when more than
    ``mover_share`` of its observations lie within ``mover_radius`` (a share of the image width) of a seed
    seen in the same frame. The same test removes tracks around T-junctions and other unexplained corners of
    static scenes. Tracks explained within ``mover_protect`` x the seed bar over at least half the clip are
    kept whatever their neighbours.

    Args:
        tracks: working-resolution tracks (T, N).
        cam_from_world: (T, 4, 4) cameras to test the tracks against; K: (3, 3) working-resolution intrinsics.
    """
    n_frames = tracks.xy.shape[0]
    _, median_error, _ = _midpoint_triangulation(tracks, cam_from_world, K, config.min_triangulation_deg)
    length = tracks.visible.sum(axis=0)
    long = np.isfinite(median_error) & (length >= config.mover_seed_frames)
    if not long.any():
        return np.zeros(tracks.n_tracks, bool)
    # Real footage's tracks are explained less well (lens distortion, rolling shutter, blur: 7-Scenes' median
    # track 0.6 px against 0.1-0.2 px on the synthetic clips), so the bar rises with the typical track's error.
    seed_px = max(config.mover_seed_px, config.mover_seed_ratio * float(np.median(median_error[long])))
    seeds = long & (median_error > seed_px)
    if not seeds.any():
        return seeds
    radius = config.mover_radius * 2.0 * K[0, 2]  # the working width from the principal point
    near = np.zeros(tracks.visible.shape, bool)
    for frame in range(n_frames):
        seen_seeds = seeds & tracks.visible[frame]
        if not seen_seeds.any():
            continue
        visible = np.nonzero(tracks.visible[frame])[0]
        tree = cKDTree(tracks.xy[frame, seen_seeds])
        distance, _ = tree.query(tracks.xy[frame, visible], distance_upper_bound=radius)
        near[frame, visible] = np.isfinite(distance)
    flagged = near.sum(axis=0) > config.mover_share * np.maximum(length, 1)
    trusted = (median_error < config.mover_protect * seed_px) & (length >= 0.5 * n_frames)
    return (flagged & ~trusted) | seeds


def normalise_scale(cam_from_world: np.ndarray, points_world: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Rescale the world so that frame 0's camera is the identity and the median point depth in frame 0 is 1.

    Args:
        cam_from_world: (T, 4, 4); points_world: (P, 3) finite points.

    Returns:
        rescaled poses, rescaled points, the scale factor applied.
    """
    world_from_first = np.linalg.inv(cam_from_world[0])
    poses = cam_from_world @ world_from_first
    points = points_world @ cam_from_world[0][:3, :3].T + cam_from_world[0][:3, 3]
    depth = points[:, 2]
    scale = 1.0 / float(np.median(depth[depth > 0])) if np.any(depth > 0) else 1.0
    poses = poses.copy()
    poses[:, :3, 3] *= scale
    return poses, points * scale, scale


def estimate_cameras(
    tracks: Tracks,
    K: np.ndarray,
    K_is_known: bool,
    config: CameraConfig | None = None,
    progress: Progress = null_progress,
) -> CameraEstimate:
    """Choose the motion model and estimate every frame's camera.

    Args:
        tracks: point tracks at the working resolution.
        K: (3, 3) working-resolution intrinsics (the user's, or an initial guess).
        K_is_known: True keeps K fixed; False self-calibrates the focal length where observable.
    """
    config = config or CameraConfig()
    n_frames = tracks.xy.shape[0]
    static_like = static_like_tracks(tracks)
    model, reason = select_motion_model(tracks, config, static_like, K)
    optimize_focal = config.optimize_focal and not K_is_known
    empty_points = np.zeros((0, 3))
    empty_ids = np.zeros(0, np.int64)
    if model == "static":
        poses = np.tile(np.eye(4), (n_frames, 1, 1))
        reason["focal"] = "given" if K_is_known else "unobservable for a static camera: initial guess kept"
        return CameraEstimate(poses, K, "static", empty_points, empty_ids, reason, [0])
    if model == "rotation":
        poses, K_refined = estimate_rotation(tracks, K, optimize_focal, config, static_like)
        reason["focal"] = "given" if K_is_known else "self-calibrated by rotation-only bundle adjustment"
        return CameraEstimate(poses, K_refined, "rotation", empty_points, empty_ids, reason, list(range(n_frames)))
    poses, K_refined, among_movers, keyframes = estimate_general(tracks, K, optimize_focal, config, progress)
    points, point_track = triangulate_tracks(
        tracks, poses, K_refined, config.points_max_error_px, config.points_min_angle_deg
    )
    # A track among movers that a static point explains is a slow mover's short track: its point is not where
    # the mover is (moving_support's cart came out at a fifth of its depth), so it makes no depth either.
    # (Keeping those explained within 1 px, as most static ones beside T-junctions are, left enough of the
    # cart's to tilt its support: mask J 0.94 -> 0.42.)
    kept = ~among_movers[point_track]
    points, point_track = points[kept], point_track[kept]
    reason["tracks_among_movers"] = int(among_movers.sum())
    poses, points, scale = normalise_scale(poses, points)
    reason["focal"] = "given" if K_is_known else "self-calibrated in bundle adjustment (weak prior)"
    reason["scale_normalisation"] = scale
    return CameraEstimate(poses, K_refined, "general", points, point_track, reason, keyframes)
