"""Scene4D on disk: a folder with the pinned JSON files and memory-mapped arrays.

Layout (``scene/``)::

    scene.json           SceneMeta (pinned schema, docs/design.md)
    cameras.json         ObjectTrack schema without object poses (pinned)
    depth.npy            (T, h, w) float32 z-depth, scene units, 0 = unknown
    depth_confidence.npy (T, h, w) float16 in [0, 1]
    dynamic_mask.npy     (T, h, w) bool (older scenes: uint8 0/1, read as bool)
    flow_forward.npy     (T-1, h, w, 2) float16 pixels of the (w, h) frame, t -> t+1      (optional)
    flow_backward.npy    (T-1, h, w, 2) float16 pixels of the (w, h) frame, t+1 -> t      (optional)
    points.npz           points_world (N, 3) float64, points_color (N, 3) uint8 (optional)

(h, w) is the clip's full (H, W) or, for a reconstructed scene, its working resolution (long side 416):
an array whose frames are smaller than scene.json's size is read back as an ``upsampled.UpsampledStack``,
made full size frame by frame where it is read (300 frames of 1080p: 0.4 GB instead of 8.7 GB).
``.npy`` files are opened as read-only memmaps, so a long clip's scene does not
need to fit in memory. Everything is written under temporary names and renamed.
``scene.json`` is removed first and written last, so a folder holding it is a
complete scene even if an earlier save over it crashed half-way.

Precision on disk: confidence and flow are float16 (flow steps of 1/1024 px below
1 px, 1/16 px at 100 px; plenty for chaining and occlusion tests).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from insertanywhere.conventions import ObjectTrack, Scene4D, SceneMeta
from insertanywhere.errors import InputError
from insertanywhere.io.atomic import atomic_path, read_json, write_json_atomic
from insertanywhere.upsampled import StackKind, UpsampledStack, upsampled_or_array

SCENE_JSON = "scene.json"
CAMERAS_JSON = "cameras.json"
_OPTIONAL_FILES = ("flow_forward.npy", "flow_backward.npy", "points.npz")


def save_array(path: Path, array: np.ndarray, dtype: np.dtype | type | None = None) -> None:
    """Write one ``.npy`` atomically, converting to ``dtype`` frame by frame (bounded memory).

    Plain writes, not a memory map: writing into a memmap on a full disk kills the process with SIGBUS (a
    benchmark did, mid-save), where a write raises OSError that the caller can report.
    """
    dtype = np.dtype(dtype or array.dtype)
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(array.shape)}
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, header)
        for t in range(array.shape[0]):
            handle.write(memoryview(np.ascontiguousarray(array[t], dtype=dtype)).cast("B"))  # no copy


def load_array(path: Path) -> np.ndarray:
    """A read-only memmap of a ``.npy``; InputError when the file is not a readable array."""
    try:
        return np.load(path, mmap_mode="r")
    except (ValueError, OSError, EOFError) as err:
        raise InputError(f"{path}: not a readable .npy array ({err})") from None


def check_scene_shapes(scene: Scene4D) -> None:
    """Raise ValueError when the scene's arrays disagree with its metadata and cameras.

    Expected: depth, depth_confidence, dynamic_mask (T, H, W); flows (T-1, H, W, 2); points (N, 3),
    with T = meta.n_frames = len(cameras), H = meta.height, W = meta.width (an ``UpsampledStack`` has the
    full-size shape).
    """
    n_frames, height, width = scene.meta.n_frames, scene.meta.height, scene.meta.width
    if len(scene.cameras) != n_frames:
        raise ValueError(f"scene has {len(scene.cameras)} cameras for {n_frames} frames")
    per_frame = {"depth": scene.depth, "depth_confidence": scene.depth_confidence, "dynamic_mask": scene.dynamic_mask}
    for name, array in per_frame.items():
        if tuple(array.shape) != (n_frames, height, width):
            raise ValueError(f"scene {name} has shape {tuple(array.shape)}, expected {(n_frames, height, width)}")
    for name, flow in (("flow_forward", scene.flow_forward), ("flow_backward", scene.flow_backward)):
        if flow is not None and tuple(flow.shape) != (n_frames - 1, height, width, 2):
            raise ValueError(f"scene {name} has shape {tuple(flow.shape)}, expected {(n_frames - 1, height, width, 2)}")
    if scene.points_world is not None and (scene.points_world.ndim != 2 or scene.points_world.shape[1] != 3):
        raise ValueError(f"scene points_world has shape {scene.points_world.shape}, expected (N, 3)")
    points_color_mismatch = scene.points_color is not None and scene.points_world is not None
    if points_color_mismatch and scene.points_color.shape != scene.points_world.shape:
        raise ValueError(f"scene points_color has shape {scene.points_color.shape}, expected (N, 3)")


def save_scene(scene: Scene4D, folder: str | os.PathLike[str]) -> Path:
    """Write ``scene`` into ``folder`` (created). ``scene.json`` is removed first and written
    last, so a folder with ``scene.json`` is complete; optional files of an older scene
    that this one lacks are removed. Raises ValueError when the arrays disagree (``check_scene_shapes``)."""
    check_scene_shapes(scene)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / SCENE_JSON).unlink(missing_ok=True)
    present = {
        "flow_forward.npy": scene.flow_forward is not None,
        "flow_backward.npy": scene.flow_backward is not None,
        "points.npz": scene.points_world is not None,
    }
    for name in _OPTIONAL_FILES:
        if not present[name]:
            (folder / name).unlink(missing_ok=True)
    save_array(folder / "depth.npy", _stored(scene.depth), np.float32)
    save_array(folder / "depth_confidence.npy", _stored(scene.depth_confidence), np.float16)
    save_array(folder / "dynamic_mask.npy", _stored(scene.dynamic_mask), np.bool_)  # nonzero -> True, one byte each
    if scene.flow_forward is not None:
        save_array(folder / "flow_forward.npy", _stored(scene.flow_forward), np.float16)
    if scene.flow_backward is not None:
        save_array(folder / "flow_backward.npy", _stored(scene.flow_backward), np.float16)
    if scene.points_world is not None:
        colors = scene.points_color if scene.points_color is not None else np.zeros_like(scene.points_world, np.uint8)
        with atomic_path(folder / "points.npz") as tmp:
            np.savez_compressed(tmp, points_world=scene.points_world, points_color=colors)
    track = ObjectTrack.from_cameras(scene.meta.width, scene.meta.height, scene.cameras)
    write_json_atomic(folder / CAMERAS_JSON, track.to_dict())
    write_json_atomic(folder / SCENE_JSON, scene.meta.to_dict())
    return folder


def _stored(array: np.ndarray | UpsampledStack) -> np.ndarray:
    """What goes to disk: an ``UpsampledStack``'s working-resolution array, else the array itself."""
    return array.work if isinstance(array, UpsampledStack) else array


def _frames(folder: Path, name: str, kind: StackKind, meta: SceneMeta) -> np.ndarray | UpsampledStack:
    """A stored per-frame array, as a memmap when its frames are full size, else an ``UpsampledStack``."""
    array = load_array(folder / name)
    if kind == "mask" and array.dtype == np.uint8:
        array = array.view(bool)
    expected_ndim = 4 if kind == "flow" else 3
    if array.ndim != expected_ndim or not (0 < array.shape[1] <= meta.height and 0 < array.shape[2] <= meta.width):
        raise InputError(
            f"{folder / name}: frames of shape {array.shape[1:]} do not fit the scene's {meta.width}x{meta.height}; "
            "delete the folder to reconstruct it"
        )
    return upsampled_or_array(array, kind, (meta.width, meta.height))


def _optional_frames(folder: Path, name: str, meta: SceneMeta) -> np.ndarray | UpsampledStack | None:
    """A stored flow (``_frames``), or None when the scene has none."""
    return _frames(folder, name, "flow", meta) if (folder / name).is_file() else None


def scene_exists(folder: str | os.PathLike[str]) -> bool:
    """True when ``folder`` holds a complete saved Scene4D."""
    folder = Path(folder)
    return (folder / SCENE_JSON).is_file() and (folder / CAMERAS_JSON).is_file() and (folder / "depth.npy").is_file()


def load_scene(folder: str | os.PathLike[str]) -> Scene4D:
    """Load a Scene4D saved by ``save_scene``; arrays come back as read-only memmaps, or as ``UpsampledStack``s
    over them when they were stored at the working resolution."""
    folder = Path(folder)
    if not scene_exists(folder):
        raise InputError(f"{folder}: not a saved scene (needs scene.json, cameras.json, depth.npy)")
    meta = SceneMeta.from_dict(read_json(folder / SCENE_JSON))
    track = ObjectTrack.from_dict(read_json(folder / CAMERAS_JSON))
    points_world = points_color = None
    if (folder / "points.npz").is_file():
        try:
            with np.load(folder / "points.npz") as data:
                points_world, points_color = data["points_world"], data["points_color"]
        except (ValueError, OSError, KeyError) as err:
            raise InputError(f"{folder / 'points.npz'}: not a readable point file ({err})") from None
    scene = Scene4D(
        meta=meta,
        cameras=track.cameras,
        depth=_frames(folder, "depth.npy", "depth", meta),
        depth_confidence=_frames(folder, "depth_confidence.npy", "confidence", meta),
        dynamic_mask=_frames(folder, "dynamic_mask.npy", "mask", meta),
        flow_forward=_optional_frames(folder, "flow_forward.npy", meta),
        flow_backward=_optional_frames(folder, "flow_backward.npy", meta),
        points_world=points_world,
        points_color=points_color,
    )
    try:
        check_scene_shapes(scene)
    except ValueError as err:
        raise InputError(f"{folder}: inconsistent saved scene ({err}); delete the folder to reconstruct it") from None
    return scene
