"""Shadows: the cast shadow falls away from the light, the contact shadow sits under the object."""

from __future__ import annotations

import math

import numpy as np
import pytest

from insertanywhere.conventions import Camera, intrinsics_from_fov, make_pose
from insertanywhere.render import Light, card_mesh
from insertanywhere.render.mesh import TexturedMesh
from insertanywhere.render.shadow import ShadowConfig, SupportPlane, render_shadow

W, H = 200, 150
FLOOR = SupportPlane(np.zeros(3), np.array([0.0, 1.0, 0.0]))  # world y up


def looking_down_camera() -> Camera:
    """A camera 2 units up, 4 back, pitched 30 deg down at the world origin on the floor y = 0."""
    pitch = math.radians(30)
    forward = np.array([0.0, -math.sin(pitch), math.cos(pitch)])
    right = np.cross(forward, np.array([0.0, 1.0, 0.0]))
    down = np.cross(forward, right)
    world_from_cam = make_pose(np.stack([right, down, forward], axis=1), np.array([0.0, 2.3, -4.0]))
    return Camera(intrinsics_from_fov(W, H, 50), np.linalg.inv(world_from_cam))


def box_mesh() -> TexturedMesh:
    """A closed unit cube standing on y = 0, centred in x and z."""
    corners = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (0.0, 1.0) for z in (-0.5, 0.5)])
    faces = np.array(
        [[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1], [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4],
         [1, 5, 7], [1, 7, 3]]
    )  # fmt: skip
    return TexturedMesh(corners, faces, vertex_colors=np.full((8, 4), 200, np.uint8))


def centroid_x(matte: np.ndarray, threshold: float = 0.05) -> float:
    ys, xs = np.nonzero(matte > threshold)
    weights = matte[ys, xs]
    return float((xs * weights).sum() / weights.sum())


@pytest.mark.parametrize("mesh_kind", ["box", "card"])
def test_cast_shadow_falls_away_from_the_light(mesh_kind: str) -> None:
    camera = looking_down_camera()
    mesh = box_mesh() if mesh_kind == "box" else card_mesh(np.full((20, 20, 4), 255, np.uint8))
    pose = np.diag([0.6, 0.6, 0.6, 1.0])
    contact_x = float(camera.project(np.zeros((1, 3)))[0][0, 0])
    no_contact = ShadowConfig(contact_opacity=0.0)
    from_right = Light.from_angles(90, 35, FLOOR.normal_world, camera, strength=1.0, softness=0.02)
    from_left = Light.from_angles(270, 35, FLOOR.normal_world, camera, strength=1.0, softness=0.02)
    matte_right = render_shadow(mesh, camera, pose, FLOOR, from_right, W, H, no_contact)
    matte_left = render_shadow(mesh, camera, pose, FLOOR, from_left, W, H, no_contact)
    assert matte_right.max() > 0.9 and matte_left.max() > 0.9
    assert centroid_x(matte_right) < contact_x - 5  # light from the right: the shadow lies to the left
    assert centroid_x(matte_left) > contact_x + 5


def test_higher_light_gives_a_shorter_shadow() -> None:
    camera = looking_down_camera()
    pose = np.diag([0.6, 0.6, 0.6, 1.0])
    config = ShadowConfig(contact_opacity=0.0)
    areas = []
    for elevation in (25, 60):
        light = Light.from_angles(90, elevation, FLOOR.normal_world, camera, strength=1.0, softness=0.0)
        areas.append((render_shadow(box_mesh(), camera, pose, FLOOR, light, W, H, config) > 0.5).sum())
    assert areas[0] > 1.5 * areas[1]


def test_contact_shadow_sits_under_the_object_and_is_bounded() -> None:
    camera = looking_down_camera()
    pose = np.diag([0.6, 0.6, 0.6, 1.0])
    light = Light.from_angles(0, 80, FLOOR.normal_world, camera, strength=0.0)  # no cast shadow
    matte = render_shadow(box_mesh(), camera, pose, FLOOR, light, W, H)
    assert matte.dtype == np.float32 and matte.shape == (H, W)
    assert matte.min() >= 0.0 and matte.max() <= 1.0
    contact = camera.project(np.zeros((1, 3)))[0][0]
    assert matte[int(contact[1]) - 1, int(contact[0])] > 0.2
    assert matte[:20].max() == 0.0  # nothing near the top of the image (far behind the object)


def test_grazing_light_casts_no_runaway_shadow() -> None:
    camera = looking_down_camera()
    light = Light(np.array([1.0, 0.0, 0.0]), strength=1.0)  # in the support plane
    matte = render_shadow(box_mesh(), camera, np.diag([0.6, 0.6, 0.6, 1.0]), FLOOR, light, W, H)
    assert np.isfinite(matte).all() and (matte > 0.5).mean() < 0.2


def test_shadow_running_under_the_camera_is_cut_not_dropped() -> None:
    camera = looking_down_camera()
    # Light from straight ahead, low: the box's shadow runs toward the camera and passes under it.
    light = Light.from_angles(180, 6, FLOOR.normal_world, camera, strength=1.0, softness=0.0)
    pose = np.diag([1.5, 1.5, 1.5, 1.0])
    pose[:3, 3] = (0.0, 0.0, 0.5)
    matte = render_shadow(box_mesh(), camera, pose, FLOOR, light, W, H, ShadowConfig(contact_opacity=0.0))
    assert matte[-1].max() > 0.9  # it reaches the bottom edge of the image


@pytest.mark.parametrize("azimuth", [40.0, 160.0, 300.0])
def test_card_shadow_fast_path_matches_the_rasteriser(azimuth: float) -> None:
    from insertanywhere.render import shadow as shadow_module

    camera = looking_down_camera()
    rgba = np.zeros((64, 48, 4), np.uint8)
    rgba[8:64, 6:42, 3] = 255
    rgba[20:40, 14:30, 3] = 0  # a hole: the texture's alpha shapes the shadow
    mesh = card_mesh(rgba)
    pose = np.diag([0.8, 0.8, 0.8, 1.0])
    light = Light.from_angles(azimuth, 40, FLOOR.normal_world, camera, strength=1.0, softness=0.03)
    vertices = mesh.vertices @ pose[:3, :3].T
    flat = FLOOR.project_along(vertices, light.direction_world)
    heights = FLOOR.height(vertices)
    fast, fast_ppu = shadow_module._rasterize_on_plane(mesh, camera, flat, heights, W, H)
    slow, slow_ppu = shadow_module._rasterize_on_plane(mesh, camera, flat, heights, W, H, card_fast_path=False)
    assert fast is not None and slow is not None
    assert fast[2] == slow[2]
    both = (fast[0] > 0.99) & (slow[0] > 0.99)
    assert np.mean(np.abs(fast[0] - slow[0])) < 0.02  # bilinear filtering vs point samples at the edges
    assert np.abs(fast[1] - slow[1])[both].max() < 1e-3 * max(heights.max(), 1e-6) + 1e-6
    assert np.allclose(fast_ppu[both], slow_ppu[both], rtol=1e-3)
