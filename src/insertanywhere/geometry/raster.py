"""Pure rasteriser maths: edge functions, barycentric planes, perspective-correct weights.

Screen coordinates here are *grid* coordinates: the rasteriser works on a grid of
samples whose cell ``(i, j)`` (column i, row j) has its centre at ``(i + 0.5, j + 0.5)``,
the same pixel-corner convention as ``insertanywhere.conventions`` (a supersampled grid
is the pixel grid scaled by the supersampling factor).

No I/O, numpy only.
"""

from __future__ import annotations

import numpy as np


def edge_function(a_xy: np.ndarray, b_xy: np.ndarray, p_xy: np.ndarray) -> np.ndarray:
    """Signed doubled area of the triangle (a, b, p) (Pineda 1988, "A parallel algorithm for polygon rasterization").

    ``(b.x - a.x) * (p.y - a.y) - (b.y - a.y) * (p.x - a.x)``: zero on the line a-b, one sign on each side.

    Args:
        a_xy, b_xy, p_xy: (..., 2) float64 grid coordinates (broadcast together).

    Returns:
        (...,) float64.
    """
    return (b_xy[..., 0] - a_xy[..., 0]) * (p_xy[..., 1] - a_xy[..., 1]) - (b_xy[..., 1] - a_xy[..., 1]) * (
        p_xy[..., 0] - a_xy[..., 0]
    )


def barycentric_planes(triangles_xy: np.ndarray, min_area: float = 1e-12) -> tuple[np.ndarray, np.ndarray]:
    """Screen-space barycentric coordinates of each triangle as affine functions of the grid position.

    ``lambda_k(x, y) = planes[f, k, 0] * x + planes[f, k, 1] * y + planes[f, k, 2]`` for the triangle's
    vertex k; they sum to 1 and are all >= 0 exactly inside the triangle, whatever its winding.

    Args:
        triangles_xy: (F, 3, 2) float64 grid coordinates of each triangle's vertices.
        min_area: triangles whose doubled screen area is below this are degenerate.

    Returns:
        planes (F, 3, 3) float64 (zeros for degenerate triangles) and valid (F,) bool (False = degenerate).
    """
    p0, p1, p2 = triangles_xy[:, 0], triangles_xy[:, 1], triangles_xy[:, 2]
    doubled_area = edge_function(p0, p1, p2)
    valid = np.abs(doubled_area) > min_area
    inv_area = np.where(valid, 1.0 / np.where(valid, doubled_area, 1.0), 0.0)
    planes = np.zeros((len(triangles_xy), 3, 3))
    # lambda_k is the edge function of the edge opposite vertex k, divided by the doubled area.
    for k, (a, b) in enumerate(((p1, p2), (p2, p0), (p0, p1))):
        dx = b[:, 0] - a[:, 0]
        dy = b[:, 1] - a[:, 1]
        planes[:, k, 0] = -dy * inv_area
        planes[:, k, 1] = dx * inv_area
        planes[:, k, 2] = (dy * a[:, 0] - dx * a[:, 1]) * inv_area
    return planes, valid


def sample_index_range(lo: np.ndarray, hi: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """First and last sample indices whose centres ``i + 0.5`` lie in ``[lo, hi]``, clipped to ``[0, n - 1]``.

    Args:
        lo, hi: (F,) float64 grid-coordinate bounds.
        n: number of samples along the axis.

    Returns:
        first (F,) int64 and last (F,) int64; the range is empty where last < first.
    """
    first = np.maximum(np.ceil(lo - 0.5), 0).astype(np.int64)
    last = np.minimum(np.floor(hi - 0.5), n - 1).astype(np.int64)
    return first, last


def perspective_correct(screen_bary: np.ndarray, vertex_depth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Turn screen-space barycentrics into perspective-correct ones (attributes/z are affine on screen).

    Args:
        screen_bary: (N, 3) float64 screen-space barycentrics of N samples.
        vertex_depth: (N, 3) float64 camera z (> 0) of the three vertices of each sample's triangle.

    Returns:
        world_bary (N, 3) float64 perspective-correct barycentrics (sum to 1) and depth (N,) float64, the
        camera z at the sample: ``1 / sum_k(lambda_k / z_k)``.
    """
    weights = screen_bary / vertex_depth
    inv_depth = weights.sum(axis=1)
    depth = 1.0 / inv_depth
    return weights * depth[:, None], depth
