"""Benchmark cases on disk: synthetic GT cases (``insertanywhere synth``) and real clip cases.

A synthetic case folder holds ``background.mp4``, ``object.png``, ``placement.json``,
``meta.json`` and ``gt/`` (``inserted.mp4``, ``masks/``, ``shadow/``, ``cameras.json``,
``object_poses.json``). A real clip case holds a video (``video.mp4`` or any video file),
``object.png`` or ``object.glb`` (any supported object suffix) and ``placement.json``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from insertanywhere.conventions import Camera, ObjectTrack, Placement, PlacementError
from insertanywhere.errors import InputError
from insertanywhere.io.assets import IMAGE_SUFFIXES as OBJECT_IMAGE_SUFFIXES
from insertanywhere.io.assets import MESH_SUFFIXES
from insertanywhere.io.atomic import read_json
from insertanywhere.io.images import frame_name, read_png

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v")
PARTLY_OCCLUDED_BELOW = 0.98
FULLY_OCCLUDED_BELOW = 0.01


@dataclass
class GtCase:
    """Ground truth of a synthetic case.

    Attributes:
        folder: the case folder (holding ``gt/``).
        gt_video: ``gt/inserted.mp4``, the object truly in the scene.
        masks_dir: ``gt/masks`` (visible object masks, 0/255).
        shadow_dir: ``gt/shadow`` (shadow mattes 0..255) or None.
        cameras: GT cameras per frame or None.
        world_from_object: GT (4, 4) object poses per frame (None entries where unknown), or None.
        partly_occluded_frames, fully_occluded_frames: frame indices from meta.json (or object_poses.json).
        meta: meta.json as read ({} when absent).
    """

    folder: Path
    gt_video: Path
    masks_dir: Path
    shadow_dir: Path | None
    cameras: list[Camera] | None
    world_from_object: list[np.ndarray | None] | None
    partly_occluded_frames: list[int] = field(default_factory=list)
    fully_occluded_frames: list[int] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def input_video(self) -> Path | None:
        """The object-free input video of the case (``background.mp4``) when present."""
        path = self.folder / "background.mp4"
        return path if path.is_file() else None

    @property
    def object_path(self) -> Path | None:
        path = self.folder / "object.png"
        return path if path.is_file() else None


def read_gt_case(path: str | os.PathLike[str]) -> GtCase:
    """Read a synthetic case's GT; ``path`` is the case folder or its ``gt/`` folder.

    Raises:
        InputError: when the folder has no ``gt/inserted.mp4`` and ``gt/masks``.
    """
    path = Path(path)
    folder = path.parent if path.name == "gt" and (path / "masks").is_dir() else path
    gt = folder / "gt"
    if not (gt / "inserted.mp4").is_file() or not (gt / "masks").is_dir():
        raise InputError(
            f"{path}: not a GT case (needs gt/inserted.mp4 and gt/masks/); make one with `insertanywhere synth`"
        )
    meta = read_json(folder / "meta.json") if (folder / "meta.json").is_file() else {}
    cameras = None
    if (gt / "cameras.json").is_file():
        cameras = ObjectTrack.from_dict(read_json(gt / "cameras.json")).cameras
    poses: list[np.ndarray | None] | None = None
    visible: list[float] = []
    if (gt / "object_poses.json").is_file():
        frames = read_json(gt / "object_poses.json")["frames"]
        frames = sorted(frames, key=lambda f: int(f["index"]))
        poses = [None if f.get("world_from_object") is None else np.asarray(f["world_from_object"]) for f in frames]
        visible = [float(f.get("visible_fraction", 1.0)) for f in frames]
    partly = meta.get("partly_occluded_frames")
    fully = meta.get("fully_occluded_frames")
    if fully is None:
        fully = [i for i, v in enumerate(visible) if v < FULLY_OCCLUDED_BELOW]
    if partly is None:
        partly = [i for i, v in enumerate(visible) if FULLY_OCCLUDED_BELOW <= v < PARTLY_OCCLUDED_BELOW]
    fully_set = {int(i) for i in fully}
    return GtCase(
        folder=folder,
        gt_video=gt / "inserted.mp4",
        masks_dir=gt / "masks",
        shadow_dir=gt / "shadow" if (gt / "shadow").is_dir() else None,
        cameras=cameras,
        world_from_object=poses,
        partly_occluded_frames=sorted(int(i) for i in partly if int(i) not in fully_set),
        fully_occluded_frames=sorted(fully_set),
        meta=meta,
    )


@dataclass
class BenchCase:
    """One case of a benchmark folder.

    Attributes:
        name: the case folder's name.
        folder: the case folder.
        video: the input video.
        object_path: the object (RGBA image or mesh).
        placement: the placement.
        gt: the GT when the case is synthetic, else None.
        gt_track: ``gt_track.json`` (track.json schema: GT cameras and, if known, the object's
            contact pose) of a real clip with known cameras, else None.
    """

    name: str
    folder: Path
    video: Path
    object_path: Path
    placement: Placement
    gt: GtCase | None = None
    gt_track: Path | None = None

    @property
    def kind(self) -> str:
        """ "synthetic" (full GT), "real+cameras" (GT cameras only) or "real"."""
        if self.gt is not None:
            return "synthetic"
        return "real+cameras" if self.gt_track is not None else "real"


def _find_one(folder: Path, stem: str | None, suffixes: tuple[str, ...]) -> Path | None:
    candidates = sorted(
        p
        for p in folder.iterdir()
        if p.is_file()
        and p.suffix.lower() in suffixes
        and (stem is None or p.stem == stem)
        and not p.name.startswith(".")
    )
    return candidates[0] if candidates else None


def read_case(folder: str | os.PathLike[str]) -> BenchCase:
    """Read a synthetic or real clip case folder.

    Raises:
        InputError: naming what is missing (video, object, placement) and how to add it.
    """
    folder = Path(folder)
    placement_path = folder / "placement.json"
    if not placement_path.is_file():
        raise InputError(f'{folder}: no placement.json; write one like {{"frame": 0, "box": [x0, y0, x1, y1]}}')
    try:
        placement = Placement.from_dict(read_json(placement_path))
    except PlacementError as err:
        raise InputError(f"{placement_path}: {err}") from None
    is_synthetic = (folder / "gt" / "inserted.mp4").is_file()
    video = folder / "background.mp4" if is_synthetic else None
    if video is None or not video.is_file():
        video = _find_one(folder, "video", VIDEO_SUFFIXES) or _find_one(folder, None, VIDEO_SUFFIXES)
    if video is None:
        raise InputError(f"{folder}: no video; add video.mp4 (or any {'/'.join(VIDEO_SUFFIXES)} file)")
    object_path = _find_one(folder, "object", OBJECT_IMAGE_SUFFIXES + MESH_SUFFIXES)
    if object_path is None:
        raise InputError(f"{folder}: no object; add object.png (RGBA) or object.glb")
    return BenchCase(
        name=folder.name,
        folder=folder,
        video=video,
        object_path=object_path,
        placement=placement,
        gt=read_gt_case(folder) if is_synthetic else None,
        gt_track=folder / "gt_track.json" if (folder / "gt_track.json").is_file() else None,
    )


def discover_cases(cases_dir: str | os.PathLike[str]) -> list[BenchCase]:
    """Every case subfolder of ``cases_dir`` (those with a placement.json), sorted by name.

    Raises:
        InputError: when the folder is missing or holds no case.
    """
    cases_dir = Path(cases_dir)
    if not cases_dir.is_dir():
        raise InputError(f"{cases_dir}: no such cases folder")
    cases = [read_case(p) for p in sorted(cases_dir.iterdir()) if p.is_dir() and (p / "placement.json").is_file()]
    if not cases:
        raise InputError(
            f"{cases_dir}: no case subfolders (each needs placement.json, a video and an object); "
            "build one with insertanywhere.eval.build_cases.build_cases_folder"
        )
    return cases


# ----------------------------------------------------------------------------- frame streams


def iter_masks(folder: Path, n_frames: int) -> Iterator[np.ndarray]:
    """(H, W) bool masks ``folder/NNNNN.png`` for frames 0..n_frames-1.

    Raises:
        InputError: when a frame's file is missing.
    """
    for index in range(n_frames):
        path = folder / frame_name(index)
        if not path.is_file():
            raise InputError(f"{path}: missing mask frame {index} (expected {n_frames} frames)")
        yield read_png(path, "mask")


def iter_mattes(folder: Path, n_frames: int) -> Iterator[np.ndarray]:
    """(H, W) float32 mattes in [0, 1] from 8-bit PNGs ``folder/NNNNN.png``."""
    for index in range(n_frames):
        path = folder / frame_name(index)
        if not path.is_file():
            raise InputError(f"{path}: missing matte frame {index} (expected {n_frames} frames)")
        yield read_png(path, "gray").astype(np.float32) / 255.0


def count_frames(folder: Path) -> int:
    """Number of ``NNNNN.png`` files in a sequence folder."""
    return len(list(folder.glob("[0-9][0-9][0-9][0-9][0-9].png")))
