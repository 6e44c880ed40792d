"""The scene's vertical from the vanishing point of its vertical lines, and the assumed floor it tilts."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from insertanywhere.conventions import Camera, Placement, PlacementError, intrinsics_from_fov
from insertanywhere.place.anchor import assumed_ground_plane
from insertanywhere.place.vertical import vertical_from_lines

from .conftest import UP, look_at

WIDTH, HEIGHT = 640, 480


def _poles_image(camera: Camera, rng: np.random.Generator, count: int = 40) -> np.ndarray:
    """(H, W, 3) uint8: dark vertical poles (world +Y) standing on the floor in front of ``camera``, drawn
    anti-aliased on a noisy grey background, and a few slanted distractor strokes."""
    image = np.clip(rng.normal(150, 6, (HEIGHT, WIDTH)), 0, 255).astype(np.uint8)
    for _ in range(count):
        base = np.array([rng.uniform(-3, 3), 0.0, rng.uniform(3, 8)])
        ends = np.stack([base, base + UP * rng.uniform(1.0, 2.5)])
        pixels, z = camera.project(ends)
        if np.all(z > 0):
            start, end = (np.round(pixels - 0.5) * 16).astype(int)
            cv2.line(image, tuple(start), tuple(end), 40, 3, cv2.LINE_AA, shift=4)
    for _ in range(5):
        x, y = rng.uniform(0, WIDTH), rng.uniform(0, HEIGHT)
        cv2.line(image, (int(x), int(y)), (int(x + 60), int(y + 20)), 60, 2, cv2.LINE_AA)
    return np.repeat(image[..., None], 3, axis=2)


@pytest.mark.parametrize("pitch_deg", [0.0, 12.0, 22.0])
def test_the_vertical_of_a_pitched_camera_is_found_from_poles(pitch_deg):
    K = intrinsics_from_fov(WIDTH, HEIGHT, 60.0)
    eye = np.array([0.0, 1.6, 0.0])
    target = eye + np.array([0.0, -np.tan(np.radians(pitch_deg)), 1.0])
    camera = Camera(K=K, cam_from_world=look_at(eye, target))
    up = vertical_from_lines(_poles_image(camera, np.random.default_rng(1)), K)
    assert up is not None
    truth = camera.cam_from_world[:3, :3] @ UP
    assert np.degrees(np.arccos(np.clip(up @ truth, -1.0, 1.0))) < 1.0


def test_no_vertical_lines_give_no_vertical():
    K = intrinsics_from_fov(WIDTH, HEIGHT, 60.0)
    image = np.full((HEIGHT, WIDTH, 3), 128, np.uint8)
    for y in range(40, HEIGHT, 40):  # horizontal stripes only
        cv2.line(image, (0, y), (WIDTH, y + 10), (30, 30, 30), 3)
    assert vertical_from_lines(image, K) is None


def test_the_assumed_floor_is_perpendicular_to_the_found_vertical():
    K = intrinsics_from_fov(WIDTH, HEIGHT, 60.0)
    eye = np.array([0.0, 1.6, 0.0])
    camera = Camera(K=K, cam_from_world=look_at(eye, eye + np.array([0.0, -0.3, 1.0])))
    placement = Placement(frame=0, box=(300.0, 300.0, 340.0, 380.0))
    up_cam = camera.cam_from_world[:3, :3] @ UP
    plane = assumed_ground_plane(camera, placement, up_cam)
    np.testing.assert_allclose(plane.normal, UP, atol=1e-9)
    assert plane.signed_distance(camera.center_world[None])[0] == pytest.approx(1.0)
    level = assumed_ground_plane(camera, placement)
    assert np.degrees(np.arccos(level.normal @ UP)) == pytest.approx(np.degrees(np.arctan(0.3)), abs=1e-6)
    # A box whose bottom is above the tilted floor's horizon (the camera looks down: the horizon is high in the
    # image) is refused.
    with pytest.raises(PlacementError, match="horizon"):
        assumed_ground_plane(camera, Placement(frame=0, box=(300.0, 10.0, 340.0, 40.0)), up_cam)
