"""The cast-shadow light cue recovers the light that made the shadows of a synthetic scene."""

from __future__ import annotations

import math

import numpy as np
import pytest

from insertanywhere.conventions import Camera, intrinsics_from_fov, make_pose
from insertanywhere.render import Light, SupportPlane, render_object, render_shadow
from insertanywhere.render.light_shadows import _wide_blur, light_from_cast_shadows
from insertanywhere.render.mesh import TexturedMesh
from insertanywhere.render.shadow import ShadowConfig

W, H = 240, 160
UP = np.array([0.0, 1.0, 0.0])


def scene_camera() -> Camera:
    pitch = math.radians(35)
    forward = np.array([0.0, -math.sin(pitch), math.cos(pitch)])
    right = np.cross(forward, UP)
    down = np.cross(forward, right)
    world_from_cam = make_pose(np.stack([right, down, forward], 1), np.array([0.0, 2.2, -3.2]))
    return Camera(intrinsics_from_fov(W, H, 55), np.linalg.inv(world_from_cam))


def cube() -> TexturedMesh:
    corners = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (0.0, 1.0) for z in (-0.5, 0.5)])
    faces = np.array(
        [[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1], [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4],
         [1, 5, 7], [1, 7, 3]]
    )  # fmt: skip
    colors = np.full((8, 4), 90, np.uint8)
    colors[:, 3] = 255
    return TexturedMesh(corners, faces, vertex_colors=colors)


def render_scene(light: Light) -> tuple[np.ndarray, np.ndarray, Camera]:
    """A speckled floor with two cubes and their shadows, and its exact depth."""
    camera = scene_camera()
    rng = np.random.default_rng(0)
    xs, ys = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    rays_cam = np.stack([xs, ys, np.ones_like(xs)], -1) @ np.linalg.inv(camera.K).T
    rays = rays_cam @ camera.world_from_cam[:3, :3].T
    t = -camera.center_world[1] / np.minimum(rays[..., 1], -1e-9)
    depth = (t * rays_cam[..., 2]).astype(np.float32)
    image = np.full((H, W, 3), 0.55, np.float32) * (1.0 + 0.08 * rng.standard_normal((H, W, 1)).astype(np.float32))
    floor = SupportPlane(np.zeros(3), UP)
    for position, size in (((-0.9, 0.0, 1.2), 0.5), ((0.7, 0.0, 0.6), 0.4)):
        pose = np.diag([size, size, size, 1.0])
        pose[:3, 3] = position
        matte = render_shadow(cube(), camera, pose, floor, light, W, H, ShadowConfig(contact_opacity=0.3))
        image *= 1.0 - 0.8 * matte[..., None]
        layer = render_object(cube(), camera, pose, W, H, light=light)
        image = image * (1 - layer.alpha[..., None]) + layer.color * layer.alpha[..., None]
        depth = np.where(layer.alpha > 0.5, np.minimum(depth, layer.depth), depth)
    frame = np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)
    return frame, depth, camera


@pytest.mark.parametrize(("azimuth", "elevation"), [(60.0, 40.0), (300.0, 55.0), (160.0, 35.0)])
def test_cast_shadows_give_the_light_direction(azimuth: float, elevation: float) -> None:
    camera = scene_camera()
    truth = Light.from_angles(azimuth, elevation, UP, camera, strength=0.8, softness=0.02)
    frame, depth, camera = render_scene(truth)
    cue = light_from_cast_shadows(frame, camera, depth, UP, np.zeros(3))
    assert cue is not None and cue.n_objects >= 1
    estimate = Light(cue.direction_world)
    est_azimuth, est_elevation = estimate.angles(UP, camera)
    azimuth_error = abs((est_azimuth - azimuth + 180.0) % 360.0 - 180.0)
    assert azimuth_error < 25.0
    assert abs(est_elevation - elevation) < 20.0
    assert 0.3 < cue.strength < 0.95


def test_no_shadows_no_answer() -> None:
    camera = scene_camera()
    frame, depth, camera = render_scene(Light(UP, strength=0.0))  # ambient only: no cast shadows
    assert light_from_cast_shadows(frame, camera, depth, UP, np.zeros(3)) is None


def test_wide_blur_matches_the_direct_gaussian_where_it_subsamples():
    """A blur many cells wide is made on a subsampled grid; on the support it stays within 0.1 % of the direct
    one (and is the direct one below 48 cells of sigma)."""
    import cv2

    rng = np.random.default_rng(0)
    support = (cv2.GaussianBlur(rng.random((270, 480)).astype(np.float32), (0, 0), 8) > 0.5).astype(np.float32)
    luminance = (cv2.GaussianBlur(rng.random((270, 480)).astype(np.float32), (0, 0), 2) * 0.5 + 0.3).astype(np.float32)
    for sigma in (30.0, 96.0):
        direct = cv2.GaussianBlur(luminance * support, (0, 0), sigma) / np.maximum(
            cv2.GaussianBlur(support, (0, 0), sigma), 1e-6
        )
        fast = _wide_blur(luminance * support, sigma) / np.maximum(_wide_blur(support, sigma), 1e-6)
        on = support > 0
        assert np.max(np.abs(fast[on] - direct[on]) / direct[on]) < 1e-3
    np.testing.assert_array_equal(_wide_blur(support, 30.0), cv2.GaussianBlur(support, (0, 0), 30.0))
