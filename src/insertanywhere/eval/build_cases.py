"""Build a benchmark CASES folder from the shared real clips and the synthetic families.

Real clips come from ``shared/data/placements.json`` (one case per suggested placement);
each case folder links (or, where links fail, copies) the video and an object image and
writes ``placement.json``. The 7-Scenes sequence also gets ``gt_track.json``: its GT
cameras and the known world point under the suggested box as the object's contact, so the
trajectory and contact-point error are scored on real footage. Synthetic cases are
rendered with ``insertanywhere.data.synthetic.render_scene_to_folder``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from insertanywhere.conventions import Camera, ObjectTrack, TrackFrame, invert_pose
from insertanywhere.errors import InputError
from insertanywhere.io.atomic import read_json, write_json_atomic

DEFAULT_FAMILIES = ("static", "pan", "orbit", "moving_occluder", "moving_support", "static_occluder")
SEVEN_SCENES = "sequences_gt/7scenes_redkitchen_table"
SEVEN_SCENES_CONTACT_WORLD = (-0.212, -0.072, 1.948)
"""World point (metres) under the suggested 7-Scenes box, from the sequence's README."""


def default_data_root() -> Path:
    """``<repo>/../shared/data`` (the read-only test data next to the repository)."""
    return Path(__file__).resolve().parents[3] / ".." / "shared" / "data"


def _link(source: Path, target: Path) -> None:
    if target.exists() or target.is_symlink():
        target.unlink()
    try:
        target.symlink_to(source.resolve())
    except OSError:
        shutil.copy2(source, target)


def seven_scenes_track(sequence: Path) -> ObjectTrack:
    """GT cameras of the 7-Scenes sequence with the contact point as the object pose (identity rotation).

    Reads ``poses_c2w.txt`` (camera-to-world, metres) and ``camera-intrinsics.txt``.
    """
    K = np.loadtxt(sequence / "camera-intrinsics.txt")
    rows = np.loadtxt(sequence / "poses_c2w.txt", comments="#")
    world_from_object = np.eye(4)
    world_from_object[:3, 3] = SEVEN_SCENES_CONTACT_WORLD
    frames = []
    for index, row in enumerate(rows):
        world_from_cam = np.eye(4)
        world_from_cam[:3, :] = row[1:13].reshape(3, 4)
        camera = Camera(K=K, cam_from_world=invert_pose(world_from_cam))
        frames.append(TrackFrame(index, camera, world_from_object.copy(), 1.0))
    return ObjectTrack(640, 480, frames, {"source": "7-Scenes redkitchen GT (poses_c2w.txt)"})


def build_real_cases(dest: Path, data_root: Path, objects: Sequence[Path] | None = None) -> list[Path]:
    """One case per placement in ``placements.json``; objects are assigned round-robin.

    Returns:
        The case folders written.
    """
    placements_path = data_root / "placements.json"
    placements = read_json(placements_path)
    objects = list(objects) if objects else sorted((data_root / "objects" / "images").glob("*.png"))
    if not objects:
        raise InputError(f"{data_root}/objects/images: no object images to insert")
    written: list[Path] = []
    for key, entries in placements.items():
        if key.startswith("_") or not isinstance(entries, list):
            continue
        source = data_root / key
        is_seven_scenes = key.startswith(SEVEN_SCENES)
        if is_seven_scenes:
            source = data_root / SEVEN_SCENES / "video_10fps.mp4"
        if not source.is_file():
            continue
        stem = "7scenes_redkitchen" if is_seven_scenes else Path(key).stem
        for entry in entries:
            case = dest / f"{stem}_{entry['name']}"
            case.mkdir(parents=True, exist_ok=True)
            _link(source, case / f"video{source.suffix}")
            object_path = objects[len(written) % len(objects)]
            _link(object_path, case / f"object{object_path.suffix}")
            write_json_atomic(case / "placement.json", {"frame": 0, "box": entry["box"], "yaw_deg": 0.0})
            if is_seven_scenes:
                write_json_atomic(case / "gt_track.json", seven_scenes_track(data_root / SEVEN_SCENES).to_dict())
            written.append(case)
    return written


def build_synthetic_cases(
    dest: Path, families: Sequence[str] = DEFAULT_FAMILIES, seed: int = 0, small: bool = True, **size: int
) -> list[Path]:
    """Render one synthetic case per family into ``dest/synth_<family>``.

    Raises:
        InputError: when the synthetic renderer is not available.
    """
    try:
        from insertanywhere.data.synthetic import render_scene_to_folder
    except ImportError as err:
        raise InputError(f"synthetic cases need insertanywhere.data.synthetic ({err})") from None
    written = []
    for family in families:
        folder = render_scene_to_folder(
            dest / f"synth_{family}", family=family, seed=seed, small=small, overwrite=True, **size
        )
        written.append(Path(folder))
    return written


def build_cases_folder(
    dest: str | os.PathLike[str],
    data_root: str | os.PathLike[str] | None = None,
    families: Sequence[str] = DEFAULT_FAMILIES,
    real: bool = True,
    seed: int = 0,
    small: bool = True,
    **size: int,
) -> dict[str, list[str]]:
    """Build a CASES folder for ``insertanywhere bench``: real clips + synthetic families.

    Args:
        dest: the folder to fill (created).
        data_root: the shared data folder (default ``<repo>/../shared/data``).
        families: synthetic families to render ("" or empty for none).
        real: include the real clips.
        seed, small, size: passed to the synthetic renderer.

    Returns:
        {"real": [case folders], "synthetic": [case folders]}; also written to ``dest/cases.json``.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    root = Path(data_root) if data_root is not None else default_data_root()
    built: dict[str, list[str]] = {"real": [], "synthetic": []}
    if real:
        if not (root / "placements.json").is_file():
            raise InputError(f"{root}: no placements.json; pass the shared data folder")
        built["real"] = [str(p) for p in build_real_cases(dest, root)]
    if families:
        built["synthetic"] = [str(p) for p in build_synthetic_cases(dest, families, seed, small, **size)]
    (dest / "cases.json").write_text(json.dumps(built, indent=1) + "\n")
    return built
