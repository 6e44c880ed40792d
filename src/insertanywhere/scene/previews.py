"""Stage 7: pictures of a reconstruction, written into the scene folder (the same code the tests call).

``previews/trajectory.png`` (camera centres seen from above and from the side), ``previews/depth.png``
and ``previews/dynamic.png`` (thumbnail strips), ``previews/points.ply`` (coloured static points).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np

from insertanywhere.conventions import Scene4D
from insertanywhere.io.atomic import write_bytes_atomic


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


PANEL_SIZE = (405, 378)
"""(width, height) pixels of each trajectory panel."""
PANEL_MARGIN = 28


def _panel(
    centers: np.ndarray,
    forward: np.ndarray,
    points: np.ndarray | None,
    colors: np.ndarray | None,
    axes: tuple[int, int],
    flip_vertical: bool,
    title: str,
) -> np.ndarray:
    """(h, w, 3) uint8 RGB: one projection of the trajectory onto world ``axes`` (i, j), equal scale on both.

    Args:
        centers, forward: (T, 3) camera centres and unit viewing directions (world).
        points, colors: (N, 3) static points and their (N, 3) uint8 colours, or None.
        flip_vertical: draw axis j growing upward (the top view's z) instead of downward (the side view's y,
            which points down in the camera convention).
    """
    width, height = PANEL_SIZE
    canvas = np.full((height, width, 3), 255, np.uint8)
    i, j = axes
    path = centers[:, [i, j]]
    extent = path
    if points is not None and len(points):
        # The points frame the view (robustly: a few far outliers must not shrink the trajectory to a dot).
        lo, hi = np.percentile(points[:, [i, j]], [2, 98], axis=0)
        extent = np.vstack([path, lo, hi])
    low, high = extent.min(axis=0), extent.max(axis=0)
    span = max(float(np.max(high - low)), 1e-3)
    scale = (min(width, height - PANEL_MARGIN) - 2 * PANEL_MARGIN) / span  # pixels per scene unit
    middle = (low + high) / 2

    def to_pixels(xy: np.ndarray) -> np.ndarray:
        u = width / 2 + (xy[:, 0] - middle[0]) * scale
        v = (height + PANEL_MARGIN) / 2 + (xy[:, 1] - middle[1]) * scale * (-1 if flip_vertical else 1)
        return np.stack([u, v], axis=1)

    if points is not None and len(points):
        pixels = np.round(to_pixels(points[:, [i, j]])).astype(int)
        inside = (pixels[:, 0] >= 0) & (pixels[:, 0] < width) & (pixels[:, 1] >= 0) & (pixels[:, 1] < height)
        dots = colors[inside] if colors is not None else np.full((int(inside.sum()), 3), 170, np.uint8)
        canvas[pixels[inside, 1], pixels[inside, 0]] = dots
    line = np.round(to_pixels(path) * 16).astype(np.int32)  # 4 fractional bits: sub-pixel antialiased lines
    cv2.polylines(canvas, [line.reshape(-1, 1, 2)], False, (31, 119, 180), 2, cv2.LINE_AA, shift=4)
    arrow_length = 0.25 * span * scale
    step = max(1, len(centers) // 15)
    for t in range(0, len(centers), step):
        direction = forward[t, [i, j]] * np.array([1.0, -1.0 if flip_vertical else 1.0])
        start = to_pixels(path[t : t + 1])[0]
        end = start + arrow_length * direction
        cv2.arrowedLine(canvas, tuple(np.round(start).astype(int)), tuple(np.round(end).astype(int)),
                        (214, 39, 40), 1, cv2.LINE_AA, tipLength=0.25)  # fmt: skip
    ramp = cv2.applyColorMap(np.linspace(0, 255, len(centers)).astype(np.uint8)[:, None], cv2.COLORMAP_VIRIDIS)
    for t, centre in enumerate(np.round(to_pixels(path)).astype(int)):
        color = tuple(int(c) for c in ramp[t, 0, ::-1])  # BGR colour map -> RGB canvas
        cv2.circle(canvas, tuple(centre), 3, color, -1, cv2.LINE_AA)
    cv2.putText(canvas, title, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    length = float(np.sum(np.linalg.norm(np.diff(centers, axis=0), axis=1)))
    note = f"{len(centers)} frames, path {length:.3g}, view {span:.3g} across"
    cv2.putText(canvas, note, (8, height - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (90, 90, 90), 1, cv2.LINE_AA)
    return canvas


def trajectory_figure(path: str | os.PathLike[str], scene: Scene4D) -> None:
    """Camera centres (top view x-z and side view z-y), coloured from first (purple) to last (yellow) frame,
    with viewing directions (red arrows) over the static points.

    Drawn with OpenCV: matplotlib took about 2 s here (1.3 s of it importing pyplot), on the thread that
    saves the scene while the object is placed, and held the interpreter lock against that work.
    """
    poses = np.stack([c.cam_from_world for c in scene.cameras])
    world_from_cam = np.linalg.inv(poses)
    centers, forward = world_from_cam[:, :3, 3], world_from_cam[:, :3, 2]
    points, colors = scene.points_world, scene.points_color
    if points is not None and len(points):
        stride = max(1, len(points) // 3000)
        points = np.asarray(points)[::stride]
        colors = np.asarray(colors)[::stride] if colors is not None else None
    model = scene.meta.camera_model
    panels = [
        _panel(centers, forward, points, colors, (0, 2), True, f"top (x, z)  [{model}]"),
        _panel(centers, forward, points, colors, (2, 1), False, f"side (z, y)  [{model}]"),
    ]
    ok, encoded = cv2.imencode(".png", np.concatenate(panels, axis=1)[..., ::-1])
    if ok:
        write_bytes_atomic(path, encoded.tobytes())


def _strip(images: list[np.ndarray], height: int = 96) -> np.ndarray:
    resized = [cv2.resize(im, (max(1, int(im.shape[1] * height / im.shape[0])), height)) for im in images]
    return np.concatenate(resized, axis=1)


def depth_strip(scene: Scene4D, n: int = 8, height: int = 96) -> np.ndarray:
    """(h, w, 3) uint8 strip of n colour-mapped inverse-depth thumbnails (black = unknown), ``height`` pixels
    tall. Each depth map is shrunk first (nearest, so unknown stays unknown): the strip is written on the scene's
    background thread while the frames are rendered, and full-resolution maps cost it a quarter of a second."""
    frames = strip_frames(scene, n)
    thumb_size = (max(1, round(scene.meta.width * height / scene.meta.height)), height)
    depths = [cv2.resize(np.asarray(scene.depth[t], np.float32), thumb_size, interpolation=cv2.INTER_NEAREST)
              for t in frames]  # fmt: skip
    positive = np.concatenate([d[d > 0] for d in depths]) if depths else np.zeros(0, np.float32)
    lo, hi = np.percentile(1.0 / positive, [2, 98]) if positive.size else (0.0, 1.0)
    thumbs = []
    for depth in depths:
        inverse = np.where(depth > 0, 1.0 / np.maximum(depth, 1e-6), 0.0)
        norm = np.clip((inverse - lo) / max(hi - lo, 1e-9), 0, 1)
        colored = cv2.applyColorMap((norm * 255).astype(np.uint8), cv2.COLORMAP_TURBO)[..., ::-1]
        thumbs.append(np.where((depth > 0)[..., None], colored, 0).astype(np.uint8))
    return _strip(thumbs, height)


def strip_frames(scene: Scene4D, n: int = 8) -> list[int]:
    """The frame indices the thumbnail strips show: n evenly spaced frames."""
    return [int(t) for t in np.linspace(0, scene.n_frames - 1, num=min(n, scene.n_frames)).astype(int)]


def dynamic_strip(scene: Scene4D, frames_rgb: Mapping[int, np.ndarray] | np.ndarray | None, n: int = 8) -> np.ndarray:
    """(h, w, 3) uint8 strip of dynamic masks (red) over the frames (grey when frames are not given).

    Args:
        frames_rgb: (H, W, 3) uint8 frames indexed by frame number: the whole (T, H, W, 3) clip, or a mapping
            holding at least the ``strip_frames(scene, n)``.
    """
    frames = strip_frames(scene, n)
    thumbs = []
    for t in frames:
        mask = np.asarray(scene.dynamic_mask[t], bool)
        base = frames_rgb[t] if frames_rgb is not None else np.full((*mask.shape, 3), 90, np.uint8)
        overlay = base.copy()
        overlay[mask] = (0.45 * base[mask] + 0.55 * np.array([255, 0, 0])).astype(np.uint8)
        thumbs.append(overlay)
    return _strip(thumbs)


def write_previews(
    scene: Scene4D, folder: str | os.PathLike[str], frames_rgb: Mapping[int, np.ndarray] | np.ndarray | None = None
) -> Path:
    """Write every preview of ``scene`` into ``folder/previews`` and return that folder.

    Args:
        frames_rgb: frames for the mask overlay (see ``dynamic_strip``), or None.
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
