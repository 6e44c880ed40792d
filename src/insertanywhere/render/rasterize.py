"""A vectorised CPU triangle rasteriser (visibility buffer) and a slow reference one for tests.

Both take triangles already projected to *grid* coordinates (sample ``(i, j)`` has its centre at
``(i + 0.5, j + 0.5)``, see ``insertanywhere.geometry.raster``) with their camera z, and return for
every sample the nearest triangle, its perspective-correct barycentrics and its depth. Shading and
texturing happen afterwards, once per covered sample (deferred shading), so the cost of the z-test
does not depend on how expensive the material is.

Fast path (``rasterize``): vectorised scan conversion. For every (triangle, sample row) pair the
inside span is solved from the three barycentric half-planes, the spans are expanded into flat
fragment arrays (chunked to bound memory), 1/z is evaluated from its screen-affine plane, and the
z-test is one ``np.minimum.at`` on 64-bit keys ``(0xFFFFFFFF - float32 bits of 1/z) << 32 | face index``:
positive IEEE floats order like their bit patterns, so the smallest key is the nearest fragment (the
largest 1/z; ties go to the lower face index, deterministically).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from insertanywhere.geometry.raster import barycentric_planes, perspective_correct, sample_index_range

_EMPTY_KEY = np.iinfo(np.uint64).max
_SPAN_EPS = 1e-9  # grid units: closes cracks on shared edges (see _splat_chunk)


@dataclass
class VisibilityBuffer:
    """What the rasteriser saw on a (grid_h, grid_w) grid, stored compactly for the covered samples only.

    Attributes:
        shape: (grid_h, grid_w).
        sample_index: (N,) int64 flat (row-major) indices of the covered samples, increasing.
        face_index: (N,) int64 the nearest face at each covered sample.
        bary: (N, 3) float64 perspective-correct barycentrics of that face at the sample.
        depth: (N,) float64 camera z of the nearest surface at the sample.
    """

    shape: tuple[int, int]
    sample_index: np.ndarray
    face_index: np.ndarray
    bary: np.ndarray
    depth: np.ndarray

    @property
    def covered(self) -> np.ndarray:
        """(grid_h, grid_w) bool."""
        mask = np.zeros(self.shape[0] * self.shape[1], dtype=bool)
        mask[self.sample_index] = True
        return mask.reshape(self.shape)

    def dense_face_index(self) -> np.ndarray:
        """(grid_h, grid_w) int64, -1 where nothing is covered."""
        dense = np.full(self.shape[0] * self.shape[1], -1, dtype=np.int64)
        dense[self.sample_index] = self.face_index
        return dense.reshape(self.shape)

    def dense_depth(self) -> np.ndarray:
        """(grid_h, grid_w) float64, inf where nothing is covered."""
        dense = np.full(self.shape[0] * self.shape[1], np.inf)
        dense[self.sample_index] = self.depth
        return dense.reshape(self.shape)

    def dense_bary(self) -> np.ndarray:
        """(grid_h, grid_w, 3) float64, 0 where nothing is covered."""
        dense = np.zeros((self.shape[0] * self.shape[1], 3))
        dense[self.sample_index] = self.bary
        return dense.reshape(*self.shape, 3)


def _valid_faces(vertex_depth: np.ndarray, faces: np.ndarray, near: float) -> np.ndarray:
    """(F,) bool: faces whose three vertices lie in front of the near plane (callers clip first: ``render.clip``)."""
    return np.all(vertex_depth[faces] > near, axis=1)


def rasterize(
    vertices_grid: np.ndarray,
    vertex_depth: np.ndarray,
    faces: np.ndarray,
    grid_w: int,
    grid_h: int,
    near: float = 1e-6,
    max_fragments: int = 1_500_000,
) -> VisibilityBuffer:
    """Rasterise triangles with a z-buffer (fast, vectorised): the nearest face at every sample.

    Args:
        vertices_grid: (V, 2) float64 projected vertex positions in grid coordinates.
        vertex_depth: (V,) float64 camera z of each vertex (scene units, > near to be drawn).
        faces: (F, 3) int64 vertex indices. Triangles are double-sided (no culling).
        grid_w, grid_h: grid size in samples.
        near: faces with a vertex at z <= near are dropped whole (no clipping).
        max_fragments: bound on the fragments evaluated at once (memory ~ 100 bytes each).

    Returns:
        The VisibilityBuffer of the grid.
    """
    keys, planes_by_face = _depth_keys(vertices_grid, vertex_depth, faces, grid_w, grid_h, near, max_fragments)
    return _resolve(keys, grid_w, grid_h, planes_by_face, np.asarray(vertex_depth, np.float64), faces)


@dataclass
class PixelVisibility:
    """Multisampled visibility resolved to pixels (MSAA-style: coverage per sample, shading per pixel).

    Attributes:
        shape: (height, width) in pixels.
        pixel_index: (N,) int64 flat indices of the pixels with at least one covered sample, increasing.
        face_index: (N,) int64 the nearest face among the pixel's samples.
        bary: (N, 3) float64 perspective-correct barycentrics of that face at the pixel centre (clamped into
            the face when the centre lies outside it).
        depth: (N,) float64 the nearest camera z among the pixel's samples.
        coverage: (N,) float32 share of the pixel's samples covered, in (0, 1].
    """

    shape: tuple[int, int]
    pixel_index: np.ndarray
    face_index: np.ndarray
    bary: np.ndarray
    depth: np.ndarray
    coverage: np.ndarray


def rasterize_pixels(
    vertices_px: np.ndarray,
    vertex_depth: np.ndarray,
    faces: np.ndarray,
    width: int,
    height: int,
    supersample: int = 2,
    near: float = 1e-6,
) -> PixelVisibility:
    """Rasterise on a ``supersample``-times finer grid, then resolve each pixel once.

    Coverage is counted per sample (antialiased silhouettes); the pixel is shaded once, with the face
    nearest among its samples, evaluated at the pixel centre. This is what multisample antialiasing
    does on GPUs: edges get ``s*s + 1`` coverage levels at the shading cost of one sample per pixel.

    Args:
        vertices_px: (V, 2) float64 projected vertex positions in pixel coordinates of the region.
        vertex_depth: (V,) float64 camera z.
        faces: (F, 3) int64.
        width, height: region size in pixels.
        supersample: samples per pixel per axis.
        near: see ``rasterize``.
    """
    s = int(supersample)
    vertices_grid = np.asarray(vertices_px, np.float64) * s
    keys, planes_by_face = _depth_keys(vertices_grid, vertex_depth, faces, width * s, height * s, near, 1_500_000)
    pixel_keys = keys.reshape(height, s, width, s).min(axis=(1, 3)).ravel()  # nearest fragment per pixel
    covered_samples = (keys != _EMPTY_KEY).reshape(height, s, width, s).sum(axis=(1, 3)).ravel()
    pixel_index = np.flatnonzero(pixel_keys != _EMPTY_KEY)
    winners = (pixel_keys[pixel_index] & np.uint64(0xFFFFFFFF)).astype(np.int64)
    depth = _key_depth(pixel_keys[pixel_index])
    planes = planes_by_face[winners]
    cx = ((pixel_index % width) + 0.5)[:, None] * s  # pixel centre in grid coordinates
    cy = ((pixel_index // width) + 0.5)[:, None] * s
    screen_bary = planes[:, :, 0] * cx + planes[:, :, 1] * cy + planes[:, :, 2]
    np.clip(screen_bary, 0.0, None, out=screen_bary)
    screen_bary /= screen_bary.sum(axis=1, keepdims=True)
    world_bary, _ = perspective_correct(screen_bary, np.asarray(vertex_depth, np.float64)[faces[winners]])
    return PixelVisibility(
        (height, width),
        pixel_index,
        winners,
        world_bary,
        depth,
        (covered_samples[pixel_index] / float(s * s)).astype(np.float32),
    )


def _depth_keys(
    vertices_grid: np.ndarray,
    vertex_depth: np.ndarray,
    faces: np.ndarray,
    grid_w: int,
    grid_h: int,
    near: float,
    max_fragments: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The z-buffer as (grid_h * grid_w,) uint64 keys, and (F, 3, 3) barycentric planes of every face."""
    vertices_grid = np.asarray(vertices_grid, np.float64)
    vertex_depth = np.asarray(vertex_depth, np.float64)
    faces = np.asarray(faces, np.int64)
    face_ids = np.nonzero(_valid_faces(vertex_depth, faces, near))[0]
    triangles = vertices_grid[faces[face_ids]]
    planes, nondegenerate = barycentric_planes(triangles)
    face_ids, triangles, planes = face_ids[nondegenerate], triangles[nondegenerate], planes[nondegenerate]
    x_first, x_last = sample_index_range(triangles[..., 0].min(1), triangles[..., 0].max(1), grid_w)
    y_first, y_last = sample_index_range(triangles[..., 1].min(1), triangles[..., 1].max(1), grid_h)
    box_w = np.maximum(x_last - x_first + 1, 0)
    box_h = np.maximum(y_last - y_first + 1, 0)
    # Rough fragment count (bounding-box area) only to size the chunks.
    counts = box_w * box_h
    keep = counts > 0
    face_ids, planes, x_first, x_last, y_first, box_h, counts = (
        face_ids[keep],
        planes[keep],
        x_first[keep],
        x_last[keep],
        y_first[keep],
        box_h[keep],
        counts[keep],
    )
    inv_depth = 1.0 / vertex_depth[faces[face_ids]]  # (F', 3): 1/z is affine in screen space

    keys = np.full(grid_h * grid_w, _EMPTY_KEY, dtype=np.uint64)
    for start, stop in _chunks(counts, max_fragments):
        _splat_chunk(
            keys,
            grid_w,
            face_ids[start:stop],
            planes[start:stop],
            inv_depth[start:stop],
            x_first[start:stop],
            x_last[start:stop],
            y_first[start:stop],
            box_h[start:stop],
        )
    planes_by_face = np.zeros((len(faces), 3, 3))
    planes_by_face[face_ids] = planes
    return keys, planes_by_face


def _chunks(counts: np.ndarray, max_fragments: int) -> list[tuple[int, int]]:
    """Split faces into consecutive runs of at most ``max_fragments`` fragments (one face may exceed it alone)."""
    bounds = []
    cumulative = np.cumsum(counts)
    start = 0
    while start < len(counts):
        base = cumulative[start - 1] if start > 0 else 0
        stop = int(np.searchsorted(cumulative, base + max_fragments, side="right"))
        stop = max(stop, start + 1)
        bounds.append((start, stop))
        start = stop
    return bounds


def _splat_chunk(
    keys: np.ndarray,
    grid_w: int,
    face_ids: np.ndarray,
    planes: np.ndarray,
    inv_depth: np.ndarray,
    x_first: np.ndarray,
    x_last: np.ndarray,
    y_first: np.ndarray,
    box_h: np.ndarray,
) -> None:
    """Scan-convert a chunk of faces row by row (exact spans, no bounding-box waste) and z-test into ``keys``.

    On the row through sample centres ``y = j + 0.5`` each barycentric ``a_k x + (b_k y + c_k) >= 0`` is a
    half-line in x, so the inside samples form one span; spans are widened by ``_SPAN_EPS`` so a sample
    exactly on an edge shared by two triangles is drawn by both (the z-test keeps one) and never by none.
    """
    n_rows = int(box_h.sum())
    row_face = np.repeat(np.arange(len(box_h)), box_h)
    row_y = y_first[row_face] + np.arange(n_rows) - np.repeat(np.cumsum(box_h) - box_h, box_h)
    cy = row_y + 0.5
    lo = x_first[row_face] + 0.5
    hi = x_last[row_face] + 0.5
    empty = np.zeros(n_rows, dtype=bool)
    for k in range(3):
        a = planes[row_face, k, 0]
        rest = planes[row_face, k, 1] * cy + planes[row_face, k, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            bound = -rest / a
        lo = np.where(a > 0, np.maximum(lo, bound), lo)
        hi = np.where(a < 0, np.minimum(hi, bound), hi)
        empty |= (a == 0) & (rest < 0)
    first = np.ceil(lo - 0.5 - _SPAN_EPS).astype(np.int64)
    last = np.floor(hi - 0.5 + _SPAN_EPS).astype(np.int64)
    counts = np.where(empty, 0, np.maximum(last - first + 1, 0))
    total = int(counts.sum())
    # Fragment k of the chunk lies at x = row_offset[row] + k on its row (one arange for all rows).
    row_offset = first - (np.cumsum(counts) - counts)
    fragment = np.arange(total)
    # 1/z is affine in screen space: sum_k lambda_k(x, y) / z_k; along a row, inv_z = slope * x + intercept.
    inv_plane = np.einsum("fkc,fk->fc", planes, inv_depth)
    slope = inv_plane[row_face, 0]
    intercept = slope * (row_offset + 0.5) + inv_plane[row_face, 1] * cy + inv_plane[row_face, 2]
    inv_z = np.repeat(slope, counts) * fragment + np.repeat(intercept, counts)
    # The nearest fragment has the largest 1/z: invert its float32 bits so that smaller keys are nearer.
    near_bits = np.uint32(0xFFFFFFFF) - inv_z.astype(np.float32).view(np.uint32)
    fragment_keys = (near_bits.astype(np.uint64) << np.uint64(32)) | np.repeat(
        face_ids[row_face].astype(np.uint64), counts
    )
    flat = fragment + np.repeat(row_offset + row_y * grid_w, counts)
    np.minimum.at(keys, flat, fragment_keys)


def _key_depth(keys: np.ndarray) -> np.ndarray:
    """Camera z (float64) encoded in z-buffer keys (see ``_splat_chunk``)."""
    inv_z_bits = np.uint32(0xFFFFFFFF) - (keys >> np.uint64(32)).astype(np.uint32)
    return 1.0 / inv_z_bits.view(np.float32).astype(np.float64)


def _resolve(
    keys: np.ndarray,
    grid_w: int,
    grid_h: int,
    planes_by_face: np.ndarray,
    vertex_depth: np.ndarray,
    faces: np.ndarray,
) -> VisibilityBuffer:
    """Decode the winning keys and compute perspective-correct barycentrics for the covered samples only."""
    flat = np.flatnonzero(keys != _EMPTY_KEY)
    winners = (keys[flat] & np.uint64(0xFFFFFFFF)).astype(np.int64)
    planes = planes_by_face[winners]
    cx = ((flat % grid_w) + 0.5)[:, None]
    cy = ((flat // grid_w) + 0.5)[:, None]
    screen_bary = planes[:, :, 0] * cx + planes[:, :, 1] * cy + planes[:, :, 2]
    # A sample admitted by the widened span may sit a hair outside its triangle: clamp before weighting.
    np.clip(screen_bary, 0.0, None, out=screen_bary)
    screen_bary /= screen_bary.sum(axis=1, keepdims=True)
    world_bary, sample_depth = perspective_correct(screen_bary, vertex_depth[faces[winners]])
    return VisibilityBuffer((grid_h, grid_w), flat, winners, world_bary, sample_depth)


def rasterize_reference(
    vertices_grid: np.ndarray,
    vertex_depth: np.ndarray,
    faces: np.ndarray,
    grid_w: int,
    grid_h: int,
    near: float = 1e-6,
) -> VisibilityBuffer:
    """The plain, slow reference: loop over triangles and samples, solve each sample's barycentrics by a 2x2 system.

    Same arguments and result as ``rasterize``; for tests on small grids only.
    """
    face_index = np.full((grid_h, grid_w), -1, dtype=np.int64)
    bary = np.zeros((grid_h, grid_w, 3))
    depth = np.full((grid_h, grid_w), np.inf)
    nearest = np.zeros((grid_h, grid_w), dtype=np.float32)
    for f, (i0, i1, i2) in enumerate(np.asarray(faces)):
        z = np.array([vertex_depth[i0], vertex_depth[i1], vertex_depth[i2]], dtype=np.float64)
        if np.any(z <= near):
            continue
        a, b, c = (np.asarray(vertices_grid[i], np.float64) for i in (i0, i1, i2))
        matrix = np.array([[b[0] - a[0], c[0] - a[0]], [b[1] - a[1], c[1] - a[1]]])
        det = np.linalg.det(matrix)
        if abs(det) <= 1e-12:
            continue
        inverse = np.linalg.inv(matrix)
        for j in range(grid_h):
            for i in range(grid_w):
                s, t = inverse @ (np.array([i + 0.5, j + 0.5]) - a)
                lam = np.array([1.0 - s - t, s, t])
                if np.any(lam < 0):
                    continue
                weights = lam / z
                sample_depth = 1.0 / weights.sum()
                key_inv_depth = np.float32(weights.sum())  # the z-test compares float32 1/z, as the fast path
                if key_inv_depth > nearest[j, i] or (key_inv_depth == nearest[j, i] and f < face_index[j, i]):
                    nearest[j, i] = key_inv_depth
                    depth[j, i] = sample_depth
                    face_index[j, i] = f
                    bary[j, i] = weights * sample_depth
    flat = np.flatnonzero(face_index.ravel() >= 0)
    return VisibilityBuffer(
        (grid_h, grid_w),
        flat,
        face_index.ravel()[flat],
        bary.reshape(-1, 3)[flat],
        depth.ravel()[flat].astype(np.float64),
    )
