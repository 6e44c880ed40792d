"""Near-plane clipping: cut the triangles that cross the plane z = near in front of the camera.

A triangle with a vertex behind the camera cannot be projected (its projection wraps through infinity),
so the part behind ``z = near`` is cut away (Sutherland-Hodgman against one plane, Sutherland &
Hodgman 1974): a triangle with one vertex in front becomes one smaller triangle, one with two in front
becomes a quad (two triangles). New vertices interpolate every attribute linearly along the cut edge
(positions, uv, colours, normals: all affine in 3D), and the winding is kept.
"""

from __future__ import annotations

import numpy as np

from insertanywhere.render.mesh import TexturedMesh


def near_plane(depth: np.ndarray) -> float:
    """The near distance for an object: a thousandth of its farthest vertex's z, at least 1e-5 (scene units)."""
    return max(1e-5, 1e-3 * float(np.max(depth, initial=0.0)))


def clip_near(mesh: TexturedMesh, vertices_cam: np.ndarray, near: float) -> tuple[TexturedMesh, np.ndarray]:
    """Cut a mesh at the camera-frame plane ``z = near``, keeping the part in front.

    Args:
        mesh: the mesh (object frame).
        vertices_cam: (V, 3) float64 its vertices in the camera frame.
        near: the plane's z (scene units, > 0).

    Returns:
        The clipped mesh (new vertices appended after the old ones; texture and its pyramid shared; its
        normals interpolated, not recomputed; marked open so that no back face is culled) and its (V', 3)
        camera-frame vertices. Faces wholly behind the plane are dropped.
    """
    clipped, clipped_cam, _ = clip_near_with(mesh, vertices_cam, near, np.zeros((len(vertices_cam), 0)))
    return clipped, clipped_cam


def clip_near_with(
    mesh: TexturedMesh, vertices_cam: np.ndarray, near: float, vertex_values: np.ndarray
) -> tuple[TexturedMesh, np.ndarray, np.ndarray]:
    """``clip_near`` that also carries extra per-vertex values (V, k) through the cut; returns them (V', k)."""
    inside = vertices_cam[:, 2] > near
    face_inside = inside[mesh.faces]
    n_in = face_inside.sum(axis=1)
    keep = mesh.faces[n_in == 3]

    # Rotate each crossing face so that its odd vertex comes first (rotation keeps the winding).
    crossing = mesh.faces[(n_in == 1) | (n_in == 2)]
    crossing_in = inside[crossing]
    odd_is_in = crossing_in.sum(axis=1) == 1
    odd_value = np.where(odd_is_in[:, None], crossing_in, ~crossing_in)  # True at the odd vertex
    shift = np.argmax(odd_value, axis=1)
    order = (np.arange(3)[None, :] + shift[:, None]) % 3
    rotated = np.take_along_axis(crossing, order, axis=1)  # (C, 3): odd vertex first
    a, b, c = rotated[:, 0], rotated[:, 1], rotated[:, 2]

    # New vertices on the edges a-b and a-c (the odd vertex is on one side, b and c on the other).
    z = vertices_cam[:, 2]
    t_ab = (z[a] - near) / (z[a] - z[b])
    t_ac = (z[a] - near) / (z[a] - z[c])
    n_old = len(mesh.vertices)
    n_cut = len(rotated)
    ab = n_old + np.arange(n_cut)
    ac = n_old + n_cut + np.arange(n_cut)

    def extend(values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, np.float64)
        on_ab = values[a] + t_ab[:, None] * (values[b] - values[a])
        on_ac = values[a] + t_ac[:, None] * (values[c] - values[a])
        return np.concatenate([values, on_ab, on_ac])

    # One vertex in front (the odd one, a): triangle (a, ab, ac). Two in front (b, c; a behind):
    # the quad b, c, ac, ab as triangles (ab, b, c) and (ab, c, ac), same winding as (a, b, c).
    one_in = odd_is_in
    tri_one = np.stack([a, ab, ac], axis=1)[one_in]
    tri_two = np.concatenate([np.stack([ab, b, c], axis=1)[~one_in], np.stack([ab, c, ac], axis=1)[~one_in]], axis=0)
    faces = np.concatenate([keep, tri_one, tri_two]).astype(np.int64)

    clipped = TexturedMesh(
        vertices=extend(mesh.vertices),
        faces=faces,
        uv=None if mesh.uv is None else extend(mesh.uv),
        texture=mesh.texture,
        vertex_colors=None
        if mesh.vertex_colors is None
        else np.clip(np.rint(extend(mesh.vertex_colors)), 0, 255).astype(np.uint8),
        is_card=mesh.is_card,
        facing=mesh.facing,
    )
    clipped._texture_pyramid = mesh._texture_pyramid if mesh.texture is not None else None
    normals = extend(mesh.vertex_normals())
    clipped._vertex_normals = normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    clipped._orientation = 0
    vertices_cam_clipped = extend(vertices_cam)
    vertices_cam_clipped[n_old:, 2] = near  # exactly on the plane (no round-off behind it)
    return clipped, vertices_cam_clipped, extend(vertex_values)
