"""Render an object into an RGBA + depth layer for one frame (``render_object``).

Pipeline: transform to the camera, cut at the near plane if needed (``render.clip``), project,
rasterise only the object's screen box on a grid supersampled ``s x s`` per pixel
(``render.rasterize``), then shade each covered *pixel* once (texture through a mip pyramid, or vertex
colours; Lambert + ambient for meshes) with the face nearest among its samples. Antialiasing is the
multisample coverage: a pixel's alpha is the share of its s*s samples the object covers (times the
texture's own alpha), so silhouettes are smooth and no colour from outside the object bleeds in.
A card wholly in front of the camera is warped exactly instead (``render_card``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from insertanywhere.conventions import Camera
from insertanywhere.render.clip import clip_near, near_plane
from insertanywhere.render.light import Light
from insertanywhere.render.mesh import TexturedMesh, render_pose
from insertanywhere.render.rasterize import rasterize_pixels

# The display gamma used to shade in (approximately) linear light: shading a straight sRGB colour c by a
# linear factor s is c * s**(1/2.2) under a pure power law, which also commutes with premultiplication.
_GAMMA = 2.2


@dataclass
class ObjectLayer:
    """The object rendered in one frame, full-frame arrays.

    Attributes:
        color: (H, W, 3) float32 straight (not premultiplied) sRGB-encoded colour in [0, 1]; 0 where alpha is 0.
        alpha: (H, W) float32 antialiased coverage in [0, 1] (geometry coverage times texture alpha).
        depth: (H, W) float32 camera z (scene units) of the nearest object surface in the pixel, inf where
            nothing is covered.
        bbox: (x0, y0, x1, y1) int pixel box (exclusive end) of the pixels with alpha > 0, or None when
            the object is not visible in the frame.
    """

    color: np.ndarray
    alpha: np.ndarray
    depth: np.ndarray
    bbox: tuple[int, int, int, int] | None

    @classmethod
    def empty(cls, width: int, height: int) -> ObjectLayer:
        return cls(
            np.zeros((height, width, 3), np.float32),
            np.zeros((height, width), np.float32),
            np.full((height, width), np.inf, np.float32),
            None,
        )

    def rgba_uint8(self) -> np.ndarray:
        """(H, W, 4) uint8 straight-alpha RGBA, the ``layers/*.png`` format."""
        rgba = np.concatenate([self.color, self.alpha[..., None]], axis=-1)
        return np.clip(np.rint(rgba * 255.0), 0, 255).astype(np.uint8)


@dataclass
class ProjectedMesh:
    """A mesh projected into a camera: what the rasteriser and the shaders need.

    Attributes:
        vertices_cam: (V, 3) float64 camera-frame positions.
        pixels: (V, 2) float64 projected ``(x, y)`` pixel positions (pixel-corner origin); garbage where z <= 0.
        world_from_object: (4, 4) float64 pose actually drawn (a "camera" card is turned to face the camera).
    """

    vertices_cam: np.ndarray
    pixels: np.ndarray
    world_from_object: np.ndarray


def project_mesh(mesh: TexturedMesh, camera: Camera, world_from_object: np.ndarray) -> ProjectedMesh:
    """Transform and project the mesh's vertices (see ProjectedMesh)."""
    pose = render_pose(mesh, world_from_object, camera.center_world)
    cam_from_object = camera.cam_from_world @ pose
    vertices_cam = _apply_linear(cam_from_object[:3, :3], mesh.vertices) + cam_from_object[:3, 3]
    z = vertices_cam[:, 2]
    safe_z = np.where(z > 1e-12, z, 1e-12)
    pixels = _apply_linear(camera.K, vertices_cam)[:, :2] / safe_z[:, None]
    return ProjectedMesh(vertices_cam, pixels, pose)


def screen_box(pixels: np.ndarray, depth: np.ndarray, width: int, height: int) -> tuple[int, int, int, int] | None:
    """Integer pixel box (x0, y0, x1, y1), exclusive end, around the projected vertices in front of the camera.

    Args:
        pixels: (V, 2) float64 projected positions; depth: (V,) float64 camera z.
        width, height: image size.

    Returns:
        The box clipped to the image, or None if it is empty or nothing is in front of the camera.
    """
    front = depth > 1e-6
    if not np.any(front):
        return None
    lo = pixels[front].min(axis=0)
    hi = pixels[front].max(axis=0)
    x0, y0 = max(math.floor(lo[0]), 0), max(math.floor(lo[1]), 0)
    x1, y1 = min(math.ceil(hi[0]), width), min(math.ceil(hi[1]), height)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def render_object(
    mesh: TexturedMesh,
    camera: Camera,
    world_from_object: np.ndarray,
    width: int,
    height: int,
    supersample: int = 2,
    light: Light | None = None,
) -> ObjectLayer:
    """Render the object's colour, coverage and depth in one frame.

    Args:
        mesh: the object's geometry (``object_mesh``).
        camera: the frame's camera (K in pixels, ``cam_from_world``).
        world_from_object: (4, 4) float64 object pose, may include a uniform scale (object units -> scene units).
        width, height: frame size in pixels.
        supersample: samples per pixel along each axis (antialiasing); 1 = aliased. A card entirely in
            front of the camera takes the exact planar path (``render_card``), antialiased by its texture's
            own alpha, and ignores it. Geometry behind the near plane (``clip.near_plane``) is cut away.
        light: the scene's light for Lambert + ambient shading of meshes; None = a soft light from above
            the camera. Cards are never shaded: they keep their photo's shading.

    Returns:
        The ObjectLayer (full-frame arrays).
    """
    projected = project_mesh(mesh, camera, world_from_object)
    depth = projected.vertices_cam[:, 2]
    near = near_plane(depth)
    if np.all(depth <= near):
        return ObjectLayer.empty(width, height)
    if np.any(depth <= near):  # the camera is inside or right next to the object: cut at the near plane
        mesh, vertices_cam = clip_near(mesh, projected.vertices_cam, near)
        pixels = _apply_linear(camera.K, vertices_cam)[:, :2] / vertices_cam[:, 2:3]
        projected = ProjectedMesh(vertices_cam, pixels, projected.world_from_object)
    elif mesh.is_card:
        return render_card(mesh, camera, projected, width, height)
    return render_mesh(mesh, camera, projected, width, height, supersample, light)


def render_mesh(
    mesh: TexturedMesh,
    camera: Camera,
    projected: ProjectedMesh,
    width: int,
    height: int,
    supersample: int = 2,
    light: Light | None = None,
) -> ObjectLayer:
    """The general path of ``render_object``: multisampled coverage, one shading per pixel (MSAA)."""
    layer = ObjectLayer.empty(width, height)
    box = screen_box(projected.pixels, projected.vertices_cam[:, 2], width, height)
    if box is None:
        return layer
    x0, y0, x1, y1 = box
    vertices_px = projected.pixels - np.array([x0, y0], np.float64)
    drawn_faces = _visible_faces(mesh, projected)
    visibility = rasterize_pixels(
        vertices_px, projected.vertices_cam[:, 2], mesh.faces[drawn_faces], x1 - x0, y1 - y0, supersample=supersample
    )
    if len(visibility.pixel_index) == 0:
        return layer
    visibility.face_index = drawn_faces[visibility.face_index]
    rows, cols = np.divmod(visibility.pixel_index, x1 - x0)
    centres = np.stack([x0 + cols + 0.5, y0 + rows + 0.5], axis=1)
    rgba = shade_points(mesh, visibility.face_index, visibility.bary, centres, vertices_px, projected, camera, light)
    rgba *= visibility.coverage[:, None]
    n = (y1 - y0) * (x1 - x0)
    pixel_rgba = np.zeros((n, 4), np.float32)
    pixel_rgba[visibility.pixel_index] = rgba
    pixel_depth = np.full(n, np.inf, np.float32)
    pixel_depth[visibility.pixel_index] = visibility.depth
    _write_box(layer, box, pixel_rgba.reshape(y1 - y0, x1 - x0, 4), pixel_depth.reshape(y1 - y0, x1 - x0))
    return layer


def _visible_faces(mesh: TexturedMesh, projected: ProjectedMesh) -> np.ndarray:
    """Indices of the faces to rasterise: all of them, or only the front faces of a closed mesh.

    Back faces of a closed mesh are always hidden behind front faces, so culling them halves the
    rasteriser's work without changing the image; an open mesh keeps them (its inside can be seen).
    """
    orientation = mesh.closed_orientation() if not mesh.is_card else 0
    if orientation == 0:
        return np.arange(len(mesh.faces))
    corners = projected.vertices_cam[mesh.faces]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]) * orientation
    # Front-facing: the outward normal points back toward the camera centre (the origin of this frame).
    return np.flatnonzero(np.einsum("fc,fc->f", normals, corners[:, 0]) < 0)


def render_card(mesh: TexturedMesh, camera: Camera, projected: ProjectedMesh, width: int, height: int) -> ObjectLayer:
    """Exact fast path for a planar card wholly in front of the camera.

    A plane maps to the image by a homography, so the (premultiplied, mip-filtered) picture is warped
    straight to pixels with one ``cv2.warpPerspective`` (bilinear), and the depth follows from 1/z being
    affine in screen space over a plane. The card's silhouette is its picture's alpha, filtered like the
    colour, which is the antialiasing. Agrees with the general path (tested).
    """
    import cv2

    layer = ObjectLayer.empty(width, height)
    box = screen_box(projected.pixels, projected.vertices_cam[:, 2], width, height)
    if box is None:
        return layer
    x0, y0, x1, y1 = box
    pyramid = mesh.texture_pyramid()
    th, tw = pyramid[0].shape[:2]
    # Texel footprint: texture area over screen area of the quad (both in pixels), isotropic LOD.
    quad_px = projected.pixels[:4]
    screen_area = 0.5 * abs(float(_cross2(quad_px[2] - quad_px[0], quad_px[3] - quad_px[1])))
    lod = 0.5 * np.log2(max(th * tw, 1) / max(screen_area, 1e-9))
    level = int(np.clip(np.rint(lod), 0, len(pyramid) - 1))
    texture = pyramid[level]
    lh, lw = texture.shape[:2]
    # Card corners (uv) -> texel corners of this level (texel centres at +0.5, image top row = v 1).
    texel_corners = np.stack([mesh.uv[:4, 0] * lw, (1.0 - mesh.uv[:4, 1]) * lh], axis=1)
    screen_corners = quad_px - np.array([x0, y0])
    # warpPerspective maps pixel centres: shift both corner sets from corner-origin to centre-origin.
    homography = cv2.getPerspectiveTransform(
        (texel_corners - 0.5).astype(np.float32), (screen_corners - 0.5).astype(np.float32)
    )
    pixel_rgba = cv2.warpPerspective(
        texture, homography, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )
    # 1/z over the card's plane: n . X = d in the camera frame, X = z * K^-1 [x, y, 1] -> 1/z = n . K^-1 p / d.
    corners_cam = projected.vertices_cam[:3]
    normal = np.cross(corners_cam[1] - corners_cam[0], corners_cam[2] - corners_cam[0])
    offset = float(normal @ corners_cam[0])
    inv_plane = (normal @ np.linalg.inv(camera.K)) / offset  # (3,): 1/z = a x + b y + c
    xs = np.arange(x0, x1) + 0.5
    ys = np.arange(y0, y1) + 0.5
    inv_depth = inv_plane[0] * xs[None, :] + inv_plane[1] * ys[:, None] + inv_plane[2]
    # The nearest point of the plane within the pixel's square (as the mesh path's min over samples).
    inv_depth += 0.5 * (abs(inv_plane[0]) + abs(inv_plane[1]))
    pixel_depth = np.where(pixel_rgba[..., 3] > 0, 1.0 / np.maximum(inv_depth, 1e-12), np.inf).astype(np.float32)
    _write_box(layer, box, pixel_rgba, pixel_depth)
    return layer


def _write_box(
    layer: ObjectLayer, box: tuple[int, int, int, int], pixel_rgba: np.ndarray, pixel_depth: np.ndarray
) -> None:
    """Store premultiplied (h, w, 4) float32 RGBA and (h, w) depth of the box into the layer; set its bbox."""
    x0, y0, x1, y1 = box
    alpha = np.clip(pixel_rgba[..., 3], 0.0, 1.0)
    color = pixel_rgba[..., :3] / np.maximum(alpha[..., None], 1e-6)
    layer.color[y0:y1, x0:x1] = np.where(alpha[..., None] > 1e-6, np.clip(color, 0.0, 1.0), 0.0)
    layer.alpha[y0:y1, x0:x1] = alpha
    layer.depth[y0:y1, x0:x1] = np.where(alpha > 0, pixel_depth, np.inf)
    rows = np.flatnonzero(alpha.max(axis=1) > 0)
    cols = np.flatnonzero(alpha.max(axis=0) > 0)
    if len(rows):
        layer.bbox = (x0 + int(cols[0]), y0 + int(rows[0]), x0 + int(cols[-1]) + 1, y0 + int(rows[-1]) + 1)


def shade_points(
    mesh: TexturedMesh,
    face_index: np.ndarray,
    bary: np.ndarray,
    points_px: np.ndarray,
    vertices_px: np.ndarray,
    projected: ProjectedMesh,
    camera: Camera,
    light: Light | None,
) -> np.ndarray:
    """Premultiplied RGBA of N surface points (one per pixel).

    Args:
        mesh, projected, camera, light: see ``render_object``.
        face_index: (N,) int64 face of each point; bary: (N, 3) float64 perspective-correct barycentrics.
        points_px: (N, 2) float64 image pixel position ``(x, y)`` of each point (for view rays).
        vertices_px: (V, 2) float64 projected vertices in the same pixel units as the shading footprint
            (any origin), for the texture's level of detail.

    Returns:
        (N, 4) float32 premultiplied sRGB-encoded RGBA in [0, 1].
    """
    corner_ids = mesh.faces[face_index]  # (N, 3)
    if mesh.texture is not None and mesh.uv is not None:
        rgba = sample_texture(mesh, face_index, bary, vertices_px)
    else:
        assert mesh.vertex_colors is not None
        colors = mesh.vertex_colors.astype(np.float32) / 255.0
        rgba = _interpolate(bary.astype(np.float32), colors[corner_ids])
        rgba[:, :3] *= rgba[:, 3:4]
    if not mesh.is_card:
        shade = _lambert(mesh, projected, camera, light, bary, corner_ids, points_px)
        rgba[:, :3] *= (shade ** (1.0 / _GAMMA)).astype(np.float32)[:, None]
    return rgba


def sample_texture(mesh: TexturedMesh, face_index: np.ndarray, bary: np.ndarray, vertices_px: np.ndarray) -> np.ndarray:
    """(N, 4) float32 premultiplied texture colour at N surface points (bilinear, mip level per face).

    The mip level of a face is ``0.5 * log2(texel area / pixel area)`` of that face (the standard
    isotropic LOD, as in OpenGL's ``textureLod``), rounded; each level present is sampled with one
    cv2.remap over the points laid out in rows.

    Args:
        mesh: a mesh with uv and texture.
        face_index: (N,) int64; bary: (N, 3) float64 perspective-correct barycentrics.
        vertices_px: (V, 2) float64 projected vertices in pixels (one shading footprint = one unit square).
    """
    import cv2

    assert mesh.uv is not None
    pyramid = mesh.texture_pyramid()
    th, tw = pyramid[0].shape[:2]
    uv = _interpolate(bary, mesh.uv[mesh.faces[face_index]])

    tri_uv = mesh.uv[mesh.faces] * np.array([tw, th])
    tri_xy = vertices_px[mesh.faces]
    texel_area = np.abs(_cross2(tri_uv[:, 1] - tri_uv[:, 0], tri_uv[:, 2] - tri_uv[:, 0]))
    pixel_area = np.abs(_cross2(tri_xy[:, 1] - tri_xy[:, 0], tri_xy[:, 2] - tri_xy[:, 0]))
    lod = 0.5 * np.log2(np.maximum(texel_area, 1e-12) / np.maximum(pixel_area, 1e-12))
    face_level = np.clip(np.rint(lod), 0, len(pyramid) - 1).astype(np.int64)
    point_level = face_level[face_index]

    result = np.empty((len(uv), 4), np.float32)
    for level in np.unique(point_level):
        texture = pyramid[level]
        lh, lw = texture.shape[:2]
        pick = np.flatnonzero(point_level == level)
        # u right, v up (image top row is v = 1); texel centres at +0.5.
        map_x = (uv[pick, 0] * lw - 0.5).astype(np.float32)
        map_y = ((1.0 - uv[pick, 1]) * lh - 0.5).astype(np.float32)
        if mesh.is_card:
            border = cv2.BORDER_REPLICATE  # a card's uv stays in [0, 1]; clamp its edges
        else:
            border = cv2.BORDER_WRAP  # glTF's default sampler repeats
            map_x = np.mod(map_x + 0.5, lw) - 0.5
            map_y = np.mod(map_y + 0.5, lh) - 0.5
        # cv2.remap wants maps under 32767 per side: lay the points out in rows of 4096.
        n = len(pick)
        cols = 4096
        rows = -(-n // cols)
        pad = rows * cols - n
        map_x = np.pad(map_x, (0, pad)).reshape(rows, cols)
        map_y = np.pad(map_y, (0, pad)).reshape(rows, cols)
        sampled = cv2.remap(texture, map_x, map_y, cv2.INTER_LINEAR, borderMode=border)
        result[pick] = sampled.reshape(-1, 4)[:n]
    return result


def _cross2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """z of the cross product of (..., 2) vectors (the doubled signed area)."""
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _interpolate(bary: np.ndarray, corner_values: np.ndarray) -> np.ndarray:
    """Barycentric interpolation: (N, 3) weights and (N, 3, C) corner values -> (N, C) (faster than einsum)."""
    return bary[:, 0:1] * corner_values[:, 0] + bary[:, 1:2] * corner_values[:, 1] + bary[:, 2:3] * corner_values[:, 2]


def _apply_linear(matrix: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """``vectors @ matrix.T`` for (N, 3) vectors and a (3, 3) matrix, without BLAS.

    A tall-skinny BLAS product is slow here (thread start-up on a busy machine costs more than the maths).
    """
    return np.einsum("nc,dc->nd", vectors, matrix)


def _lambert(
    mesh: TexturedMesh,
    projected: ProjectedMesh,
    camera: Camera,
    light: Light | None,
    bary: np.ndarray,
    corner_ids: np.ndarray,
    points_px: np.ndarray,
) -> np.ndarray:
    """(N,) float64 linear shading factor ``(1 - k) + k * max(0, n . l)`` of N points (Lambert + ambient).

    Works in the camera frame. Normals are the interpolated vertex normals, turned to face the camera
    (meshes are drawn double-sided, so the inside of an open mesh is lit like its outside).
    """
    cam_from_world = camera.cam_from_world[:3, :3]
    if light is None:
        # Soft light from above and behind the camera (up in the image, toward the viewer), half ambient.
        toward_light_cam = np.array([0.35, -1.0, -0.6])
        light = Light(cam_from_world.T @ toward_light_cam, strength=0.5, source="default")
    cam_from_object = cam_from_world @ projected.world_from_object[:3, :3]
    normal_matrix = np.linalg.inv(cam_from_object).T  # normals transform by the inverse transpose
    normals_cam = _apply_linear(normal_matrix, _interpolate(bary, mesh.vertex_normals()[corner_ids]))

    # Flip normals that face away from the camera (view ray through each point in the camera frame).
    homogeneous = np.concatenate([points_px, np.ones((len(points_px), 1))], axis=1)
    rays_cam = _apply_linear(np.linalg.inv(camera.K), homogeneous)
    facing_away = np.einsum("nc,nc->n", normals_cam, rays_cam) > 0
    light_cam = cam_from_world @ light.direction_world
    n_dot_l = np.einsum("nc,c->n", normals_cam, light_cam)
    normal_length = np.sqrt(np.einsum("nc,nc->n", normals_cam, normals_cam) + 1e-24)
    n_dot_l = np.where(facing_away, -n_dot_l, n_dot_l) / normal_length
    return (1.0 - light.strength) + light.strength * np.clip(n_dot_l, 0.0, None)
