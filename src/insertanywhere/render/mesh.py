"""Object geometry for rendering: a textured triangle mesh in the object frame.

Object frame (``insertanywhere.conventions``): origin at the contact point, +Y along the
support normal (``OBJECT_UP_AXIS``), the front faces +Z. An image asset becomes an upright
*card*: a quad 1.0 object unit tall, ``aspect`` wide, standing on the contact point with the
picture facing +Z.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from insertanywhere.conventions import transform_points
from insertanywhere.errors import InputError
from insertanywhere.io.assets import ObjectAsset

Facing = Literal["fixed", "camera"]


@dataclass
class TexturedMesh:
    """A triangle mesh in the object frame with a texture or vertex colours.

    Attributes:
        vertices: (V, 3) float64 object-frame positions (object units; +Y up, front +Z).
        faces: (F, 3) int64 vertex indices.
        uv: (V, 2) float64 texture coordinates (u right, v up, OpenGL/trimesh style), or None.
        texture: (th, tw, 4) uint8 straight-alpha RGBA texture, or None.
        vertex_colors: (V, 4) uint8 straight-alpha RGBA colours (used when there is no texture), or None.
        is_card: True for an image asset's upright quad (double-sided, unlit: keeps the photo's shading).
        facing: for a card, "fixed" keeps the object frame's orientation, "camera" turns the card about +Y
            every frame so its picture faces the camera (a billboard).
    """

    vertices: np.ndarray
    faces: np.ndarray
    uv: np.ndarray | None = None
    texture: np.ndarray | None = None
    vertex_colors: np.ndarray | None = None
    is_card: bool = False
    facing: Facing = "fixed"
    _texture_pyramid: list[np.ndarray] | None = field(default=None, init=False, repr=False, compare=False)
    _vertex_normals: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)
    _orientation: int | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def height(self) -> float:
        """Object-frame extent along +Y (object units)."""
        return float(self.vertices[:, 1].max() - self.vertices[:, 1].min())

    def vertex_normals(self) -> np.ndarray:
        """(V, 3) float64 unit object-frame normals, area-weighted average of the adjacent faces' normals."""
        if self._vertex_normals is None:
            tri = self.vertices[self.faces]
            face_cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # length = 2 * area
            normals = np.zeros_like(self.vertices)
            for k in range(3):
                np.add.at(normals, self.faces[:, k], face_cross)
            length = np.linalg.norm(normals, axis=1, keepdims=True)
            self._vertex_normals = normals / np.maximum(length, 1e-12)
        return self._vertex_normals

    def closed_orientation(self) -> int:
        """+1 for a closed, consistently wound mesh facing outward (counter-clockwise seen from outside, glTF's
        rule), -1 for one wound inward, 0 for an open or inconsistent one (whose back faces may be seen).

        Vertices are merged by position first (texture seams duplicate them).
        """
        if self._orientation is None:
            self._orientation = _closed_orientation(self.vertices, self.faces)
        return self._orientation

    def texture_pyramid(self) -> list[np.ndarray]:
        """Mip levels of the texture, *premultiplied* float32 RGBA in [0, 1], level 0 = full size.

        Premultiplied so that filtering never bleeds the colour of transparent texels into edges.
        """
        if self._texture_pyramid is None:
            import cv2

            assert self.texture is not None
            rgba = self.texture.astype(np.float32) / 255.0
            rgba[..., :3] *= rgba[..., 3:4]
            levels = [rgba]
            while min(levels[-1].shape[:2]) >= 8:
                levels.append(cv2.pyrDown(levels[-1]))
            self._texture_pyramid = levels
        return self._texture_pyramid


def _closed_orientation(vertices: np.ndarray, faces: np.ndarray) -> int:
    """See ``TexturedMesh.closed_orientation``."""
    extent = float(np.ptp(vertices, axis=0).max()) or 1.0
    quantised = np.round(vertices / (extent * 1e-7)).astype(np.int64)
    _, merged = np.unique(quantised, axis=0, return_inverse=True)
    merged = merged.ravel()
    tri = merged[faces]
    tri = tri[(tri[:, 0] != tri[:, 1]) & (tri[:, 1] != tri[:, 2]) & (tri[:, 2] != tri[:, 0])]
    if len(tri) < 4:
        return 0
    n = int(merged.max()) + 1
    forward = np.concatenate([tri[:, 0] * n + tri[:, 1], tri[:, 1] * n + tri[:, 2], tri[:, 2] * n + tri[:, 0]])
    backward = np.concatenate([tri[:, 1] * n + tri[:, 0], tri[:, 2] * n + tri[:, 1], tri[:, 0] * n + tri[:, 2]])
    forward.sort()
    backward.sort()
    # Closed and consistent: every directed edge is used once, and its reverse exactly once.
    if np.any(forward[1:] == forward[:-1]) or not np.array_equal(forward, backward):
        return 0
    corners = vertices[faces]
    signed_volume = float(np.einsum("fc,fc->f", corners[:, 0], np.cross(corners[:, 1], corners[:, 2])).sum()) / 6.0
    return 1 if signed_volume > 0 else -1


def card_mesh(rgba: np.ndarray, facing: Facing = "fixed") -> TexturedMesh:
    """An upright textured quad for an RGBA image.

    Args:
        rgba: (h, w, 4) uint8 straight-alpha image.
        facing: "fixed" or "camera" (see TexturedMesh).

    Returns:
        A TexturedMesh 1.0 unit tall, ``w / h`` wide: x in [-a/2, a/2], y in [0, 1], z = 0, picture facing +Z.
    """
    if facing not in ("fixed", "camera"):
        raise InputError(f"card facing {facing!r} is unknown; use 'fixed' or 'camera'")
    h, w = rgba.shape[:2]
    half = 0.5 * w / h
    vertices = np.array([[-half, 0.0, 0.0], [half, 0.0, 0.0], [half, 1.0, 0.0], [-half, 1.0, 0.0]])
    # Counter-clockwise seen from +Z (the front), so the face normal is +Z.
    faces = np.array([[0, 1, 2], [0, 2, 3]], dtype=np.int64)
    uv = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])  # v up: the image's top row is v = 1
    return TexturedMesh(vertices, faces, uv=uv, texture=np.ascontiguousarray(rgba), is_card=True, facing=facing)


def object_mesh(asset: ObjectAsset, facing: Facing = "fixed") -> TexturedMesh:
    """The renderable geometry of an asset.

    Args:
        asset: an image asset (becomes a card, see ``card_mesh``) or a mesh asset (kept as is; it is
            already in the object frame, see ``insertanywhere.io.assets``).
        facing: for an image asset, "fixed" or "camera"; ignored for meshes.
    """
    if asset.kind == "image":
        if asset.rgba is None:
            raise InputError(f"object {asset.name!r} has no image")
        return card_mesh(asset.rgba, facing=facing)
    if asset.vertices is None or asset.faces is None:
        raise InputError(f"object {asset.name!r} has no mesh geometry")
    texture = asset.texture
    if texture is not None and texture.shape[-1] == 3:
        texture = np.concatenate([texture, np.full((*texture.shape[:2], 1), 255, np.uint8)], axis=-1)
    vertex_colors = asset.vertex_colors
    if texture is None or asset.uv is None:
        texture = None
        if vertex_colors is None:
            vertex_colors = np.full((len(asset.vertices), 4), 180, np.uint8)
    return TexturedMesh(
        vertices=np.asarray(asset.vertices, np.float64),
        faces=np.asarray(asset.faces, np.int64),
        uv=None if texture is None else np.asarray(asset.uv, np.float64),
        texture=texture,
        vertex_colors=None if vertex_colors is None else np.asarray(vertex_colors, np.uint8),
        is_card=False,
    )


def yaw_about_up(angle_rad: float) -> np.ndarray:
    """(4, 4) float64 rotation of the object frame about its +Y axis (counter-clockwise seen from above)."""
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    pose = np.eye(4)
    pose[0, 0], pose[0, 2], pose[2, 0], pose[2, 2] = c, s, -s, c
    return pose


def facing_yaw(world_from_object: np.ndarray, target_world: np.ndarray) -> float:
    """Yaw (radians) about the object's +Y that turns its +Z front toward a world point.

    Args:
        world_from_object: (4, 4) float64 object pose (may carry a uniform scale).
        target_world: (3,) world point to face (the camera centre), or a far point along a direction.

    Returns:
        The yaw angle for ``yaw_about_up``; 0 when the target is straight above or below.
    """
    from insertanywhere.conventions import invert_pose

    target_object = transform_points(invert_pose(world_from_object), np.asarray(target_world)[None])[0]
    if math.hypot(target_object[0], target_object[2]) < 1e-12:
        return 0.0
    return math.atan2(target_object[0], target_object[2])


def render_pose(
    mesh: TexturedMesh, world_from_object: np.ndarray, camera_center_world: np.ndarray | None
) -> np.ndarray:
    """The pose to draw the mesh with: the object's pose, turned to face the camera for a "camera" card.

    Args:
        mesh: the mesh.
        world_from_object: (4, 4) float64.
        camera_center_world: (3,) float64 camera centre in world coordinates (needed for "camera" facing).

    Returns:
        (4, 4) float64 ``world_from_object`` to transform ``mesh.vertices`` with.
    """
    world_from_object = np.asarray(world_from_object, np.float64)
    if mesh.is_card and mesh.facing == "camera" and camera_center_world is not None:
        return world_from_object @ yaw_about_up(facing_yaw(world_from_object, camera_center_world))
    return world_from_object
