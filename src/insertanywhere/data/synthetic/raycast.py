"""A vectorised numpy ray caster for the synthetic scenes.

Per frame it casts ``supersample**2`` primary rays per pixel (a regular grid inside the pixel) against
textured rectangles, boxes and the inserted cut-out card, shades hits with Lambert + ambient under a
directional sun, and tests one shadow ray per lit hit toward the sun. One pass yields both the scene
without the object and with it, because the object only adds (a) a layer in front of the background and
(b) a transmittance ``1 - alpha`` on shadow rays:

    L_without = albedo * (ambient + sun * max(0, n.l) * T_scene)
    L_with    = albedo * (ambient + sun * max(0, n.l) * T_scene * (1 - alpha_card))
    pixel     = alpha_visible * L_card + (1 - alpha_visible) * L_with      (per sample, then averaged)

Radiance is linear; samples are averaged in linear space (box filter) and encoded with gamma 1/2.2.
Depth is the exact z-depth (rays are scaled to camera z = 1, so the ray parameter *is* z-depth).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from insertanywhere.conventions import Camera
from insertanywhere.data.synthetic.scene import SceneDescription
from insertanywhere.data.synthetic.textures import SRGB_GAMMA, MipTexture, sample_texture

RAY_EPSILON = 1e-4
"""Metres: hits closer than this along a ray are ignored (self-intersection guard)."""
SHADOW_OFFSET = 2e-3
"""Metres a shadow ray starts above its surface, along the normal facing the light."""
SKY_ID = -1


@dataclass
class FrameRender:
    """One rendered frame; all (H, W) arrays are per output pixel.

    Attributes:
        background: (H, W, 3) uint8 sRGB, the scene without the object.
        inserted: (H, W, 3) uint8 sRGB, the scene with the object (its shadow included).
        alpha_visible: (H, W) float32 in [0, 1], the object's coverage after occlusion.
        alpha_unoccluded: (H, W) float32 in [0, 1], its coverage if nothing were in front of it.
        object_rgb: (H, W, 3) uint8 sRGB straight (un-premultiplied) lit colour of the object, 0 elsewhere.
        shadow: (H, W) float32 in [0, 1], ``1 - radiance_with / radiance_without`` of the background
            (luminance), 0 where the visible object covers >= half the pixel.
        depth: (H, W) float32 z-depth in metres of the background scene (no object), 0 = no hit (sky).
        dynamic: (H, W) bool, pixels whose background surface belongs to an independently moving body.
    """

    background: np.ndarray
    inserted: np.ndarray
    alpha_visible: np.ndarray
    alpha_unoccluded: np.ndarray
    object_rgb: np.ndarray
    shadow: np.ndarray
    depth: np.ndarray
    dynamic: np.ndarray


@dataclass
class _Placed:
    """A primitive posed in the world for one frame: ``world_from_local`` = (R, c)."""

    index: int
    kind: str  # "rect" | "box" | "card"
    R: np.ndarray  # (3, 3) float64 world_from_local rotation
    c: np.ndarray  # (3,) float64 local origin in world
    dynamic: bool
    casts_shadow: bool
    # rect / card
    x_range: tuple[float, float] = (0.0, 0.0)
    y_range: tuple[float, float] = (0.0, 0.0)
    texture: MipTexture | None = None
    tile: tuple[float, float] | None = None
    cutout: bool = False
    # box
    half: np.ndarray | None = None
    texture_top: MipTexture | None = None
    box_tile: float = 1.0
    R32: np.ndarray = field(init=False, repr=False)
    c32: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # float32 copies for the per-ray arithmetic (metre-scale scenes: ~1e-5 m precision is plenty).
        self.R32 = self.R.astype(np.float32)
        self.c32 = self.c.astype(np.float32)

    def corners(self) -> np.ndarray:
        """(4 or 8, 3) float64 world corners (for screen-space and light-space culling)."""
        if self.kind == "box":
            signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], float)
            local = signs * self.half
        else:
            (x0, x1), (y0, y1) = self.x_range, self.y_range
            local = np.array([[x0, y0, 0], [x1, y0, 0], [x0, y1, 0], [x1, y1, 0]], float)
        return local @ self.R.T + self.c


def _place_primitives(scene: SceneDescription, frame: int) -> tuple[list[_Placed], _Placed]:
    placed: list[_Placed] = []
    for rect in scene.rects:
        pose = scene.world_from(rect.body, rect.body_from_rect, frame)
        placed.append(
            _Placed(
                len(placed), "rect", pose[:3, :3], pose[:3, 3], scene.bodies[rect.body].dynamic, rect.casts_shadow,
                x_range=rect.x_range, y_range=rect.y_range, texture=rect.texture, tile=rect.tile, cutout=rect.cutout,
            )
        )  # fmt: skip
    for box in scene.boxes:
        pose = scene.world_from(box.body, box.body_from_box, frame)
        placed.append(
            _Placed(
                len(placed), "box", pose[:3, :3], pose[:3, 3], scene.bodies[box.body].dynamic, box.casts_shadow,
                half=np.asarray(box.half_extents, float), texture=box.texture_side, texture_top=box.texture_top,
                box_tile=box.tile,
            )
        )  # fmt: skip
    card = scene.card
    pose = scene.world_from_object(frame)
    card_placed = _Placed(
        len(placed), "card", pose[:3, :3], pose[:3, 3], scene.support_moves, True,
        x_range=(-card.width_m / 2, card.width_m / 2), y_range=(0.0, card.height_m), texture=card.texture,
    )  # fmt: skip
    return placed, card_placed


# ----------------------------------------------------------------------------- intersections


def _times_matrix(vectors: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``vectors @ matrix`` for (N, 3) float32 vectors and a (3, 3) matrix.

    Computed as ``(matrix.T @ vectors.T).T``: numpy runs the (3, 3) x (3, N) product about 15x faster than
    the (N, 3) x (3, 3) one, and the result's columns come out contiguous (the callers read columns).
    """
    if vectors.ndim == 1:
        return vectors @ matrix
    return (matrix.T @ vectors.T).T


def _intersect_plane(prim: _Placed, origins: np.ndarray, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ray / rectangle-plane hits.

    Args:
        origins: (N, 3) or (3,) world ray origins; dirs: (N, 3) or (3,) world directions (any length);
            at least one of the two is (N, 3).

    Returns:
        t (N,) float32 ray parameter (inf where no hit inside the rectangle), local (N, 2) float32 (x, y).
    """
    origin_local = _times_matrix(origins - prim.c32, prim.R32)
    dir_local = _times_matrix(dirs, prim.R32)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = -origin_local[..., 2] / dir_local[..., 2]
    x = origin_local[..., 0] + t * dir_local[..., 0]
    y = origin_local[..., 1] + t * dir_local[..., 1]
    (x0, x1), (y0, y1) = prim.x_range, prim.y_range
    hit = (t > RAY_EPSILON) & (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
    return np.where(hit, t, np.inf).astype(np.float32), np.stack([x, y], axis=-1).astype(np.float32)


def _rect_uv(prim: _Placed, local: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Texture (u, v) (N,) of local rectangle points (N, 2): u along +x, v along -y (one tile = 1)."""
    (x0, x1), (y0, y1) = prim.x_range, prim.y_range
    tile_w, tile_h = prim.tile if prim.tile is not None else (x1 - x0, y1 - y0)
    return (local[:, 0] - x0) / tile_w, (y1 - local[:, 1]) / tile_h


def _intersect_box(prim: _Placed, origins: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """Ray / box hits by the slab method (Kay & Kajiya 1986); returns t (N,) float32, inf = miss."""
    origin_local = _times_matrix(origins - prim.c32, prim.R32)
    dir_local = _times_matrix(dirs, prim.R32)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / dir_local
        t1 = (-prim.half - origin_local) * inv
        t2 = (prim.half - origin_local) * inv
        near = np.minimum(t1, t2)
        far = np.maximum(t1, t2)
        # fmax/fmin skip the NaNs of 0 * inf (a ray parallel to a slab, starting on its plane).
        t_near = np.fmax(np.fmax(near[..., 0], near[..., 1]), near[..., 2])
        t_far = np.fmin(np.fmin(far[..., 0], far[..., 1]), far[..., 2])
    hit = (t_near <= t_far) & (t_near > RAY_EPSILON)
    return np.where(hit, t_near, np.inf).astype(np.float32)


def _intersect_opaque(prim: _Placed, origins: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """t (N,) float32 of the first opaque hit on ``prim`` (cut-out rectangles test alpha >= 0.5)."""
    if prim.kind == "box":
        return _intersect_box(prim, origins, dirs)
    t, local = _intersect_plane(prim, origins, dirs)
    if prim.cutout:
        hit = np.nonzero(np.isfinite(t))[0]
        if hit.size:
            u, v = _rect_uv(prim, local[hit])
            alpha = sample_texture(prim.texture, u, v, None, wrap=prim.tile is not None)[:, 3]
            t[hit[alpha < 0.5]] = np.inf
    return t


# ----------------------------------------------------------------------------- rendering


def _screen_box(camera: Camera, corners: np.ndarray, width_ss: int, height_ss: int, ss: int) -> tuple[slice, slice]:
    """Slices of the supersampled grid that can see a primitive with world ``corners`` (N, 3)."""
    pixels, z = camera.project(corners)
    if np.any(z <= 0.05):
        return slice(0, height_ss), slice(0, width_ss)
    x0, y0 = np.floor(pixels.min(axis=0) * ss).astype(int) - 2
    x1, y1 = np.ceil(pixels.max(axis=0) * ss).astype(int) + 2
    return slice(max(y0, 0), max(min(y1, height_ss), 0)), slice(max(x0, 0), max(min(x1, width_ss), 0))


def _lod(texel_m: float, distance: np.ndarray, cos_incidence: np.ndarray, sample_angle: float) -> np.ndarray:
    """Mip level per sample: log2 of the sample's footprint in texels. The footprint on a tilted surface
    is stretched by 1/cos along one axis; an isotropic lookup takes the geometric mean, 1/sqrt(cos)."""
    footprint = distance * sample_angle / np.sqrt(np.maximum(cos_incidence, 0.05))
    return np.log2(np.maximum(footprint / texel_m, 1.0)).astype(np.float32)


def _shade_surface(
    prim: _Placed, origin: np.ndarray, dirs: np.ndarray, ray_length: np.ndarray, t: np.ndarray, sample_angle: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Albedo and normal at hits.

    Args:
        prim: the primitive every one of these rays hits first.
        origin: (3,) camera centre; dirs: (N, 3) float32 ray directions (camera z = 1); ray_length: (N,)
            their norms; t: (N,) z-depth.
        sample_angle: radians between neighbouring samples at the image centre (picks the mip level).

    Returns:
        points (N, 3) float32 world, normals (N, 3) float32 unit, facing the camera,
        albedo (N, 4) float32 linear RGB + alpha (alpha = 1 on opaque surfaces).
    """
    points = origin.astype(np.float32) + dirs * t[:, None]
    local = _times_matrix(points - prim.c32, prim.R32)
    if prim.kind == "box":
        ratio = np.abs(local) / prim.half
        axis = np.argmax(ratio, axis=1)
        sign = np.sign(local[np.arange(len(axis)), axis])
        normals = prim.R32.T[axis] * sign[:, None].astype(np.float32)  # column `axis` of R, signed
        albedo = np.ones((len(t), 4), np.float32)
        tile = prim.box_tile
        faces = [(2, (0, 1), prim.texture_top), (0, (1, 2), prim.texture), (1, (0, 2), prim.texture)]
        for face_axis, (a, b), texture in faces:
            sel = np.nonzero(axis == face_axis)[0]
            if not sel.size:
                continue
            u = (local[sel, a] + prim.half[a]) / tile
            v = (prim.half[b] - local[sel, b]) / tile
            cos = np.abs(np.einsum("ij,ij->i", normals[sel], dirs[sel])) / ray_length[sel]
            texel_m = tile / texture.size[0]
            lod = _lod(texel_m, t[sel] * ray_length[sel], cos, sample_angle)
            albedo[sel, :3] = sample_texture(texture, u, v, lod, wrap=True)[:, :3]
    else:
        normals = np.broadcast_to(prim.R32[:, 2], (len(t), 3)).copy()
        u, v = _rect_uv(prim, local[:, :2])
        cos = np.abs(dirs @ prim.R32[:, 2]) / ray_length
        tile_w = prim.tile[0] if prim.tile is not None else prim.x_range[1] - prim.x_range[0]
        lod = _lod(tile_w / prim.texture.size[0], t * ray_length, cos, sample_angle)
        values = sample_texture(prim.texture, u, v, lod, wrap=prim.tile is not None)
        albedo = values if values.shape[1] == 4 else np.concatenate([values, np.ones((len(t), 1), np.float32)], 1)
    facing = np.einsum("ij,ij->i", normals, dirs) > 0
    normals[facing] *= -1.0
    return points, normals, albedo.astype(np.float32)


class _ShadowCaster:
    """Shadow-ray tests toward one directional light, culled in light space: every primitive's corners
    are projected on a plane orthogonal to the light, and only the rays starting inside that 2D box (and
    below its highest point along the light) are intersected."""

    def __init__(self, light_dir: np.ndarray, casters: list[_Placed], card: _Placed) -> None:
        self.light_dir = light_dir / np.linalg.norm(light_dir)
        helper = np.array([1.0, 0.0, 0.0]) if abs(self.light_dir[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
        axis_a = np.cross(self.light_dir, helper)
        axis_a /= np.linalg.norm(axis_a)
        axis_b = np.cross(self.light_dir, axis_a)
        self.basis = np.stack([axis_a, axis_b, self.light_dir], axis=1)  # (3, 3) columns a, b, l
        self.basis32 = self.basis.astype(np.float32)
        self.light_dir32 = self.light_dir.astype(np.float32)
        self.casters = [(p, self._bounds(p)) for p in casters if p.casts_shadow]
        self.card = (card, self._bounds(card))

    def _bounds(self, prim: _Placed) -> np.ndarray:
        coords = prim.corners() @ self.basis
        low, high = coords.min(axis=0) - 1e-3, coords.max(axis=0) + 1e-3
        return np.array([low[0], high[0], low[1], high[1], high[2]])

    @staticmethod
    def _candidates(coords: np.ndarray, bounds: np.ndarray) -> np.ndarray:
        inside = (coords[:, 0] >= bounds[0]) & (coords[:, 0] <= bounds[1]) & (coords[:, 1] >= bounds[2])
        inside &= (coords[:, 1] <= bounds[3]) & (coords[:, 2] <= bounds[4])
        return np.nonzero(inside)[0]

    def transmittance(
        self, points: np.ndarray, normals: np.ndarray, exclude: int | None, with_card: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Light reaching surface points.

        Args:
            points: (N, 3) float64 world points; normals: (N, 3) unit normals (their side faces the light).
            exclude: index of a primitive not to test (the surface itself), or None.
            with_card: also test the inserted card.

        Returns:
            scene (N,) float32 in {0, 1}: 0 where an opaque primitive blocks the sun;
            card (N,) float32 in [0, 1]: 1 - the card's alpha where the ray crosses the card, else 1.
        """
        origins = points + normals * np.float32(SHADOW_OFFSET)
        coords = _times_matrix(origins, self.basis32)
        scene = np.ones(len(points), np.float32)
        for prim, bounds in self.casters:
            if prim.index == exclude:
                continue
            cand = self._candidates(coords, bounds)
            cand = cand[scene[cand] > 0]
            if cand.size:
                t = _intersect_opaque(prim, origins[cand], self.light_dir32)
                scene[cand[np.isfinite(t)]] = 0.0
        card = np.ones(len(points), np.float32)
        if with_card:
            prim, bounds = self.card
            cand = self._candidates(coords, bounds)
            if cand.size:
                t, local = _intersect_plane(prim, origins[cand], self.light_dir32)
                hit = np.nonzero(np.isfinite(t))[0]
                if hit.size:
                    u, v = _rect_uv(prim, local[hit])
                    alpha = sample_texture(prim.texture, u, v, None, wrap=False)[:, 3]
                    card[cand[hit]] = 1.0 - alpha
        return scene, card


def _sky_radiance(dirs: np.ndarray) -> np.ndarray:
    """(N, 3) float32 linear sky colour by ray elevation (for rays that leave the scene)."""
    elevation = dirs[:, 2] / np.linalg.norm(dirs, axis=1)
    mix = np.clip(elevation, 0.0, 1.0)[:, None]
    horizon = np.array([0.75, 0.8, 0.85], np.float32)
    zenith = np.array([0.25, 0.4, 0.75], np.float32)
    return (horizon * (1 - mix) + zenith * mix).astype(np.float32)


def _encode_srgb(linear: np.ndarray) -> np.ndarray:
    return np.round(np.clip(linear, 0.0, 1.0) ** (1.0 / SRGB_GAMMA) * 255.0).astype(np.uint8)


def _block_mean(values: np.ndarray, height: int, width: int, ss: int) -> np.ndarray:
    """Average (H*ss, W*ss) or (H*ss, W*ss, 3) float32 samples into (H, W[, 3]) pixels (a box filter;
    cv2's INTER_AREA with an integer factor is exactly the block mean)."""
    import cv2

    if ss == 1:
        return values.astype(np.float32)
    return cv2.resize(values.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)


def render_frame(scene: SceneDescription, frame: int, supersample: int = 2) -> FrameRender:
    """Render frame ``frame`` of ``scene`` with ``supersample**2`` rays per pixel."""
    camera = scene.cameras[frame]
    width, height, ss = scene.width, scene.height, supersample
    width_ss, height_ss = width * ss, height * ss
    placed, card = _place_primitives(scene, frame)
    light = scene.light
    light_dir = np.asarray(light.direction, float)
    light_dir32 = light_dir.astype(np.float32)
    sun = np.asarray(light.sun_rgb, np.float32)
    ambient = np.asarray(light.ambient_rgb, np.float32)

    # Primary rays through a regular ss x ss grid in every pixel, scaled so camera z = 1 (t = z-depth).
    K = camera.K
    xs = (np.arange(width_ss, dtype=np.float64) + 0.5) / ss
    ys = (np.arange(height_ss, dtype=np.float64) + 0.5) / ss
    # Camera-frame ray (x_c, y_c, 1) = K^-1 (x, y, 1) (no skew), rotated to world: separable in x and y.
    ray_x = (xs - K[0, 2] - K[0, 1] * ((ys[:, None] - K[1, 2]) / K[1, 1])) / K[0, 0]  # (Hs, Ws)
    ray_y = np.broadcast_to(((ys - K[1, 2]) / K[1, 1])[:, None], ray_x.shape)
    world_from_cam = camera.world_from_cam
    R_wc = world_from_cam[:3, :3]
    dirs = np.empty((height_ss, width_ss, 3), np.float32)  # (Hs, Ws, 3) world directions, camera z = 1
    for k in range(3):
        dirs[..., k] = R_wc[k, 0] * ray_x + R_wc[k, 1] * ray_y + R_wc[k, 2]
    ray_length = np.linalg.norm(dirs, axis=-1)
    origin = world_from_cam[:3, 3].astype(np.float32)
    sample_angle = 1.0 / (camera.K[0, 0] * ss)

    t_scene = np.full((height_ss, width_ss), np.inf, np.float32)
    id_scene = np.full((height_ss, width_ss), SKY_ID, np.int32)
    for prim in placed:
        rows, cols = _screen_box(camera, prim.corners(), width_ss, height_ss, ss)
        region = dirs[rows, cols]
        if region.size == 0:
            continue
        t = _intersect_opaque(prim, origin, region.reshape(-1, 3)).reshape(region.shape[:2])
        closer = t < t_scene[rows, cols]
        t_scene[rows, cols][closer] = t[closer]
        id_scene[rows, cols][closer] = prim.index

    # The card: a continuous-alpha layer.
    t_card = np.full((height_ss, width_ss), np.inf, np.float32)
    alpha_card = np.zeros((height_ss, width_ss), np.float32)
    radiance_card = np.zeros((height_ss, width_ss, 3), np.float32)
    rows, cols = _screen_box(camera, card.corners(), width_ss, height_ss, ss)
    region = dirs[rows, cols].reshape(-1, 3)
    shadows = _ShadowCaster(light_dir, placed, card)
    if region.size:
        t, _ = _intersect_plane(card, origin, region)
        hit = np.nonzero(np.isfinite(t))[0]
        if hit.size:
            lengths = ray_length[rows, cols].reshape(-1)[hit]
            points, normals, albedo = _shade_surface(card, origin, region[hit], lengths, t[hit], sample_angle)
            lambert = np.maximum(normals @ light_dir32, 0.0)
            lit = np.nonzero(lambert > 0)[0]
            scene_t = np.ones(len(hit), np.float32)
            if lit.size:
                scene_t[lit], _ = shadows.transmittance(points[lit], normals[lit], None, with_card=False)
            radiance = albedo[:, :3] * (ambient + sun * (lambert * scene_t)[:, None])
            region_t = np.full(len(region), np.inf, np.float32)
            region_alpha = np.zeros(len(region), np.float32)
            region_radiance = np.zeros((len(region), 3), np.float32)
            region_t[hit] = t[hit]
            region_alpha[hit] = albedo[:, 3]
            region_radiance[hit] = radiance
            shape = (rows.stop - rows.start, cols.stop - cols.start)
            t_card[rows, cols] = region_t.reshape(shape)
            alpha_card[rows, cols] = region_alpha.reshape(shape)
            radiance_card[rows, cols] = region_radiance.reshape(*shape, 3)

    # Shade the background scene, with and without the card's shadow.
    flat_dirs = dirs.reshape(-1, 3)
    flat_ids = id_scene.reshape(-1)
    flat_t = t_scene.reshape(-1)
    flat_length = ray_length.reshape(-1)
    without_card = np.empty((flat_ids.size, 3), np.float32)
    with_card = np.empty((flat_ids.size, 3), np.float32)
    sky = np.nonzero(flat_ids == SKY_ID)[0]
    without_card[sky] = with_card[sky] = _sky_radiance(flat_dirs[sky])
    for prim in placed:
        sel = np.nonzero(flat_ids == prim.index)[0]
        if not sel.size:
            continue
        points, normals, albedo = _shade_surface(
            prim, origin, flat_dirs[sel], flat_length[sel], flat_t[sel], sample_angle
        )
        lambert = np.maximum(normals @ light_dir32, 0.0)
        scene_t = np.zeros(len(sel), np.float32)
        card_t = np.ones(len(sel), np.float32)
        lit = np.nonzero(lambert > 0)[0]
        if lit.size:
            scene_t[lit], card_t[lit] = shadows.transmittance(points[lit], normals[lit], prim.index, with_card=True)
        direct = (lambert * scene_t)[:, None] * sun
        without_card[sel] = albedo[:, :3] * (ambient + direct)
        with_card[sel] = albedo[:, :3] * (ambient + direct * card_t[:, None])

    without_card = without_card.reshape(height_ss, width_ss, 3)
    with_card = with_card.reshape(height_ss, width_ss, 3)
    visible = (t_card < t_scene).astype(np.float32) * alpha_card
    inserted = visible[..., None] * radiance_card + (1.0 - visible[..., None]) * with_card

    alpha_visible = _block_mean(visible, height, width, ss).astype(np.float32)
    alpha_unoccluded = _block_mean(alpha_card, height, width, ss).astype(np.float32)
    premultiplied = _block_mean(alpha_card[..., None] * radiance_card, height, width, ss)
    object_rgb = _encode_srgb(premultiplied / np.maximum(alpha_unoccluded[..., None], 1e-6))
    object_rgb[alpha_unoccluded <= 0] = 0
    luminance_weights = np.array([0.2126, 0.7152, 0.0722], np.float32)
    lum_with = _block_mean(with_card @ luminance_weights, height, width, ss)
    lum_without = _block_mean(without_card @ luminance_weights, height, width, ss)
    shadow = np.clip(1.0 - lum_with / np.maximum(lum_without, 1e-6), 0.0, 1.0).astype(np.float32)
    shadow[alpha_visible >= 0.5] = 0.0

    return FrameRender(
        background=_encode_srgb(_block_mean(without_card, height, width, ss)),
        inserted=_encode_srgb(_block_mean(inserted, height, width, ss)),
        alpha_visible=alpha_visible,
        alpha_unoccluded=alpha_unoccluded,
        object_rgb=object_rgb,
        shadow=shadow,
        depth=_pixel_depth(t_scene, id_scene, height, width, ss),
        dynamic=_pixel_dynamic(id_scene, placed, height, width, ss),
    )


def _pixel_depth(t_scene: np.ndarray, id_scene: np.ndarray, height: int, width: int, ss: int) -> np.ndarray:
    """(H, W) float32 z-depth per pixel from (H*ss, W*ss) samples.

    Where every sample hits the same primitive, the harmonic mean of the samples' depths: on a plane 1/z
    is affine in pixel coordinates, so for the symmetric sample grid it equals the depth at the pixel
    centre exactly. Mixed pixels (edges) take the nearest surface; all-sky pixels are 0.
    """
    t_samples = [t_scene[i::ss, j::ss] for i in range(ss) for j in range(ss)]  # each (H, W)
    id_samples = [id_scene[i::ss, j::ss] for i in range(ss) for j in range(ss)]
    same = id_samples[0] != SKY_ID
    inverse_sum = np.zeros((height, width), np.float32)
    nearest = t_samples[0].copy()
    with np.errstate(divide="ignore"):
        for t, ids in zip(t_samples, id_samples, strict=True):
            same &= ids == id_samples[0]
            inverse_sum += 1.0 / t
            np.minimum(nearest, t, out=nearest)
        harmonic = len(t_samples) / inverse_sum
    depth = np.where(same, harmonic, nearest)
    depth[~np.isfinite(depth)] = 0.0
    return depth.astype(np.float32)


def _pixel_dynamic(id_scene: np.ndarray, placed: list[_Placed], height: int, width: int, ss: int) -> np.ndarray:
    """(H, W) bool: at least half the pixel's samples hit an independently moving body."""
    dynamic_ids = np.array([p.dynamic for p in placed] + [False], bool)  # last entry: sky (index -1)
    flags = dynamic_ids[id_scene].astype(np.float32)
    return _block_mean(flags, height, width, ss) >= 0.5
