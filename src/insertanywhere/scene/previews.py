"""Stage 7: pictures of a reconstruction, written into the scene folder (the same code the tests call).

``previews/trajectory.png`` (camera centres seen from above and from the side), ``previews/depth.png``
and ``previews/dynamic.png`` (thumbnail strips), ``previews/points.ply`` (coloured static points).
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from insertanywhere.conventions import Scene4D
from insertanywhere.io.atomic import atomic_path, write_bytes_atomic


def write_ply(path: str | os.PathLike[str], points: np.ndarray, colors: np.ndarray) -> None:
    """Binary little-endian PLY of (N, 3) float points and (N, 3) uint8 colours."""
    points = np.asarray(points, np.float32).reshape(-1, 3)
    colors = np.asarray(colors, np.uint8).reshape(-1, 3)
    header = (
        "ply\nformat binary_little_endian 1.0\n"
        f"element vertex {len(points)}\n"
        "property float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n"
    ).encode("ascii")
    record = np.dtype([("xyz", "<f4", 3), ("rgb", "u1", 3)])
    data = np.empty(len(points), record)
    data["xyz"], data["rgb"] = points, colors
    write_bytes_atomic(path, header + data.tobytes())


def trajectory_figure(path: str | os.PathLike[str], scene: Scene4D) -> None:
    """Camera centres (top view x-z and side view z-y) with viewing directions, and the static points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    poses = np.stack([c.cam_from_world for c in scene.cameras])
    world_from_cam = np.linalg.inv(poses)
    centers = world_from_cam[:, :3, 3]
    forward = world_from_cam[:, :3, 2]
    figure, axes = plt.subplots(1, 2, figsize=(9, 4.2))
    for axis, (i, j, label) in zip(axes, [(0, 2, "top (x, z)"), (2, 1, "side (z, y)")], strict=True):
        if scene.points_world is not None and len(scene.points_world):
            sample = scene.points_world[:: max(1, len(scene.points_world) // 3000)]
            colors = (
                scene.points_color[:: max(1, len(scene.points_world) // 3000)] / 255.0
                if scene.points_color is not None
                else "0.7"
            )
            axis.scatter(sample[:, i], sample[:, j], s=1, c=colors, alpha=0.5)
        axis.plot(centers[:, i], centers[:, j], "-", color="tab:blue", lw=1.5)
        axis.scatter(centers[:, i], centers[:, j], c=np.arange(len(centers)), cmap="viridis", s=10, zorder=3)
        span = max(np.ptp(centers[:, [i, j]], axis=0).max(), 1e-3)
        step = max(1, len(centers) // 15)
        axis.quiver(
            centers[::step, i], centers[::step, j], forward[::step, i], forward[::step, j],
            angles="xy", scale_units="xy", scale=4.0 / span, width=0.004, color="tab:red",
        )  # fmt: skip
        axis.set_title(f"{label}  [{scene.meta.camera_model}]")
        axis.set_aspect("equal", adjustable="datalim")
        if j == 1:
            axis.invert_yaxis()  # y points down in the camera convention
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=90)
    plt.close(figure)


def _strip(images: list[np.ndarray], height: int = 96) -> np.ndarray:
    resized = [cv2.resize(im, (max(1, int(im.shape[1] * height / im.shape[0])), height)) for im in images]
    return np.concatenate(resized, axis=1)


def depth_strip(scene: Scene4D, n: int = 8) -> np.ndarray:
    """(h, w, 3) uint8 strip of n colour-mapped inverse-depth thumbnails (black = unknown)."""
    frames = np.linspace(0, scene.n_frames - 1, num=min(n, scene.n_frames)).astype(int)
    known_all = np.asarray(scene.depth[frames])
    positive = known_all[known_all > 0]
    lo, hi = np.percentile(1.0 / positive, [2, 98]) if positive.size else (0.0, 1.0)
    thumbs = []
    for t in frames:
        depth = np.asarray(scene.depth[t], np.float32)
        inverse = np.where(depth > 0, 1.0 / np.maximum(depth, 1e-6), 0.0)
        norm = np.clip((inverse - lo) / max(hi - lo, 1e-9), 0, 1)
        colored = cv2.applyColorMap((norm * 255).astype(np.uint8), cv2.COLORMAP_TURBO)[..., ::-1]
        thumbs.append(np.where((depth > 0)[..., None], colored, 0).astype(np.uint8))
    return _strip(thumbs)


def dynamic_strip(scene: Scene4D, frames_rgb: np.ndarray | None, n: int = 8) -> np.ndarray:
    """(h, w, 3) uint8 strip of dynamic masks (red) over the frames (grey when frames are not given)."""
    frames = np.linspace(0, scene.n_frames - 1, num=min(n, scene.n_frames)).astype(int)
    thumbs = []
    for t in frames:
        mask = np.asarray(scene.dynamic_mask[t], bool)
        base = frames_rgb[t] if frames_rgb is not None else np.full((*mask.shape, 3), 90, np.uint8)
        overlay = base.copy()
        overlay[mask] = (0.45 * base[mask] + 0.55 * np.array([255, 0, 0])).astype(np.uint8)
        thumbs.append(overlay)
    return _strip(thumbs)


def write_previews(scene: Scene4D, folder: str | os.PathLike[str], frames_rgb: np.ndarray | None = None) -> Path:
    """Write every preview of ``scene`` into ``folder/previews`` and return that folder.

    Args:
        frames_rgb: (T, H, W, 3) uint8 frames for the mask overlay, or None.
    """
    out = Path(folder) / "previews"
    out.mkdir(parents=True, exist_ok=True)
    trajectory_figure(out / "trajectory.png", scene)
    for name, image in [("depth.png", depth_strip(scene)), ("dynamic.png", dynamic_strip(scene, frames_rgb))]:
        ok, encoded = cv2.imencode(".png", image[..., ::-1])
        if ok:
            write_bytes_atomic(out / name, encoded.tobytes())
    if scene.points_world is not None:
        colors = (
            scene.points_color if scene.points_color is not None else np.full_like(scene.points_world, 200, np.uint8)
        )
        write_ply(out / "points.ply", scene.points_world, colors)
    return out
