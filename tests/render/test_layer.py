"""render_object: a card lands on its projected box, the card fast path agrees with the mesh path, real objects."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from insertanywhere.conventions import Camera
from insertanywhere.io.assets import load_object
from insertanywhere.render import card_mesh, object_mesh, render_object
from insertanywhere.render.layer import project_mesh, render_card, render_mesh

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
W, H = 160, 120
FOCAL = 100.0


def camera_at_origin() -> Camera:
    """World = camera frame: x right, y down, z forward."""
    K = np.array([[FOCAL, 0.0, W / 2], [0.0, FOCAL, H / 2], [0.0, 0.0, 1.0]])
    return Camera(K, np.eye(4))


def upright_pose(contact_cam: tuple[float, float, float], scale: float) -> np.ndarray:
    """Object +Y up = camera -y, front +Z toward the camera = camera -z (a rotation: diag(1, -1, -1))."""
    pose = np.diag([scale, -scale, -scale, 1.0])
    pose[:3, 3] = contact_cam
    return pose


def opaque_rgba(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rgba = rng.integers(0, 256, size=(h, w, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    return rgba


def test_card_lands_on_the_projected_box() -> None:
    mesh = card_mesh(opaque_rgba(40, 20))  # aspect 0.5
    scale, depth = 0.8, 4.0
    layer = render_object(mesh, camera_at_origin(), upright_pose((0.3, 0.5, depth), scale), W, H)
    # Card corners: x in 0.3 +- 0.2 (half of 0.5 * 0.8), y from 0.5 up to 0.5 - 0.8.
    x0 = W / 2 + FOCAL * (0.3 - 0.2) / depth
    x1 = W / 2 + FOCAL * (0.3 + 0.2) / depth
    y0 = H / 2 + FOCAL * (0.5 - 0.8) / depth
    y1 = H / 2 + FOCAL * 0.5 / depth
    assert layer.bbox is not None
    np.testing.assert_allclose(layer.bbox, [np.floor(x0), np.floor(y0), np.ceil(x1), np.ceil(y1)], atol=1)
    inner = layer.alpha[int(np.ceil(y0)) + 1 : int(y1) - 1, int(np.ceil(x0)) + 1 : int(x1) - 1]
    assert inner.min() > 0.99
    np.testing.assert_allclose(layer.depth[np.isfinite(layer.depth)], depth, rtol=1e-5)
    assert layer.alpha[: int(y0) - 1].max() == 0 and layer.alpha[:, int(np.ceil(x1)) + 1 :].max() == 0


def test_card_fast_path_agrees_with_the_mesh_path() -> None:
    rgba = opaque_rgba(64, 48, seed=3)
    rgba[..., 3] = 0
    rgba[8:56, 6:42, 3] = 255  # a silhouette inside the picture
    mesh = card_mesh(rgba)
    camera = camera_at_origin()
    pose = upright_pose((-0.2, 0.6, 3.0), 1.0)
    pose[:3, :3] = pose[:3, :3] @ np.array([[0.8, 0.0, 0.6], [0.0, 1.0, 0.0], [-0.6, 0.0, 0.8]])  # turned 37 deg
    projected = project_mesh(mesh, camera, pose)
    fast = render_card(mesh, camera, projected, W, H)
    exact = render_mesh(mesh, camera, projected, W, H, supersample=4)
    assert fast.alpha.sum() > 200
    assert np.abs(fast.alpha - exact.alpha).mean() < 0.01
    assert abs(fast.alpha.sum() - exact.alpha.sum()) / exact.alpha.sum() < 0.03
    both = (fast.alpha > 0.5) & (exact.alpha > 0.5)
    np.testing.assert_allclose(fast.depth[both], exact.depth[both], rtol=1e-3)
    color_diff = np.abs(fast.color - exact.color)[(fast.alpha > 0.9) & (exact.alpha > 0.9)]
    assert np.median(color_diff) < 0.08


def test_camera_facing_card_turns_to_the_camera() -> None:
    mesh = card_mesh(opaque_rgba(20, 20), facing="camera")
    camera = camera_at_origin()
    pose = upright_pose((0.0, 0.5, 4.0), 1.0)
    pose[:3, :3] = pose[:3, :3] @ np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])  # edge-on
    layer = render_object(mesh, camera, pose, W, H)
    assert layer.bbox is not None
    width_px = layer.bbox[2] - layer.bbox[0]
    assert abs(width_px - FOCAL * 1.0 / 4.0) <= 2
    fixed = render_object(card_mesh(opaque_rgba(20, 20)), camera, pose, W, H)
    assert fixed.alpha.sum() < 0.1 * layer.alpha.sum()


def test_object_behind_the_camera_gives_an_empty_layer() -> None:
    layer = render_object(card_mesh(opaque_rgba(8, 8)), camera_at_origin(), upright_pose((0, 0, -3.0), 1.0), W, H)
    assert layer.bbox is None and layer.alpha.max() == 0 and np.isinf(layer.depth).all()


def test_mesh_lambert_shading_follows_the_light() -> None:
    from insertanywhere.render import Light
    from insertanywhere.render.mesh import TexturedMesh

    # A flat square facing the camera (normal toward -z in the camera frame).
    vertices = np.array([[-1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 2.0, 0.0], [-1.0, 2.0, 0.0]])
    mesh = TexturedMesh(vertices, np.array([[0, 1, 2], [0, 2, 3]]), vertex_colors=np.full((4, 4), 200, np.uint8))
    camera = camera_at_origin()
    pose = upright_pose((0.0, 1.0, 6.0), 1.0)
    lit = render_object(mesh, camera, pose, W, H, light=Light(np.array([0.0, 0.0, -1.0]), strength=0.8))
    grazing = render_object(mesh, camera, pose, W, H, light=Light(np.array([1.0, 0.0, 0.0]), strength=0.8))
    inside = lit.alpha > 0.99
    np.testing.assert_allclose(lit.color[inside], 200 / 255, atol=2e-3)
    expected = 200 / 255 * 0.2 ** (1 / 2.2)  # only the ambient 1 - 0.8 remains, shaded in linear light
    np.testing.assert_allclose(grazing.color[inside], expected, atol=2e-3)


@pytest.mark.parametrize("name", ["meshes/duck.glb", "meshes/box_textured.glb", "images/teapot_colorful.png"])
def test_real_objects_render(name: str) -> None:
    path = DATA / "objects" / name
    if not path.is_file():
        pytest.skip(f"{path} absent")
    mesh = object_mesh(load_object(path))
    camera = camera_at_origin()
    layer = render_object(mesh, camera, upright_pose((0.0, 0.6, 4.0), 1.2 / mesh.height), W, H)
    assert layer.bbox is not None
    x0, y0, x1, y1 = layer.bbox
    assert y1 - y0 >= 25 and x1 > x0
    assert np.isfinite(layer.color).all() and layer.color.min() >= 0 and layer.color.max() <= 1
    assert (layer.alpha > 0.5).sum() > 200
    assert np.isfinite(layer.depth[layer.alpha > 0]).all()


@pytest.mark.parametrize("flip_winding", [False, True])
def test_back_face_culling_does_not_change_a_closed_mesh(flip_winding: bool) -> None:
    from insertanywhere.render.mesh import TexturedMesh

    # A closed octahedron, wound inward as listed; reversed to wind outward (counter-clockwise from outside).
    vertices = np.array([[1, 1, 0], [-1, 1, 0], [0, 1, 1], [0, 1, -1], [0, 0, 0], [0, 2, 0]], np.float64)
    faces = np.array([[0, 2, 5], [2, 1, 5], [1, 3, 5], [3, 0, 5], [2, 0, 4], [1, 2, 4], [3, 1, 4], [0, 3, 4]])
    if not flip_winding:
        faces = faces[:, ::-1].copy()
    colors = np.random.default_rng(0).integers(0, 256, (6, 4), dtype=np.uint8)
    colors[:, 3] = 255
    closed = TexturedMesh(vertices, faces, vertex_colors=colors)
    assert closed.closed_orientation() == (-1 if flip_winding else 1)
    open_copy = TexturedMesh(vertices, faces, vertex_colors=colors)
    open_copy._orientation = 0  # force drawing every face
    camera = camera_at_origin()
    pose = upright_pose((0.2, 0.8, 5.0), 0.8)
    pose[:3, :3] = pose[:3, :3] @ np.array([[0.8, 0.0, 0.6], [0.0, 1.0, 0.0], [-0.6, 0.0, 0.8]])
    culled = render_object(closed, camera, pose, W, H)
    full = render_object(open_copy, camera, pose, W, H)
    assert culled.alpha.sum() > 100
    np.testing.assert_allclose(culled.alpha, full.alpha, atol=1e-6)
    np.testing.assert_allclose(culled.color, full.color, atol=1e-5)


def test_near_plane_clipping_keeps_the_visible_part() -> None:
    # A long textured floor strip running from behind the camera to far ahead: the part in front must draw.
    rgba = opaque_rgba(32, 8, seed=2)
    mesh = card_mesh(rgba)
    camera = camera_at_origin()
    # Lay the card flat: object +Y (its height) along camera +z (forward), its front facing up (camera -y).
    pose = np.eye(4)
    pose[:3, :3] = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]]) * 8.0
    pose[:3, 3] = (0.0, 0.5, -2.0)  # from z = -2 (behind) to z = 6, half a unit below the camera
    layer = render_object(mesh, camera, pose, W, H)
    assert layer.bbox is not None
    covered = layer.alpha > 0.99
    assert covered[-1].any()  # reaches the bottom edge (the near part of the floor)
    # Below the horizon the floor appears at depth z = f * 0.5 / (y - cy): check one row.
    row = H - 5
    expected = FOCAL * 0.5 / (row + 0.5 - H / 2)
    np.testing.assert_allclose(layer.depth[row][covered[row]], expected, rtol=0.02)
    assert not covered[: H // 2].any()  # nothing above the horizon


@pytest.mark.parametrize(("depths", "n_faces"), [((2.0, -1.0, -1.0), 1), ((2.0, 2.0, -1.0), 2), ((-1.0, 2.0, 2.0), 2)])
def test_clip_near_cuts_a_triangle_and_keeps_its_winding(depths: tuple[float, float, float], n_faces: int) -> None:
    from insertanywhere.render.clip import clip_near
    from insertanywhere.render.mesh import TexturedMesh

    vertices = np.array([[0.0, 0.0, depths[0]], [1.0, 0.0, depths[1]], [0.0, 1.0, depths[2]]])
    mesh = TexturedMesh(vertices, np.array([[0, 1, 2]]), vertex_colors=np.full((3, 4), 255, np.uint8))
    clipped, cam = clip_near(mesh, vertices, near=0.5)
    assert len(clipped.faces) == n_faces
    assert (cam[clipped.faces][..., 2] >= 0.5 - 1e-12).all()
    original = np.cross(vertices[1] - vertices[0], vertices[2] - vertices[0])
    for face in clipped.faces:
        normal = np.cross(cam[face[1]] - cam[face[0]], cam[face[2]] - cam[face[0]])
        assert normal @ original > 0  # same plane, same winding
        # Every new vertex lies on the original triangle's plane.
        np.testing.assert_allclose((cam[face] - vertices[0]) @ original, 0.0, atol=1e-12)
