"""Light angles round-trip; the shading-based estimate finds a known light in a synthetic scene."""

from __future__ import annotations

import math

import numpy as np
import pytest

from insertanywhere.conventions import Camera, Scene4D, SceneMeta, make_pose
from insertanywhere.errors import InputError
from insertanywhere.render.light import Light, estimate_light, parse_light_angles, plane_axes

UP = np.array([0.0, 1.0, 0.0])


def level_camera(pitch_deg: float = 25.0, width: int = 160, height: int = 120) -> Camera:
    pitch = math.radians(pitch_deg)
    forward = np.array([0.0, -math.sin(pitch), math.cos(pitch)])
    right = np.cross(forward, UP)
    down = np.cross(forward, right)
    K = np.array([[140.0, 0, width / 2], [0, 140.0, height / 2], [0, 0, 1]])
    return Camera(K, np.linalg.inv(make_pose(np.stack([right, down, forward], 1), np.array([0.0, 1.5, -3.0]))))


def test_plane_axes_right_is_image_right() -> None:
    camera = level_camera()
    forward, right, normal = plane_axes(UP, camera)
    np.testing.assert_allclose(right, [-1.0, 0.0, 0.0], atol=1e-9)  # y up and z forward: image right is -x
    np.testing.assert_allclose(forward, [0.0, 0.0, 1.0], atol=1e-9)
    np.testing.assert_allclose(normal, UP)


@pytest.mark.parametrize(("azimuth", "elevation"), [(0.0, 45.0), (90.0, 30.0), (200.0, 70.0)])
def test_angles_round_trip(azimuth: float, elevation: float) -> None:
    camera = level_camera()
    light = Light.from_angles(azimuth, elevation, UP, camera)
    assert abs(np.linalg.norm(light.direction_world) - 1.0) < 1e-12
    az, el = light.angles(UP, camera)
    assert abs(az - azimuth) < 1e-6 and abs(el - elevation) < 1e-6


def test_azimuth_zero_is_behind_the_camera_and_ninety_is_right() -> None:
    camera = level_camera()
    behind = Light.from_angles(0.0, 0.0, UP, camera).direction_world
    right = Light.from_angles(90.0, 0.0, UP, camera).direction_world
    np.testing.assert_allclose(behind, [0.0, 0.0, -1.0], atol=1e-9)  # toward the camera (it stands at z = -3)
    np.testing.assert_allclose(right, [-1.0, 0.0, 0.0], atol=1e-9)  # the image's right is world -x here


def test_parse_light_angles() -> None:
    assert parse_light_angles("30, 55") == (30.0, 55.0)
    for bad in ("30", "a,b", "30,0", "30,95"):
        with pytest.raises(InputError):
            parse_light_angles(bad)


def sphere_scene(light_direction: np.ndarray, ambient: float = 0.3) -> tuple[np.ndarray, Scene4D]:
    """A floor (y = 0) and two spheres, Lambert-shaded by a known directional light, with exact depth."""
    width, height = 160, 120
    camera = level_camera(width=width, height=height)
    xs, ys = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    rays_cam = np.stack([xs, ys, np.ones_like(xs)], -1) @ np.linalg.inv(camera.K).T
    rays = rays_cam @ camera.world_from_cam[:3, :3].T
    origin = camera.center_world
    t_best = np.where(rays[..., 1] < 0, -origin[1] / np.where(rays[..., 1] < 0, rays[..., 1], -1), np.inf)
    normal = np.broadcast_to(UP, rays.shape).copy()
    for centre, radius in (([-0.5, 0.6, 1.0], 0.6), ([0.8, 0.45, 1.6], 0.45)):
        oc = origin - np.array(centre)
        b = rays @ oc
        c = oc @ oc - radius**2
        a = np.sum(rays * rays, -1)
        disc = b**2 - a * c
        hit = disc > 0
        t = np.where(hit, (-b - np.sqrt(np.maximum(disc, 0))) / a, np.inf)
        closer = t < t_best
        t_best = np.where(closer, t, t_best)
        points = origin + rays * t[..., None]
        normal = np.where(closer[..., None], (points - np.array(centre)) / radius, normal)
    shading = ambient + (1 - ambient) * np.clip(normal @ light_direction, 0, None)
    finite = np.isfinite(t_best)
    linear = np.where(finite, 0.6 * shading, 0.5)
    srgb = np.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1 / 2.4) - 0.055)
    frame = np.repeat(np.clip(np.rint(srgb * 255), 0, 255).astype(np.uint8)[..., None], 3, axis=-1)
    depth = np.where(finite, t_best * rays_cam[..., 2], 0.0).astype(np.float32)
    meta = SceneMeta(width=width, height=height, fps=24.0, n_frames=1)
    scene = Scene4D(
        meta, [camera], depth[None], np.ones((1, height, width), np.float32), np.zeros((1, height, width), bool)
    )
    return frame, scene


@pytest.mark.parametrize(("azimuth", "elevation"), [(60.0, 45.0), (250.0, 35.0)])
def test_estimate_light_finds_the_light_of_a_lambertian_scene(azimuth: float, elevation: float) -> None:
    truth = Light.from_angles(azimuth, elevation, UP, level_camera())
    frame, scene = sphere_scene(truth.direction_world)

    class Plane:
        normal = UP

    estimate = estimate_light(frame, scene, 0, Plane(), np.array([0.0, 0.0, 1.0]))
    assert estimate is not None and estimate.source == "estimated:shading"
    angle = math.degrees(math.acos(np.clip(estimate.direction_world @ truth.direction_world, -1, 1)))
    assert angle < 15.0
    assert 0.4 < estimate.strength <= 0.85


def test_estimate_light_declines_a_single_plane() -> None:
    frame, scene = sphere_scene(np.array([0.0, 1.0, 0.0]))
    scene.depth[0][:] = scene.depth[0]  # keep layout
    camera = scene.cameras[0]
    height, width = scene.depth.shape[1:]
    xs, ys = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    rays_cam = np.stack([xs, ys, np.ones_like(xs)], -1) @ np.linalg.inv(camera.K).T
    rays = rays_cam @ camera.world_from_cam[:3, :3].T
    t = np.where(rays[..., 1] < 0, -camera.center_world[1] / np.where(rays[..., 1] < 0, rays[..., 1], -1), 0)
    scene.depth[0] = (t * rays_cam[..., 2]).astype(np.float32)  # only the floor: one orientation

    class Plane:
        normal_world = UP

    assert estimate_light(frame, scene, 0, Plane()) is None
