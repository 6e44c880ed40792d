"""Shadows the inserted object throws on its support: a contact (ambient-occlusion) shadow and a cast shadow.

The matte is the share of light the object takes away from each pixel of the support, in [0, 1]
(0 = untouched); the compositor darkens the frame multiplicatively by it, so the support's texture stays.

* Contact shadow: ambient light is blocked right under the object, most where it touches. The
  object's low parts are dropped vertically onto the support plane and weighted by
  ``exp(-height / h0)`` with ``h0`` a tenth of the object's height, then blurred by about ``h0``
  in pixels. A card has no footprint of its own, so it gets an ellipse as wide as the picture and
  half as deep.
* Cast shadow: every vertex X goes along the light direction l (toward the light) onto the plane
  ``n . (X - p) = 0``: ``X' = X - (n . (X - p)) / (n . l) * l`` (a planar projected shadow, Blinn 1988,
  "Me and my (fake) shadow"). The flattened triangles are rasterised in the camera with their texture
  alpha, so a card's shadow has the picture's silhouette. A card is turned to face the light first:
  it stands for a solid object whose silhouette seen from the light resembles its picture, and a card
  seen edge-on by the light would cast a line.
* Penumbra: an area light of angular radius ``softness`` blurs a shadow by ``softness * h`` where h
  is the occluder's height above the shadow point, so shadows are sharp at the contact and soft far
  from it. Implemented as a per-pixel choice among a few Gaussian blurs of the hard shadow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from insertanywhere.conventions import Camera
from insertanywhere.errors import InputError
from insertanywhere.render.clip import clip_near_with, near_plane
from insertanywhere.render.layer import _apply_linear, sample_texture, screen_box
from insertanywhere.render.light import Light
from insertanywhere.render.mesh import TexturedMesh, facing_yaw, yaw_about_up
from insertanywhere.render.rasterize import rasterize_pixels

_MIN_LIGHT_ELEVATION_SIN = math.sin(math.radians(4.0))  # grazing light: the shadow would run to infinity


@dataclass(frozen=True)
class SupportPlane:
    """The surface the object stands on, as an infinite plane.

    Attributes:
        point_world: (3,) float64 a point of the plane (the contact point), world coordinates.
        normal_world: (3,) float64 unit normal pointing up, away from the support.
    """

    point_world: np.ndarray
    normal_world: np.ndarray

    def __post_init__(self) -> None:
        normal = np.asarray(self.normal_world, np.float64).reshape(3)
        norm = float(np.linalg.norm(normal))
        if not np.isfinite(norm) or norm < 1e-12:
            raise InputError(f"support normal {normal.tolist()} is not a direction")
        object.__setattr__(self, "normal_world", normal / norm)
        object.__setattr__(self, "point_world", np.asarray(self.point_world, np.float64).reshape(3))

    def height(self, points_world: np.ndarray) -> np.ndarray:
        """(N,) float64 signed distance of (N, 3) world points above the plane (scene units)."""
        return (np.asarray(points_world) - self.point_world) @ self.normal_world

    def project_along(self, points_world: np.ndarray, toward_light: np.ndarray) -> np.ndarray:
        """(N, 3) float64: the points pushed along ``-toward_light`` onto the plane (their shadows).

        Points below the plane stay where they are (they cast nothing on it).
        """
        heights = np.maximum(self.height(points_world), 0.0)
        along = max(float(toward_light @ self.normal_world), _MIN_LIGHT_ELEVATION_SIN)
        return points_world - (heights / along)[:, None] * toward_light[None, :]


@dataclass(frozen=True)
class ShadowConfig:
    """Shadow look.

    Attributes:
        contact_opacity: darkest share of the light the contact shadow removes, at the contact.
        contact_height: the contact shadow's reach ``h0`` as a fraction of the object's height.
        cast: whether to draw the cast shadow.
        max_blur_px: cap of the penumbra's Gaussian sigma in pixels.
    """

    contact_opacity: float = 0.55
    contact_height: float = 0.1
    cast: bool = True
    max_blur_px: float = 24.0


def render_shadow(
    mesh: TexturedMesh,
    camera: Camera,
    world_from_object: np.ndarray,
    support: SupportPlane,
    light: Light,
    width: int,
    height: int,
    config: ShadowConfig | None = None,
) -> np.ndarray:
    """The object's shadow matte on its support plane in one frame.

    Args:
        mesh: the object (``object_mesh``).
        camera: the frame's camera.
        world_from_object: (4, 4) float64 object pose (may carry a uniform scale).
        support: the support plane, world coordinates.
        light: the scene's light (direction toward the light, strength, softness).
        width, height: frame size in pixels.
        config: shadow look (defaults: ShadowConfig()).

    Returns:
        (H, W) float32 matte in [0, 1]: the share of light removed (0 = no shadow). Not masked by the
        object itself or by occluders (the caller masks where something covers the support).
    """
    config = config or ShadowConfig()
    pose = np.asarray(world_from_object, np.float64)
    scale = float(np.cbrt(abs(np.linalg.det(pose[:3, :3]))))
    object_height = max(mesh.height * scale, 1e-9)

    # Combine as independent occluders: the light left is the product of what each leaves.
    matte = np.zeros((height, width), np.float32)
    contact = _contact_shadow(mesh, camera, pose, support, object_height, width, height, config)
    if contact is not None:
        _combine(matte, contact, config.contact_opacity)
    if config.cast and light.strength > 0 and light.direction_world @ support.normal_world > _MIN_LIGHT_ELEVATION_SIN:
        cast = _cast_shadow(mesh, camera, pose, support, light, width, height, config)
        if cast is not None:
            _combine(matte, cast, light.strength)
    return matte


def _combine(matte: np.ndarray, patch: Patch, opacity: float) -> None:
    """In place: ``matte = 1 - (1 - matte) * (1 - opacity * patch)`` over the patch's box, clipped to [0, 1]."""
    values, (x0, y0, x1, y1) = patch
    region = matte[y0:y1, x0:x1]
    region[...] = np.clip(1.0 - (1.0 - region) * (1.0 - opacity * values), 0.0, 1.0)


# ----------------------------------------------------------------------------- cast shadow


def _cast_shadow(
    mesh: TexturedMesh,
    camera: Camera,
    pose: np.ndarray,
    support: SupportPlane,
    light: Light,
    width: int,
    height: int,
    config: ShadowConfig,
) -> Patch | None:
    """The cast-shadow coverage in [0, 1] with its distance-dependent penumbra, or None if not in view."""
    if mesh.is_card:
        far_toward_light = pose[:3, 3] + 1e6 * light.direction_world
        pose = pose @ yaw_about_up(facing_yaw(pose, far_toward_light))
    vertices_world = _apply_linear(pose[:3, :3], mesh.vertices) + pose[:3, 3]
    occluder_height = np.maximum(support.height(vertices_world), 0.0)
    shadow_world = support.project_along(vertices_world, light.direction_world)
    rasterised, pixels_per_unit = _rasterize_on_plane(mesh, camera, shadow_world, occluder_height, width, height)
    if rasterised is None:
        return None
    coverage_box, occluder_height_box, box = rasterised
    # Penumbra sigma: softness * h in scene units, times fx / depth of the shadow point in pixels.
    sigma_px = np.minimum(light.softness * occluder_height_box * pixels_per_unit, config.max_blur_px)
    return _blurred_patch(coverage_box, sigma_px, box, width, height, config.max_blur_px)


def _rasterize_on_plane(
    mesh: TexturedMesh,
    camera: Camera,
    points_world: np.ndarray,
    vertex_attribute: np.ndarray,
    width: int,
    height: int,
    card_fast_path: bool = True,
) -> tuple[tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]] | None, np.ndarray]:
    """Rasterise flattened triangles (one sample per pixel) with their texture alpha and a vertex attribute.

    Args:
        mesh: gives faces, uv and texture (a card's alpha shapes its shadow; meshes count as opaque).
        camera: the frame's camera.
        points_world: (V, 3) float64 the vertices' positions on the plane.
        vertex_attribute: (V,) float64 per-vertex value to interpolate (occluder height, contact weight).
        width, height: frame size.

    Returns:
        ((coverage (h, w) float32, attribute (h, w) float64, box) or None when nothing is visible,
        pixels_per_unit (h, w) float64 = fx / depth at each pixel: scene units -> pixels on the plane).
    """
    points_cam = _apply_linear(camera.cam_from_world[:3, :3], points_world) + camera.cam_from_world[:3, 3]
    depth = points_cam[:, 2]
    near = near_plane(depth)
    if np.all(depth <= near):
        return None, np.zeros(0)
    if np.any(depth <= near):  # the shadow runs under the camera: cut it at the near plane
        mesh, points_cam, values = clip_near_with(mesh, points_cam, near, vertex_attribute[:, None])
        vertex_attribute = values[:, 0]
        depth = points_cam[:, 2]
    pixels = _apply_linear(camera.K, points_cam)[:, :2] / depth[:, None]
    box = _margin_box(screen_box(pixels, depth, width, height), width, height, 0)
    if box is None:
        return None, np.zeros(0)
    x0, y0, x1, y1 = box
    region_px = pixels - np.array([x0, y0], np.float64)
    if card_fast_path and mesh.is_card and mesh.texture is not None and mesh.uv is not None and len(mesh.vertices) == 4:
        return _card_on_plane(mesh, camera, points_cam, region_px, vertex_attribute, box)
    visibility = rasterize_pixels(region_px, depth, mesh.faces, x1 - x0, y1 - y0, supersample=1)
    if len(visibility.pixel_index) == 0:
        return None, np.zeros(0)
    if mesh.is_card and mesh.texture is not None and mesh.uv is not None:
        point_alpha = sample_texture(mesh, visibility.face_index, visibility.bary, region_px)[:, 3]
    else:
        point_alpha = np.ones(len(visibility.pixel_index), np.float32)
    corners = mesh.faces[visibility.face_index]
    point_attribute = (visibility.bary * vertex_attribute[corners]).sum(axis=1)
    n = (y1 - y0) * (x1 - x0)
    coverage = np.zeros(n, np.float32)
    coverage[visibility.pixel_index] = point_alpha
    attribute = np.zeros(n)
    attribute[visibility.pixel_index] = point_attribute
    pixels_per_unit = np.zeros(n)
    pixels_per_unit[visibility.pixel_index] = camera.K[0, 0] / visibility.depth
    shape = (y1 - y0, x1 - x0)
    return (coverage.reshape(shape), attribute.reshape(shape), box), pixels_per_unit.reshape(shape)


def _card_on_plane(
    mesh: TexturedMesh,
    camera: Camera,
    points_cam: np.ndarray,
    region_px: np.ndarray,
    vertex_attribute: np.ndarray,
    box: tuple[int, int, int, int],
) -> tuple[tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]], np.ndarray]:
    """``_rasterize_on_plane`` for a card's flattened quad, exactly and without a rasteriser.

    A card is flattened onto the support by a parallel projection (an affine map), and a plane is seen
    through a homography, so its texture maps to the screen by one homography: the texture's alpha is
    warped straight into the box (``cv2.warpPerspective``, at the mip level of its footprint, as
    ``render_card``). The vertex attribute is affine over the card, so it is the bilinear warp of the
    corners' values; ``fx / depth`` follows from 1/z being affine in screen space over a plane.

    Args:
        mesh: the card (4 vertices: bottom-left, bottom-right, top-right, top-left; uv likewise).
        camera: the frame's camera.
        points_cam: (4, 3) float64 flattened corners in the camera frame, all in front of it.
        region_px: (4, 2) float64 their pixels relative to the box's corner.
        vertex_attribute: (4,) float64 per-corner value.
        box: (x0, y0, x1, y1) screen box, exclusive end.
    """
    import cv2

    x0, y0, x1, y1 = box
    size = (x1 - x0, y1 - y0)
    pyramid = mesh.texture_pyramid()
    th, tw = pyramid[0].shape[:2]
    screen_area = 0.5 * abs(
        float(
            (region_px[2, 0] - region_px[0, 0]) * (region_px[3, 1] - region_px[1, 1])
            - (region_px[2, 1] - region_px[0, 1]) * (region_px[3, 0] - region_px[1, 0])
        )
    )
    lod = 0.5 * np.log2(max(th * tw, 1) / max(screen_area, 1e-9))
    alpha = pyramid[int(np.clip(np.rint(lod), 0, len(pyramid) - 1))][..., 3]
    lh, lw = alpha.shape
    texel_corners = np.stack([mesh.uv[:4, 0] * lw, (1.0 - mesh.uv[:4, 1]) * lh], axis=1)
    screen = (region_px - 0.5).astype(np.float32)  # OpenCV: pixel centres at integers
    homography = cv2.getPerspectiveTransform((texel_corners - 0.5).astype(np.float32), screen)
    coverage = cv2.warpPerspective(alpha, homography, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    # The attribute: a 2x2 image of the corners' values (texel centres at the uv corners), warped bilinearly.
    grid_corners = np.stack([mesh.uv[:4, 0], 1.0 - mesh.uv[:4, 1]], axis=1)
    values = np.zeros((2, 2), np.float32)
    for (gx, gy), value in zip(np.rint(grid_corners).astype(int), vertex_attribute[:4], strict=True):
        values[gy, gx] = value
    to_screen = cv2.getPerspectiveTransform(grid_corners.astype(np.float32), screen)
    attribute = cv2.warpPerspective(
        values, to_screen, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    ).astype(np.float64)
    # 1/z over the plane: n . X = d in the camera frame, X = z K^-1 [x, y, 1] -> 1/z = (n . K^-1 p) / d.
    normal = np.cross(points_cam[1] - points_cam[0], points_cam[2] - points_cam[0])
    inv_plane = (normal @ np.linalg.inv(camera.K)) / float(normal @ points_cam[0])
    xs = np.arange(x0, x1) + 0.5
    ys = np.arange(y0, y1) + 0.5
    inv_depth = inv_plane[0] * xs[None, :] + inv_plane[1] * ys[:, None] + inv_plane[2]
    inside = coverage > 0
    pixels_per_unit = np.where(inside, camera.K[0, 0] * inv_depth, 0.0)
    attribute = np.where(inside, attribute, 0.0)
    return (coverage.astype(np.float32), attribute, box), pixels_per_unit


def _margin_box(
    box: tuple[int, int, int, int] | None, width: int, height: int, margin: int
) -> tuple[int, int, int, int] | None:
    if box is None:
        return None
    x0, y0, x1, y1 = box
    return max(x0 - margin, 0), max(y0 - margin, 0), min(x1 + margin, width), min(y1 + margin, height)


Patch = tuple[np.ndarray, tuple[int, int, int, int]]
"""A (h, w) float32 matte and its (x0, y0, x1, y1) box in the frame (exclusive end)."""


def _blurred_patch(
    coverage_box: np.ndarray,
    sigma_px: np.ndarray,
    box: tuple[int, int, int, int],
    width: int,
    height: int,
    max_blur_px: float,
) -> Patch:
    """Blur a box of coverage with a per-pixel sigma; the box grows by 3 sigma so the blur can spread.

    Returns the blurred patch clipped to the frame.
    """
    x0, y0, x1, y1 = box
    pad = math.ceil(3.0 * min(float(sigma_px.max(initial=0.0)), max_blur_px)) + 2
    # Beyond a frame edge the shadow goes on (replicate); elsewhere the box already holds all of it (zeros).
    at_edge = (y0 == 0, y1 == height, x0 == 0, x1 == width)
    padded = _pad_replicating_at(coverage_box, pad, at_edge)
    sigma_padded = _pad_replicating_at(sigma_px * (coverage_box > 0), pad, at_edge)
    blurred = variable_blur(padded, sigma_padded, coverage_weight=padded)
    # Padded box in frame coordinates, then clipped to the frame.
    px0, py0, px1, py1 = x0 - pad, y0 - pad, x1 + pad, y1 + pad
    cx0, cy0, cx1, cy1 = max(px0, 0), max(py0, 0), min(px1, width), min(py1, height)
    return blurred[cy0 - py0 : cy1 - py0, cx0 - px0 : cx1 - px0], (cx0, cy0, cx1, cy1)


def _pad_replicating_at(image: np.ndarray, pad: int, at_edge: tuple[bool, bool, bool, bool]) -> np.ndarray:
    """Pad (h, w) by ``pad`` on every side: edge values where ``at_edge`` (top, bottom, left, right), else 0."""
    padded = np.pad(image, pad, mode="edge")
    top, bottom, left, right = at_edge
    if not top:
        padded[:pad] = 0
    if not bottom:
        padded[-pad:] = 0
    if not left:
        padded[:, :pad] = 0
    if not right:
        padded[:, -pad:] = 0
    return padded


def variable_blur(image: np.ndarray, sigma_px: np.ndarray, coverage_weight: np.ndarray) -> np.ndarray:
    """Blur an image with a spatially varying Gaussian sigma.

    The sigma is known only where ``coverage_weight`` > 0 (inside the hard shadow); it is spread to the
    surroundings as a coverage-weighted average at the widest scale, so the penumbra outside the hard
    edge gets the blur of the occluder part that made it. Each pixel then interpolates, in log-sigma,
    between a few Gaussian blurs (sigmas 0.5, 1, 2, 4, ... px).

    Args:
        image: (h, w) float32 in [0, 1].
        sigma_px: (h, w) float64 blur sigma in pixels where defined (0 elsewhere).
        coverage_weight: (h, w) float32 >= 0, where sigma_px is defined.

    Returns:
        (h, w) float32.
    """
    max_sigma = float(sigma_px.max(initial=0.0))
    sigmas = [0.5]
    while sigmas[-1] < max_sigma:
        sigmas.append(sigmas[-1] * 2.0)
    widest = sigmas[-1]
    weight_blur = gaussian_blur(coverage_weight, widest)
    sigma_blur = gaussian_blur(sigma_px * coverage_weight, widest)
    sigma_field = np.where(weight_blur > 1e-6, sigma_blur / np.maximum(weight_blur, 1e-6), sigmas[0])
    sigma_field = np.where(coverage_weight > 0, np.maximum(sigma_px, sigmas[0]), sigma_field)
    if len(sigmas) == 1:
        return gaussian_blur(image, sigmas[0])
    levels = np.stack([gaussian_blur(image, s) for s in sigmas])
    position = np.clip(np.log2(np.maximum(sigma_field, sigmas[0]) / sigmas[0]), 0, len(sigmas) - 1).astype(np.float32)
    # Linear interpolation between the two nearest levels: gathered, not summed over every level with hat weights
    # (the same values, a third of the passes over the patch).
    below = np.minimum(position.astype(np.intp), len(sigmas) - 2)
    fraction = position - below
    lower = np.take_along_axis(levels, below[None], axis=0)[0]
    upper = np.take_along_axis(levels, (below + 1)[None], axis=0)[0]
    return (lower + fraction * (upper - lower)).astype(np.float32)


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of a (h, w) image; wide blurs run on a downsampled copy (a shadow has no fine detail there).

    For sigma > 2 px the image is shrunk by a power of two f <= sigma / 2 (area averaging), blurred by
    ``sqrt(sigma^2 - (f/2)^2) / f`` (the box prefilter already adds about f/2), and enlarged back bilinearly.
    """
    import cv2

    image = np.asarray(image, np.float32)
    if sigma <= 2.0 or min(image.shape) < 16:
        return cv2.GaussianBlur(image, (0, 0), sigma)
    factor = 2 ** math.floor(math.log2(sigma / 2.0))
    h, w = image.shape
    small = cv2.resize(image, (max(w // factor, 1), max(h // factor, 1)), interpolation=cv2.INTER_AREA)
    small_sigma = math.sqrt(max(sigma**2 - (factor / 2.0) ** 2, 0.25)) / factor
    small = cv2.GaussianBlur(small, (0, 0), small_sigma)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


# ----------------------------------------------------------------------------- contact shadow


def _contact_shadow(
    mesh: TexturedMesh,
    camera: Camera,
    pose: np.ndarray,
    support: SupportPlane,
    object_height: float,
    width: int,
    height: int,
    config: ShadowConfig,
) -> Patch | None:
    """The ambient-occlusion contact shadow in [0, 1], or None if not in view."""
    reach = config.contact_height * object_height  # h0, scene units
    if mesh.is_card:
        footprint_mesh, footprint_world, weight = _card_footprint(mesh, pose, support)
    else:
        vertices_world = _apply_linear(pose[:3, :3], mesh.vertices) + pose[:3, 3]
        heights = np.maximum(support.height(vertices_world), 0.0)
        low_faces = mesh.faces[heights[mesh.faces].min(axis=1) < 3.0 * reach]
        footprint_mesh = TexturedMesh(mesh.vertices, low_faces)
        footprint_world = vertices_world - heights[:, None] * support.normal_world[None, :]
        weight = np.exp(-heights / reach)
    if len(footprint_mesh.faces) == 0:
        return None
    rasterised, pixels_per_unit = _rasterize_on_plane(footprint_mesh, camera, footprint_world, weight, width, height)
    if rasterised is None:
        return None
    coverage, weight_box, box = rasterised
    sigma_px = np.minimum(reach * pixels_per_unit, 64.0)
    return _blurred_patch(coverage * weight_box.astype(np.float32), sigma_px, box, width, height, 64.0)


def _card_footprint(
    mesh: TexturedMesh, pose: np.ndarray, support: SupportPlane, n_sides: int = 24
) -> tuple[TexturedMesh, np.ndarray, np.ndarray]:
    """An elliptic fan on the support under a card: as wide as the card, half as deep.

    Returns the fan as a TexturedMesh (object frame), its vertices on the plane (V, 3) world, and (V,) weights 1.
    """
    half_width = 0.5 * float(mesh.vertices[:, 0].max() - mesh.vertices[:, 0].min())
    angles = np.linspace(0.0, 2.0 * np.pi, n_sides, endpoint=False)
    ring = np.stack([0.9 * half_width * np.cos(angles), np.zeros(n_sides), 0.5 * half_width * np.sin(angles)], 1)
    vertices = np.concatenate([np.zeros((1, 3)), ring])
    faces = np.stack([np.zeros(n_sides, np.int64), 1 + np.arange(n_sides), 1 + (np.arange(n_sides) + 1) % n_sides], 1)
    world = _apply_linear(pose[:3, :3], vertices) + pose[:3, 3]
    world = world - support.height(world)[:, None] * support.normal_world[None, :]
    return TexturedMesh(vertices, faces), world, np.ones(len(vertices))
