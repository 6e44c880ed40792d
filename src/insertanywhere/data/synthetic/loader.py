"""Read a synthetic scene folder back (tests, benchmarks), and a per-machine render cache."""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from insertanywhere.conventions import Camera, ObjectTrack, Placement
from insertanywhere.errors import InputError
from insertanywhere.io.atomic import read_json
from insertanywhere.io.images import read_sequence, sequence_files
from insertanywhere.io.video import read_video

CACHE_DIR_NAME = "insertanywhere-synth-cache"


@dataclass
class SyntheticCase:
    """One rendered synthetic scene, loaded whole (scenes are short).

    Attributes:
        folder: the scene folder.
        background: (T, H, W, 3) uint8 RGB frames of background.mp4 (the scene without the object).
        masks: (T, H, W) bool visible object mask (coverage >= 0.5 after occlusion).
        alpha: (T, H, W) float32 [0, 1] visible object coverage.
        shadow: (T, H, W) float32 [0, 1] shadow matte, 1 - radiance_with / radiance_without.
        depth: (T, H, W) float32 z-depth in metres of the scene without the object, 0 = no hit.
        dynamic: (T, H, W) bool independently moving things (occluders, the moving support).
        cameras: one Camera per frame (K pixel-corner convention, cam_from_world in world metres).
        world_from_object: (4, 4) float64 object pose per frame (object frame: conventions.py).
        visible_fraction: per frame, share of the object's in-frame coverage that is visible.
        placement: the frame-0 placement (tight box of the object's silhouette).
        meta: meta.json.
        paths: named files of the folder ("background", "inserted", "object", "object_texture", ...).
    """

    folder: Path
    background: np.ndarray
    masks: np.ndarray
    alpha: np.ndarray
    shadow: np.ndarray
    depth: np.ndarray
    dynamic: np.ndarray
    cameras: list[Camera]
    world_from_object: list[np.ndarray]
    visible_fraction: list[float]
    placement: Placement
    meta: dict[str, Any]
    paths: dict[str, Path] = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        return len(self.cameras)

    def inserted(self) -> np.ndarray:
        """(T, H, W, 3) uint8 frames of gt/inserted.mp4 (decoded on demand)."""
        return read_video(self.paths["inserted"])[0]


def load_synthetic_case(folder: str | os.PathLike[str]) -> SyntheticCase:
    """Load every file of a scene folder written by ``insertanywhere synth``; InputError if incomplete."""
    folder = Path(folder)
    if not (folder / "meta.json").is_file():
        raise InputError(f"{folder}: not a synthetic scene folder (no meta.json); make one with insertanywhere synth")
    gt = folder / "gt"
    paths = {
        "background": folder / "background.mp4",
        "inserted": gt / "inserted.mp4",
        "object": folder / "object.png",
        "object_texture": folder / "object_texture.png",
        "placement": folder / "placement.json",
        "meta": folder / "meta.json",
        "preview": folder / "preview.png",
        "cameras": gt / "cameras.json",
        "object_poses": gt / "object_poses.json",
        "masks": gt / "masks",
        "alpha": gt / "alpha",
        "shadow": gt / "shadow",
        "depth": gt / "depth",
        "dynamic": gt / "dynamic",
    }
    from insertanywhere.data.synthetic.writer import read_depth_png

    meta = read_json(paths["meta"])
    background, _ = read_video(paths["background"])
    track = ObjectTrack.from_dict(read_json(paths["cameras"]))
    poses = read_json(paths["object_poses"])["frames"]
    case = SyntheticCase(
        folder=folder,
        background=background,
        masks=np.stack(read_sequence(paths["masks"], "mask")),
        alpha=np.stack(read_sequence(paths["alpha"], "gray")).astype(np.float32) / 255.0,
        shadow=np.stack(read_sequence(paths["shadow"], "gray")).astype(np.float32) / 255.0,
        depth=np.stack([read_depth_png(f) for f in sequence_files(paths["depth"])]),
        dynamic=np.stack(read_sequence(paths["dynamic"], "mask")),
        cameras=track.cameras,
        world_from_object=[np.array(p["world_from_object"], dtype=np.float64) for p in poses],
        visible_fraction=[float(p["visible_fraction"]) for p in poses],
        placement=Placement.from_dict(read_json(paths["placement"])),
        meta=meta,
        paths=paths,
    )
    n = int(meta["n_frames"])
    if not (len(case.background) == len(case.masks) == len(case.depth) == len(case.cameras) == n):
        raise InputError(f"{folder}: the scene is incomplete (expected {n} frames in every sequence); render it again")
    return case


def _source_fingerprint() -> str:
    """Hash of this package's source, so a cached scene is re-rendered whenever the renderer changes."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def cache_root() -> Path:
    """Folder of cached scenes: ``$INSERTANYWHERE_SYNTH_CACHE`` or ``<tmp>/insertanywhere-synth-cache``."""
    return Path(os.environ.get("INSERTANYWHERE_SYNTH_CACHE", Path(tempfile.gettempdir()) / CACHE_DIR_NAME))


def render_case_cached(
    family: str, seed: int = 0, small: bool = True, *, width: int | None = None, height: int | None = None,
    n_frames: int | None = None,
) -> Path:  # fmt: skip
    """Render a scene once per machine and return its folder (reused by later calls and other processes).

    The key is (family, seed, size, renderer source hash); a file lock serialises concurrent renders of
    the same key (pytest-xdist workers), and the render itself is atomic.
    """
    from insertanywhere.data.synthetic.writer import render_scene_to_folder, resolve_size

    w, h, t = resolve_size(family, small, n_frames, width, height)
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    folder = root / f"{family}-seed{seed}-{w}x{h}x{t}-{_source_fingerprint()}"
    if (folder / "meta.json").is_file():
        return folder
    with open(root / f".{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not (folder / "meta.json").is_file():
                render_scene_to_folder(folder, family=family, seed=seed, width=w, height=h, n_frames=t, overwrite=True)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return folder
