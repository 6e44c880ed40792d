"""Render a family to the output folder contract (see docs/synthetic.md), atomically."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from insertanywhere.conventions import ObjectTrack, Placement, transform_points
from insertanywhere.data.synthetic.families import FAMILIES, SMALL_SIZE, build_scene
from insertanywhere.data.synthetic.raycast import FrameRender, render_frame
from insertanywhere.data.synthetic.scene import WORLD_AXES, SceneDescription
from insertanywhere.errors import InputError
from insertanywhere.io.atomic import MARKER_NAME, atomic_dir, atomic_path, prepare_output_dir, write_json_atomic
from insertanywhere.io.images import frame_name, write_png, write_sequence_frame
from insertanywhere.io.video import VideoWriter
from insertanywhere.progress import Progress, null_progress

FULLY_OCCLUDED_BELOW = 0.01
"""visible_fraction under which a frame counts as fully occluded."""
PARTLY_OCCLUDED_BELOW = 0.98
SMALL_FRAME_PIXELS = 200 * 120
"""Frames up to this many pixels (the --small 160x96) get 4x4 rays per pixel: cheap there, and the edges
of a 15-pixel-wide object matter. Larger frames (the 320x192 demo, 832x480) get 2x2."""


def default_supersample(width: int, height: int) -> int:
    """Rays per pixel side: 4 for small frames, 2 for large ones (see SMALL_FRAME_PIXELS)."""
    return 4 if width * height <= SMALL_FRAME_PIXELS else 2


class SynthError(InputError):
    """A synth request that cannot be rendered (unknown family, bad size)."""


def resolve_size(
    family: str, small: bool, n_frames: int | None, width: int | None, height: int | None
) -> tuple[int, int, int]:
    """(width, height, n_frames) for a request: explicit values win, then --small, then the family default."""
    if family not in FAMILIES:
        raise SynthError(f"unknown scene family {family!r}; choose one of: {', '.join(FAMILIES)}")
    default = SMALL_SIZE if small else FAMILIES[family].default_size
    size = (width or default[0], height or default[1], n_frames or default[2])
    w, h, t = size
    if w < 16 or h < 16 or w % 2 or h % 2:
        raise SynthError(f"frame size {w}x{h} is not usable: give an even width and height of at least 16")
    if t < 1:
        raise SynthError(f"--frames {t} must be at least 1")
    return size


def render_scene_to_folder(
    out: str | os.PathLike[str],
    family: str = "static",
    seed: int = 0,
    small: bool = False,
    n_frames: int | None = None,
    width: int | None = None,
    height: int | None = None,
    overwrite: bool = False,
    supersample: int | None = None,
    progress: Progress = null_progress,
) -> Path:
    """Render synthetic scene ``family`` with ``seed`` into folder ``out`` and return its resolved path.

    The folder is written whole or not at all: frames go to a temporary sibling folder that replaces
    ``out`` at the end. ``out`` follows ``prepare_output_dir``: a non-empty folder not made by this tool
    is refused unless ``overwrite``. ``supersample`` (rays per pixel side) defaults to
    ``default_supersample(width, height)``.
    """
    w, h, t = resolve_size(family, small, n_frames, width, height)
    supersample = supersample or default_supersample(w, h)
    final = prepare_output_dir(out, overwrite=overwrite)
    scene = build_scene(family, seed, w, h, t)
    with atomic_dir(final) as tmp:
        (tmp / MARKER_NAME).write_text("made by insertanywhere\n")
        write_scene(scene, tmp, supersample=supersample, progress=progress)
    return final


def write_scene(scene: SceneDescription, folder: Path, supersample: int, progress: Progress = null_progress) -> None:
    """Render every frame of ``scene`` and write the contract's files into the existing ``folder``."""
    gt = folder / "gt"
    for name in ("masks", "alpha", "shadow", "depth", "dynamic"):
        (gt / name).mkdir(parents=True, exist_ok=True)
    poses: list[dict[str, Any]] = []
    first: FrameRender | None = None
    preview_indices = sorted({0, scene.n_frames // 2, scene.n_frames - 1})
    preview_frames: list[FrameRender] = []
    with (
        VideoWriter(folder / "background.mp4", scene.width, scene.height, scene.fps) as background,
        VideoWriter(gt / "inserted.mp4", scene.width, scene.height, scene.fps) as inserted,
    ):
        for index in range(scene.n_frames):
            frame = render_frame(scene, index, supersample=supersample)
            if index == 0:
                first = frame
            if index in preview_indices:
                preview_frames.append(frame)
            background.write(frame.background)
            inserted.write(frame.inserted)
            write_sequence_frame(gt / "masks", index, frame.alpha_visible >= 0.5)
            write_sequence_frame(gt / "alpha", index, _to_u8(frame.alpha_visible))
            write_sequence_frame(gt / "shadow", index, _to_u8(frame.shadow))
            write_depth_png(gt / "depth" / frame_name(index), frame.depth)
            write_sequence_frame(gt / "dynamic", index, frame.dynamic)
            total = float(frame.alpha_unoccluded.sum())
            visible_fraction = float(frame.alpha_visible.sum()) / total if total > 0 else 0.0
            poses.append(
                {
                    "index": index,
                    "world_from_object": scene.world_from_object(index).tolist(),
                    "visible_fraction": round(min(visible_fraction, 1.0), 6),
                    "projected_coverage_px": round(total, 3),
                }
            )
            progress("synth", index + 1, scene.n_frames)
    assert first is not None
    placement = _write_object_crop(first, folder)
    write_png(folder / "preview.png", preview_sheet(preview_frames))
    write_json_atomic(folder / "placement.json", placement.to_dict())
    write_png(folder / "object_texture.png", scene.card.rgba_srgb)
    write_json_atomic(gt / "cameras.json", ObjectTrack.from_cameras(scene.width, scene.height, scene.cameras).to_dict())
    write_json_atomic(gt / "object_poses.json", {"frames": poses})
    write_json_atomic(folder / "meta.json", scene_meta(scene, poses, placement, supersample))


def write_depth_png(path: Path, depth_m: np.ndarray) -> None:
    """Write (H, W) float32 z-depth in metres as a 16-bit PNG in millimetres (0 = no hit; max 65.535 m)."""
    import cv2

    depth_mm = np.clip(np.round(depth_m.astype(np.float64) * 1000.0), 0, 65535).astype(np.uint16)
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), depth_mm, [cv2.IMWRITE_PNG_COMPRESSION, 1]):
            raise OSError(f"cannot write {path}")


def read_depth_png(path: Path) -> np.ndarray:
    """(H, W) float32 z-depth in metres from a 16-bit millimetre PNG written by ``write_depth_png``."""
    import cv2

    depth_mm = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if depth_mm is None or depth_mm.dtype != np.uint16:
        raise InputError(f"{path}: not a 16-bit depth PNG")
    return depth_mm.astype(np.float32) / 1000.0


def preview_sheet(frames: list[FrameRender]) -> np.ndarray:
    """(H', W', 3) uint8 contact sheet: one row per frame - the GT inserted frame with the visible mask
    outlined in green, the shadow matte (red over the background) and the depth (near = bright)."""
    import cv2

    rows = []
    for frame in frames:
        inserted = frame.inserted.copy()
        contours, _ = cv2.findContours(
            (frame.alpha_visible >= 0.5).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE
        )
        cv2.drawContours(inserted, contours, -1, (0, 255, 0), 1)
        shadow = frame.background.astype(np.float32) * 0.6
        shadow[..., 0] += 255.0 * 0.4 * np.clip(frame.shadow * 2.0, 0.0, 1.0)
        hit = frame.depth > 0
        depth = np.zeros(frame.depth.shape, np.float32)
        if hit.any():
            inverse = np.where(hit, 1.0 / np.maximum(frame.depth, 1e-6), 0.0)
            depth = inverse / inverse.max()
        depth_rgb = np.repeat(_to_u8(depth)[..., None], 3, axis=2)
        rows.append(np.concatenate([inserted, np.clip(shadow, 0, 255).astype(np.uint8), depth_rgb], axis=1))
    return np.concatenate(rows, axis=0)


def _to_u8(values: np.ndarray) -> np.ndarray:
    return np.round(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8)


def _write_object_crop(frame: FrameRender, folder: Path) -> Placement:
    """object.png (the lit object as seen in frame 0, alpha = coverage) cropped to its tight box."""
    coverage = frame.alpha_unoccluded
    ys, xs = np.nonzero(coverage > 0.02)
    if ys.size == 0:
        raise RuntimeError("the object is not in frame 0; the family builder placed it wrongly")
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
    rgba = np.concatenate([frame.object_rgb, _to_u8(coverage)[..., None]], axis=2)[y0:y1, x0:x1]
    write_png(folder / "object.png", rgba)
    return Placement(frame=0, box=(float(x0), float(y0), float(x1), float(y1)), yaw_deg=0.0)


def scene_meta(
    scene: SceneDescription, poses: list[dict[str, Any]], placement: Placement, supersample: int
) -> dict[str, Any]:
    """meta.json: everything a test or a benchmark needs to know about the scene besides the frames."""
    fractions = [(p["index"], p["visible_fraction"], p["projected_coverage_px"]) for p in poses]
    support_pose0 = scene.bodies[scene.card.support_body].world_from_body[0]
    point_body, normal_body = scene.support_plane_body
    light = scene.light
    return {
        "family": scene.family,
        "description": FAMILIES[scene.family].description,
        "seed": scene.seed,
        "width": scene.width,
        "height": scene.height,
        "fps": scene.fps,
        "n_frames": scene.n_frames,
        "units": "metric",
        "world_axes": WORLD_AXES,
        "camera_model": scene.camera_model,
        "support_moves": scene.support_moves,
        "support_plane": {
            "point": transform_points(support_pose0, point_body[None])[0].tolist(),
            "normal": (support_pose0[:3, :3] @ normal_body).tolist(),
            "frame": 0,
            "body": scene.card.support_body,
        },
        "light": {
            "type": "directional",
            "direction": list(light.direction),
            "direction_meaning": "unit vector in world pointing TOWARD the light",
            "azimuth_deg": light.azimuth_deg,
            "elevation_deg": light.elevation_deg,
            "sun_rgb": list(light.sun_rgb),
            "ambient_rgb": list(light.ambient_rgb),
        },
        "object": {
            "kind": "card",
            "width_m": scene.card.width_m,
            "height_m": scene.card.height_m,
            "size_m": [scene.card.width_m, scene.card.height_m],
            "description": scene.card.description,
            "frame_convention": "origin at the contact point, +Y up (support normal), picture faces +Z",
        },
        "placement": placement.to_dict(),
        "fully_occluded_frames": [i for i, f, c in fractions if c > 0 and f < FULLY_OCCLUDED_BELOW],
        "partly_occluded_frames": [
            i for i, f, c in fractions if c > 0 and FULLY_OCCLUDED_BELOW <= f < PARTLY_OCCLUDED_BELOW
        ],
        "dynamic_bodies": sorted(name for name, body in scene.bodies.items() if body.dynamic),
        "textures": scene.texture_names,
        "renderer": {"name": "insertanywhere numpy ray caster", "supersample": supersample, "gamma": 2.2},
        "depth_png": "uint16 millimetres, z-depth of the scene without the object, 0 = no hit",
    }
