"""Synthetic track sets with known cameras for the scene tests (pure numpy)."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from insertanywhere.scene.tracks import Tracks

WIDTH, HEIGHT = 320, 240
K = np.array([[280.0, 0.0, 160.0], [0.0, 280.0, 120.0], [0.0, 0.0, 1.0]])


def look_poses(n_frames: int, kind: str) -> np.ndarray:
    """(T, 4, 4) cam_from_world for "static", "rotation" (pan) or "general" (sideways + forward dolly)."""
    poses = np.tile(np.eye(4), (n_frames, 1, 1))
    for t in range(n_frames):
        if kind == "rotation":
            poses[t, :3, :3] = Rotation.from_euler("yx", [1.0 * t, 0.4 * t], degrees=True).as_matrix()
        elif kind == "general":
            rotation = Rotation.from_euler("y", -0.3 * t, degrees=True).as_matrix()
            center = np.array([0.03 * t, 0.0, 0.02 * t])
            poses[t, :3, :3] = rotation
            poses[t, :3, 3] = -rotation @ center
    return poses


def scene_points(n_points: int, seed: int = 0) -> np.ndarray:
    """(N, 3) points: a floor plane and boxes between 2 and 6 units in front of the first camera."""
    rng = np.random.default_rng(seed)
    floor = np.stack(
        [rng.uniform(-3, 3, n_points // 2), np.full(n_points // 2, 1.0), rng.uniform(2, 6, n_points // 2)], 1
    )
    rest = n_points - len(floor)
    boxes = np.stack([rng.uniform(-2, 2, rest), rng.uniform(-1.0, 1.0, rest), rng.uniform(2.5, 5, rest)], 1)
    return np.concatenate([floor, boxes])


def project_tracks(poses: np.ndarray, points: np.ndarray, noise_px: float = 0.1, seed: int = 1) -> Tracks:
    """Tracks of ``points`` seen by ``poses`` (nan outside the image or behind the camera)."""
    rng = np.random.default_rng(seed)
    cam = np.einsum("tij,nj->tni", poses[:, :3, :3], points) + poses[:, None, :3, 3]
    xy = (cam @ K.T)[..., :2] / cam[..., 2:3]
    xy = xy + rng.normal(0, noise_px, xy.shape)
    outside = (
        (cam[..., 2] <= 0.1) | (xy[..., 0] < 0) | (xy[..., 0] >= WIDTH) | (xy[..., 1] < 0) | (xy[..., 1] >= HEIGHT)
    )
    xy[outside] = np.nan
    n = points.shape[0]
    return Tracks(xy.astype(np.float32), np.ones(n, np.float32), np.zeros(n, np.float32))
