"""Stage 4: dense depth per frame.

Backends (``DEPTH_BACKENDS``):

* ``classical`` (default, no weights): the static triangulated points seen in a frame, projected with
  their tracked positions, are densified by piecewise-linear interpolation of *inverse* depth over their
  Delaunay triangulation (planes stay planar under perspective only in inverse depth), pixels on
  triangles whose three vertices lie on one robust support plane take that plane's exact depth, the
  rest is filled from the nearest known pixel, and a guided filter (He et al., ECCV 2010) with the frame
  as guide aligns the result with image edges. The points are the same 3D points in every frame, so
  depth is temporally consistent by construction.
* ``depth-anything-v2`` and ``files:DIR``: per-frame priors (``DepthPrior``) aligned to the
  reconstruction by robust scale and shift (``align_prior``), see refine.py for the joint refinement.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import cv2
import numpy as np
from scipy.spatial import Delaunay

from insertanywhere.errors import InputError

PriorKind = Literal["disparity", "depth"]


# ----------------------------------------------------------------------------- pure helpers


def guided_filter(guide: np.ndarray, source: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Grey-guide guided filter (He, Sun & Tang, ECCV 2010, eqs. 7-8).

    Args:
        guide: (h, w) float32 guide image in [0, 1].
        source: (h, w) float32 image to filter.
        radius: box radius in pixels; eps: regularisation (guide variance below eps is smoothed over).

    Returns:
        (h, w) float32 filtered ``source`` whose edges follow ``guide``.
    """
    size = (2 * radius + 1, 2 * radius + 1)

    def box(image: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(image, cv2.CV_32F, size, borderType=cv2.BORDER_REFLECT)

    mean_i, mean_p = box(guide), box(source)
    cov_ip = box(guide * source) - mean_i * mean_p
    var_i = box(guide * guide) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return box(a) * guide + box(b)


def fit_planes_ransac(
    points: np.ndarray, threshold: float, max_planes: int = 3, min_share: float = 0.12, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Sequential RANSAC for dominant planes (floor, table top, walls).

    Args:
        points: (N, 3) world points; threshold: inlier distance in scene units.

    Returns:
        list of (plane (4,) ``[n, d]`` with ``n . X + d = 0`` and unit n, inlier indices (K,)).
    """
    rng = np.random.default_rng(seed)
    remaining = np.arange(len(points))
    planes: list[tuple[np.ndarray, np.ndarray]] = []
    while len(planes) < max_planes and len(remaining) >= max(30, min_share * len(points)):
        best_inliers = np.zeros(0, np.int64)
        best_plane = None
        candidates = points[remaining]
        for _ in range(200):
            sample = candidates[rng.choice(len(candidates), 3, replace=False)]
            normal = np.cross(sample[1] - sample[0], sample[2] - sample[0])
            norm = np.linalg.norm(normal)
            if norm < 1e-12:
                continue
            normal /= norm
            distance = np.abs(candidates @ normal - normal @ sample[0])
            inliers = np.nonzero(distance < threshold)[0]
            if len(inliers) > len(best_inliers):
                best_inliers, best_plane = inliers, np.append(normal, -normal @ sample[0])
        if best_plane is None or len(best_inliers) < min_share * len(points):
            break
        # Least-squares refit on the inliers (smallest principal direction).
        inlier_points = candidates[best_inliers]
        centroid = inlier_points.mean(axis=0)
        normal = np.linalg.svd(inlier_points - centroid)[2][-1]
        plane = np.append(normal, -normal @ centroid)
        inliers = np.nonzero(np.abs(candidates @ normal + plane[3]) < threshold)[0]
        planes.append((plane, remaining[inliers]))
        remaining = np.delete(remaining, inliers)
    return planes


def densify_frame(
    xy: np.ndarray,
    z: np.ndarray,
    plane_id: np.ndarray,
    planes_cam: list[np.ndarray],
    K: np.ndarray,
    gray: np.ndarray,
    guide_radius: int = 6,
    guide_eps: float = 1e-3,
) -> tuple[np.ndarray, np.ndarray]:
    """Dense depth of one frame from sparse points.

    Inverse depth is affine in the pixel coordinates over a planar patch, ``1/z = a x + b y + c``; each
    Delaunay triangle gets the affine function through its three vertices, or, when its three vertices
    lie on one support plane ``n . X + d = 0``, the plane's own ``(a, b, c) = -(n^T K^-1) / d``. Triangles
    are rasterised by id, and every pixel evaluates its triangle's function.

    Args:
        xy: (N, 2) pixel positions (pixel-corner origin) of static points in this frame.
        z: (N,) their z-depth (> 0).
        plane_id: (N,) index into ``planes_cam`` of each point's support plane, -1 for none.
        planes_cam: planes ``[n, d]`` (4,) in this camera's frame.
        K: (3, 3) intrinsics of the image.
        gray: (h, w) uint8 frame used as the edge guide.

    Returns:
        depth (h, w) float32 (0 where nothing is known) and confidence (h, w) float32 in [0, 1].
    """
    height, width = gray.shape
    depth = np.zeros((height, width), np.float32)
    confidence = np.zeros((height, width), np.float32)
    if len(xy) < 4:
        return depth, confidence
    try:
        triangles = Delaunay(xy).simplices
    except Exception:  # degenerate (collinear) points: scipy raises QhullError
        return depth, confidence
    corners = xy[triangles]  # (M, 3, 2)
    design = np.concatenate([corners, np.ones((len(triangles), 3, 1))], axis=2)
    inverse_z = 1.0 / z[triangles]
    determinant = np.linalg.det(design)
    usable = np.abs(determinant) > 1e-6
    coefficients = np.zeros((len(triangles), 3))
    coefficients[usable] = np.linalg.solve(design[usable], inverse_z[usable][:, :, None])[:, :, 0]
    vertex_planes = plane_id[triangles]
    on_plane = (vertex_planes[:, 0] >= 0) & (vertex_planes[:, 0] == vertex_planes[:, 1])
    on_plane &= vertex_planes[:, 1] == vertex_planes[:, 2]
    if on_plane.any() and planes_cam:
        planes = np.stack(planes_cam)[vertex_planes[on_plane, 0]]
        plane_coefficients = -(planes[:, :3] @ np.linalg.inv(K)) / planes[:, 3:4]
        coefficients[on_plane] = plane_coefficients
    # Rasterise triangle ids (+1; 0 = outside the hull). Pixel index i covers [i, i+1): shift by 0.5.
    ids = np.zeros((height, width), np.int32)
    shift = 4
    vertices_fixed = np.round((corners - 0.5) * (1 << shift)).astype(np.int32)
    for index in np.nonzero(usable)[0]:
        cv2.fillConvexPoly(ids, vertices_fixed[index], int(index) + 1, lineType=cv2.LINE_8, shift=shift)
    inside = ids > 0
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32) + 0.5, np.arange(height, dtype=np.float32) + 0.5)
    triangle_coefficients = coefficients[np.maximum(ids - 1, 0)].astype(np.float32)
    inverse_depth = (
        triangle_coefficients[..., 0] * xs + triangle_coefficients[..., 1] * ys + triangle_coefficients[..., 2]
    )
    known = inside & (inverse_depth > 1e-6)
    if not known.any():
        return depth, confidence
    # Outside the points' hull: the nearest known pixel's value (low confidence).
    _, labels = cv2.distanceTransformWithLabels(
        (~known).astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
    )
    known_values = inverse_depth[known]
    label_of_known = labels[known]
    lookup = np.zeros(labels.max() + 1, np.float32)
    lookup[label_of_known] = known_values
    filled = np.where(known, inverse_depth, lookup[labels]).astype(np.float32)
    smooth = guided_filter(gray.astype(np.float32) / 255.0, filled, guide_radius, guide_eps)
    smooth = np.where(smooth > 1e-6, smooth, filled)
    depth = (1.0 / np.maximum(smooth, 1e-6)).astype(np.float32)
    # Confidence falls with the distance to the nearest measured point and outside the hull.
    seeds = np.full((height, width), 255, np.uint8)
    cols = np.clip(xy[:, 0].astype(int), 0, width - 1)
    rows = np.clip(xy[:, 1].astype(int), 0, height - 1)
    seeds[rows, cols] = 0
    distance = cv2.distanceTransform(seeds, cv2.DIST_L2, 3)
    scale = 0.05 * max(height, width)
    confidence = (np.exp(-distance / scale) * np.where(known, 1.0, 0.4)).astype(np.float32)
    return depth, confidence


# ----------------------------------------------------------------------------- priors


class DepthPrior(Protocol):
    """A per-frame depth prior (learned model or files)."""

    name: str
    kind: PriorKind  # "disparity": affine-invariant inverse depth; "depth": z-depth up to scale (or metric)
    metric: bool

    def __call__(self, frame_index: int, image: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 frame -> (h, w) float32 prior (any resolution; resized by the caller)."""


@dataclass
class FileDepthPrior:
    """Depth maps the user has, one per frame, sorted by name in ``folder``: 16-bit PNG in millimetres
    (0 = unknown), ``.npy`` float z-depth in metres, or ``.exr`` float metres (when OpenCV reads EXR)."""

    folder: Path
    name: str = "files"
    kind: PriorKind = "depth"
    metric: bool = True

    def __post_init__(self) -> None:
        self.folder = Path(self.folder)
        if not self.folder.is_dir():
            raise InputError(f"depth files folder {self.folder} does not exist; give --depth files:DIR")
        suffixes = (".png", ".npy", ".exr")
        self.files = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in suffixes)
        if not self.files:
            raise InputError(f"{self.folder}: no depth maps (.png 16-bit mm, .npy metres, .exr metres) found")

    def check_count(self, n_frames: int) -> None:
        if len(self.files) != n_frames:
            raise InputError(f"{self.folder}: {len(self.files)} depth maps for a clip of {n_frames} frames")

    def __call__(self, frame_index: int, image: np.ndarray) -> np.ndarray:
        path = self.files[frame_index]
        if path.suffix.lower() == ".npy":
            return np.load(path).astype(np.float32)
        if path.suffix.lower() == ".exr":
            import os

            os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")
        data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if data is None:
            raise InputError(f"{path}: not a readable depth map (16-bit PNG in mm, .npy or .exr in metres)")
        if data.ndim == 3:
            data = data[..., 0]
        if data.dtype == np.uint16:
            return np.where(data == 65535, 0, data).astype(np.float32) / 1000.0
        return data.astype(np.float32)


def align_prior(
    prior: np.ndarray, kind: PriorKind, z_points: np.ndarray, xy_points: np.ndarray, shift: bool = True
) -> tuple[float, float]:
    """Robust scale and shift mapping a prior onto sparse reconstructed depth.

    For ``disparity`` priors fits ``1/z ~ s * prior + b`` (Ranftl et al., MiDaS, TPAMI 2022, scale-and-shift
    invariance), for ``depth`` priors ``z ~ s * prior`` (b = 0); iteratively reweighted (Huber) least squares.

    Args:
        prior: (h, w) float32 prior at the working resolution.
        z_points: (N,) reconstructed z-depth of static points; xy_points: (N, 2) their pixels.

    Returns:
        (s, b).
    """
    height, width = prior.shape
    cols = np.clip(xy_points[:, 0].astype(int), 0, width - 1)
    rows = np.clip(xy_points[:, 1].astype(int), 0, height - 1)
    values = prior[rows, cols].astype(np.float64)
    valid = np.isfinite(values) & (values > 0) & (z_points > 0)
    if valid.sum() < 5:
        return 1.0, 0.0
    values = values[valid]
    target = 1.0 / z_points[valid] if kind == "disparity" else z_points[valid]
    use_shift = shift and kind == "disparity"
    design = np.stack([values, np.ones_like(values)], axis=1) if use_shift else values[:, None]
    weights = np.ones(len(values))
    solution = np.zeros(design.shape[1])
    for _ in range(10):
        sqrt_w = np.sqrt(weights)
        solution = np.linalg.lstsq(design * sqrt_w[:, None], target * sqrt_w, rcond=None)[0]
        residual = np.abs(design @ solution - target)
        delta = 1.4826 * np.median(residual) + 1e-12
        weights = np.where(residual < delta, 1.0, delta / residual)
    return float(solution[0]), float(solution[1]) if use_shift else 0.0


def prior_to_depth(prior: np.ndarray, kind: PriorKind, scale: float, shift: float) -> np.ndarray:
    """Apply an alignment: (h, w) prior -> (h, w) float32 z-depth, 0 where invalid."""
    if kind == "disparity":
        inverse = scale * prior + shift
        return np.where(inverse > 1e-6, 1.0 / np.maximum(inverse, 1e-6), 0.0).astype(np.float32)
    return np.where(prior > 0, scale * prior, 0.0).astype(np.float32)


DEPTH_BACKENDS: dict[str, Callable[..., DepthPrior] | None] = {"classical": None}
"""Depth backends by name; ``classical`` has no prior. Learned ones are registered in config.py."""
