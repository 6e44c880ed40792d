"""Analytic scenes for the placement stage: a textured-less floor seen by known cameras, with a
rigid tray sliding on it, and exact depth and optical flow computed from the geometry."""

from __future__ import annotations

import numpy as np
import pytest

from insertanywhere.conventions import Camera, Scene4D, SceneMeta, intrinsics_from_fov, invert_pose, make_pose
from insertanywhere.geometry.rigid import rotation_about_axis

WIDTH, HEIGHT = 160, 120
UP = np.array([0.0, 1.0, 0.0])
CARD = np.array([[-0.5, 0.0, 0.0], [0.5, 0.0, 0.0], [0.5, 1.0, 0.0], [-0.5, 1.0, 0.0]])
TRAY_HALF = 0.8


def look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """cam_from_world (4, 4) of an OpenCV camera at ``eye`` looking at ``target`` with world +Y up."""
    forward = target - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, UP)
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    world_from_cam = make_pose(np.stack([right, down, forward], axis=1), eye)
    return invert_pose(world_from_cam)


def floor_points(camera: Camera) -> np.ndarray:
    """(H, W, 3) world points of the floor y = 0 seen at each pixel centre (nan where missed)."""
    xs, ys = np.meshgrid(np.arange(WIDTH) + 0.5, np.arange(HEIGHT) + 0.5)
    pixels = np.stack([xs, ys], -1).reshape(-1, 2)
    rays = camera.world_from_cam[:3, :3] @ camera.pixel_rays_cam(pixels).T
    origin = camera.center_world
    s = -origin[1] / rays[1]
    points = origin[:, None] + rays * np.where(s > 0, s, np.nan)
    return points.T.reshape(HEIGHT, WIDTH, 3)


def tray_motion(t: int, speed: float, turn_deg: float) -> np.ndarray:
    """World motion (4, 4) of the tray from frame 0 to frame t: slide along x and turn about +Y."""
    return make_pose(rotation_about_axis(UP, np.radians(turn_deg * t)), np.array([speed * t, 0.0, 0.0]))


def build_scene(cameras: list[Camera], motions: list[np.ndarray]) -> Scene4D:
    """Scene4D with exact depth, dynamic mask (the tray) and forward/backward flow."""
    count = len(cameras)
    depth = np.zeros((count, HEIGHT, WIDTH), np.float32)
    dynamic = np.zeros((count, HEIGHT, WIDTH), bool)
    forward = np.zeros((count - 1, HEIGHT, WIDTH, 2), np.float32)
    backward = np.zeros((count - 1, HEIGHT, WIDTH, 2), np.float32)
    points = [floor_points(c) for c in cameras]

    def on_tray(world: np.ndarray, t: int) -> np.ndarray:
        local = world @ invert_pose(motions[t])[:3, :3].T + invert_pose(motions[t])[:3, 3]
        return (np.abs(local[..., 0]) < TRAY_HALF) & (np.abs(local[..., 2]) < TRAY_HALF)

    for t, camera in enumerate(cameras):
        world = points[t]
        cam = world @ camera.cam_from_world[:3, :3].T + camera.cam_from_world[:3, 3]
        depth[t] = np.nan_to_num(cam[..., 2], nan=0.0)
        dynamic[t] = (
            on_tray(world, t) & np.isfinite(world[..., 0]) if any(np.any(m != np.eye(4)) for m in motions) else False
        )
    pixel_grid = np.stack(np.meshgrid(np.arange(WIDTH) + 0.5, np.arange(HEIGHT) + 0.5), -1)
    for t in range(count - 1):
        for source, target, out in ((t, t + 1, forward), (t + 1, t, backward)):
            world = points[source]
            moving = on_tray(world, source)
            step = motions[target] @ invert_pose(motions[source])
            moved = np.where(moving[..., None], world @ step[:3, :3].T + step[:3, 3], world)
            pixels, _ = cameras[target].project(moved.reshape(-1, 3))
            out[t] = np.nan_to_num(pixels.reshape(HEIGHT, WIDTH, 2) - pixel_grid)
    meta = SceneMeta(WIDTH, HEIGHT, 24.0, count, "metric", "general", {"flow": "analytic"})
    return Scene4D(meta, cameras, depth, np.ones_like(depth), dynamic, forward, backward)


@pytest.fixture
def intrinsics() -> np.ndarray:
    return intrinsics_from_fov(WIDTH, HEIGHT, 60.0)


def orbit_cameras(
    K: np.ndarray, count: int, degrees: float, distance: float = 4.0, height: float = 1.6
) -> list[Camera]:
    cameras = []
    for t in range(count):
        angle = np.radians(-degrees / 2 + degrees * t / max(count - 1, 1))
        eye = np.array([distance * np.sin(angle), height, -distance * np.cos(angle)])
        cameras.append(Camera(K, look_at(eye, np.array([0.0, 0.0, 0.0]))))
    return cameras
