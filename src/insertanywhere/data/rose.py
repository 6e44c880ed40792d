"""ROSE++-style insertion dataset from object-removal triplets (InsertAnywhere, arXiv 2512.17504, Sec. 3.3).

A removal triplet is (video with the object, the same video without it, the object's mask). Read backwards it
is an insertion sample: source = object-free video, target = video with the object, mask = object mask. The
target also holds the object's shadows and reflections, which the extended optics mask
(:mod:`insertanywhere.data.dataset_optics`) marks, and a reference image is chosen among object cut-outs and
other views (:mod:`insertanywhere.data.dataset_reference`).

Two source layouts are read:

* ROSE (Kunbyte/ROSE-Dataset, Unreal renders): environment folders ``EnvN/`` holding ``EnvN_Edited/``,
  ``EnvN_Masked/`` and ``EnvN_Unedited/`` (a bare ``Edited/``... also works), with one video (or image folder)
  per clip, matched by file stem. ``Unedited`` is the rendered clip with the object, ``Edited`` the same clip
  with it removed (ROSE's removal target), ``Masked`` the object-mask video.
* The project's synthetic scenes (``insertanywhere synth``): ``background.mp4`` (object-free),
  ``gt/inserted.mp4``, ``gt/masks/``, ``gt/shadow/``, ``object.png``, ``object_texture.png``, ``meta.json``.

Clips are streamed frame by frame; per-sample outputs go to a temporary folder renamed into place, so a crash
leaves no half sample and a rerun skips finished ones. A triplet that cannot be used is listed in
``broken.jsonl`` with the reason, and the build goes on.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from insertanywhere.data.dataset_manifest import BROKEN_NAME, MANIFEST_NAME, DatasetSample, sample_to_json
from insertanywhere.data.dataset_optics import OpticsMaskConfig, extended_optics_mask_frame
from insertanywhere.data.dataset_reference import (
    ImageEmbedder,
    ObjectCrop,
    ReferenceCandidate,
    ReferenceGenerator,
    crop_object,
    load_reference_file,
    select_reference,
)
from insertanywhere.errors import InputError, UserError
from insertanywhere.io.atomic import atomic_dir, prepare_output_dir, write_json_atomic, write_text_atomic
from insertanywhere.io.images import write_png, write_sequence_frame
from insertanywhere.io.video import IMAGE_SUFFIXES, VideoReader, VideoWriter
from insertanywhere.progress import Progress, null_progress

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v")


@dataclass
class RemovalTriplet:
    """Paths of one removal triplet.

    Attributes:
        id: unique, file-name safe sample id.
        origin: "rose" or "synthetic".
        with_object: video file or image folder, the clip with the object.
        without_object: video file or image folder, the object-free clip.
        mask: mask video file or folder of mask images (object > 127).
        renders: images of the object from other angles (reference candidates).
        prompt: text prompt ("" when none).
    """

    id: str
    origin: str
    with_object: Path
    without_object: Path
    mask: Path
    renders: list[Path] = field(default_factory=list)
    prompt: str = ""


def _safe_id(*parts: str) -> str:
    return "__".join(re.sub(r"[^A-Za-z0-9._-]+", "_", p).strip("_") for p in parts if p)


def _clips_in(folder: Path) -> dict[str, Path]:
    """Clip stem -> path: video files and sub-folders of images."""
    clips = {}
    for entry in sorted(folder.iterdir()):
        if entry.is_file() and entry.suffix.lower() in VIDEO_SUFFIXES:
            clips[entry.stem] = entry
        elif entry.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in entry.iterdir()):
            clips[entry.name] = entry
    return clips


def _rose_role(folder_name: str) -> str | None:
    lowered = folder_name.lower()
    for role in ("unedited", "edited", "masked"):  # "unedited" first: it ends with "edited" too
        if lowered == role or lowered.endswith("_" + role):
            return role
    return None


def find_rose_triplets(root: str | os.PathLike[str]) -> tuple[list[RemovalTriplet], list[dict]]:
    """Triplets of every ROSE environment folder under ``root`` (``root`` itself may be one).

    Returns:
        (triplets, broken): broken lists clips present in only some of the three folders, with the reason.
    """
    root = Path(root)
    triplets, broken = [], []
    env_folders = [root, *sorted(p for p in root.rglob("*") if p.is_dir())]
    for env in env_folders:
        roles = {}
        for child in env.iterdir():
            role = _rose_role(child.name) if child.is_dir() else None
            if role:
                roles[role] = child
        if set(roles) != {"unedited", "edited", "masked"}:
            continue
        clips = {role: _clips_in(folder) for role, folder in roles.items()}
        stems = set().union(*clips.values())
        for stem in sorted(stems):
            sample_id = _safe_id(env.name, stem)
            missing = [role for role in ("unedited", "edited", "masked") if stem not in clips[role]]
            if missing:
                found = {role: str(clips[role][stem]) for role in clips if stem in clips[role]}
                broken.append({"id": sample_id, "inputs": found, "reason": f"missing in {', '.join(missing)}"})
                continue
            triplets.append(
                RemovalTriplet(
                    sample_id,
                    "rose",
                    with_object=clips["unedited"][stem],
                    without_object=clips["edited"][stem],
                    mask=clips["masked"][stem],
                )
            )
    return triplets, broken


def _is_synthetic_case(folder: Path) -> bool:
    return (folder / "background.mp4").is_file() and (folder / "gt" / "inserted.mp4").is_file()


def find_synthetic_triplets(root: str | os.PathLike[str]) -> list[RemovalTriplet]:
    """Triplets of the synthetic scenes at or under ``root`` (folders with background.mp4 and gt/inserted.mp4)."""
    root = Path(root)
    folders = [root] if _is_synthetic_case(root) else sorted(p for p in root.rglob("*") if _is_synthetic_case(p))
    triplets = []
    for folder in folders:
        renders = [folder / name for name in ("object.png", "object_texture.png") if (folder / name).is_file()]
        prompt = ""
        meta_path = folder / "meta.json"
        if meta_path.is_file():
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
                prompt = str(meta.get("prompt", "")) if isinstance(meta, dict) else ""
            except json.JSONDecodeError:
                log.warning("%s: unreadable meta.json, no prompt", folder)
        relative = folder.relative_to(root).as_posix() if folder != root else folder.name
        triplets.append(
            RemovalTriplet(
                _safe_id("synthetic", relative.replace("/", "_")),
                "synthetic",
                with_object=folder / "gt" / "inserted.mp4",
                without_object=folder / "background.mp4",
                mask=folder / "gt" / "masks",
                renders=renders,
                prompt=prompt,
            )
        )
    return triplets


def find_triplets(src: str | os.PathLike[str]) -> tuple[list[RemovalTriplet], list[dict]]:
    """Every ROSE and synthetic triplet under ``src``; (triplets, broken)."""
    src = Path(src)
    if not src.is_dir():
        raise InputError(f"{src}: not a folder; pass a ROSE root/environment folder or synthetic scenes")
    triplets, broken = find_rose_triplets(src)
    triplets += find_synthetic_triplets(src)
    if not triplets and not broken:
        raise InputError(
            f"{src}: no removal triplets found (ROSE: EnvN/EnvN_{{Edited,Masked,Unedited}}/; "
            "synthetic: background.mp4 + gt/inserted.mp4 + gt/masks/)"
        )
    return triplets, broken


# ---------------------------------------------------------------------------------------------------------------
# Building one sample


@dataclass
class DatasetBuildConfig:
    """Settings of ``dataset build``.

    Attributes:
        optics: extended-mask thresholds.
        max_frames: keep at most this many frames per clip (None = all).
        n_crops: object crops taken from the target (reference queries and candidates).
        min_object_px: a frame's object counts as visible with at least this many mask pixels.
        copy_similarity: reference candidates this similar to a raw crop are rejected as copy-paste.
        crop_candidates: the masked object crops compete as references too (else only renders/generated images).
        generator_images: images requested from each generator hook.
        seed: passed to generator hooks.
    """

    optics: OpticsMaskConfig = field(default_factory=OpticsMaskConfig)
    max_frames: int | None = None
    n_crops: int = 4
    min_object_px: int = 16
    copy_similarity: float = 0.98
    crop_candidates: bool = True
    generator_images: int = 2
    seed: int = 0


def is_binary_mask_frame(frame: np.ndarray, tolerance: int = 40, min_fraction: float = 0.97) -> bool:
    """True when an (H, W, 3) uint8 frame is a black/white mask (codec noise allowed): grey, near 0 or 255."""
    frame = frame.astype(np.int16)
    grey = (frame.max(axis=2) - frame.min(axis=2)) <= tolerance
    level = frame.mean(axis=2)
    extreme = (level <= tolerance) | (level >= 255 - tolerance)
    return bool((grey & extreme).mean() >= min_fraction)


def mask_from_frame(mask_frame: np.ndarray, with_object_frame: np.ndarray, hole_threshold: float = 40.0) -> np.ndarray:
    """The object mask (H, W) bool from one frame of a mask clip.

    A black/white mask (the usual case) is thresholded at 127. Otherwise the clip is taken to be a *masked video*
    (the with-object frame with the object's region filled by a constant), as some removal datasets ship it: the
    object is where it differs from the with-object frame by more than ``hole_threshold`` (max over RGB), opened
    with a 3x3 square to drop codec speckle. ROSE's ``Masked`` files were not inspected (see docs/training.md),
    hence both readings.

    Args:
        mask_frame: (H, W, 3) uint8, a frame of the mask clip.
        with_object_frame: (H, W, 3) uint8, the same frame of the with-object clip.
    """
    import cv2

    if is_binary_mask_frame(mask_frame):
        return mask_frame.max(axis=2) > 127
    hole = np.abs(mask_frame.astype(np.int16) - with_object_frame.astype(np.int16)).max(axis=2) > hole_threshold
    return cv2.morphologyEx(hole.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)).astype(bool)


class BrokenSampleError(Exception):
    """A triplet that cannot become a sample; the message says why."""


def _check_sizes(triplet: RemovalTriplet) -> tuple[VideoReader, VideoReader, VideoReader, int]:
    readers = [VideoReader(triplet.with_object), VideoReader(triplet.without_object), VideoReader(triplet.mask)]
    sizes = {(r.info.width, r.info.height) for r in readers}
    if len(sizes) != 1:
        raise BrokenSampleError("the three clips differ in size: " + ", ".join(f"{w}x{h}" for w, h in sorted(sizes)))
    counts = [r.info.n_frames for r in readers]
    if len(set(counts)) != 1:
        raise BrokenSampleError(f"the three clips differ in frame count: {counts} (with, without, mask)")
    return readers[0], readers[1], readers[2], counts[0]


def build_sample(
    triplet: RemovalTriplet,
    sample_dir: Path,
    config: DatasetBuildConfig,
    embedder: ImageEmbedder,
    generators: list[ReferenceGenerator],
) -> DatasetSample:
    """Turn one triplet into a sample folder (written into ``sample_dir``, which must exist and be empty).

    Raises:
        BrokenSampleError: sizes or frame counts disagree, the object is never visible, no usable reference.
    """
    with_reader, without_reader, _, n_frames = _check_sizes(triplet)
    if config.max_frames is not None:
        n_frames = min(n_frames, config.max_frames)
    info = with_reader.info
    crop_at = set(np.linspace(0, n_frames - 1, min(config.n_crops * 4, n_frames)).round().astype(int).tolist())
    crops: list[ObjectCrop] = []
    object_px = extra_px = 0
    visible_frames = 0
    frames = zip(with_reader, without_reader, VideoReader(triplet.mask), strict=True)
    with (
        VideoWriter(sample_dir / "source.mp4", info.width, info.height, info.fps) as source_writer,
        VideoWriter(sample_dir / "target.mp4", info.width, info.height, info.fps) as target_writer,
    ):
        for index, (target, source, mask_frame) in enumerate(frames):
            if index >= n_frames:
                break
            object_mask = mask_from_frame(mask_frame, target)
            extended = extended_optics_mask_frame(source, target, object_mask, config.optics)
            source_writer.write(source)
            target_writer.write(target)
            write_sequence_frame(sample_dir / "masks", index, object_mask)
            write_sequence_frame(sample_dir / "optics", index, extended)
            area = int(object_mask.sum())
            object_px += area
            extra_px += int(extended.sum()) - area
            if area >= config.min_object_px:
                visible_frames += 1
                if index in crop_at:
                    crops.append(crop_object(target, object_mask, index))
    if visible_frames == 0:
        raise BrokenSampleError(f"the object mask is empty (under {config.min_object_px} px) in every frame")
    # Spread the kept crops over the clip: the candidate frames were sampled 4x denser than needed.
    keep = np.unique(np.linspace(0, len(crops) - 1, min(config.n_crops, len(crops))).round().astype(int))
    crops = [crops[i] for i in keep] if crops else crops
    if not crops:
        raise BrokenSampleError("the object is too small to crop in every sampled frame")

    candidates = [load_reference_file(path) for path in triplet.renders]
    for generator in generators:
        for number, image in enumerate(generator.generate(crops, config.generator_images, config.seed)):
            candidates.append(ReferenceCandidate("generated", image, f"{generator.name} #{number}"))
    choice = select_reference(
        crops, candidates, embedder, copy_similarity=config.copy_similarity, include_crops=config.crop_candidates
    )
    if choice.candidate is None:
        reasons = "; ".join(f"{v.origin}: {v.rejected}" for v in choice.verdicts)
        raise BrokenSampleError(f"no usable reference image ({reasons or 'no candidates'})")
    reference = choice.candidate.image
    if reference.shape[2] == 3:
        reference = np.dstack([reference, np.full(reference.shape[:2], 255, np.uint8)])
    write_png(sample_dir / "reference.png", reference)

    frame_px = n_frames * info.width * info.height
    sample = DatasetSample(
        id=triplet.id,
        origin=triplet.origin,
        source=f"samples/{triplet.id}/source.mp4",
        target=f"samples/{triplet.id}/target.mp4",
        mask=f"samples/{triplet.id}/masks",
        optics_mask=f"samples/{triplet.id}/optics",
        reference=f"samples/{triplet.id}/reference.png",
        reference_kind=choice.candidate.kind,
        reference_origin=choice.candidate.origin,
        reference_score=round(float(choice.score), 5),
        embedder=choice.embedder,
        n_frames=n_frames,
        width=info.width,
        height=info.height,
        fps=float(info.fps),
        prompt=triplet.prompt,
        object_fraction=round(object_px / frame_px, 6),
        optics_extra_fraction=round(extra_px / frame_px, 6),
    )
    record = asdict(sample) | {
        "inputs": {k: str(getattr(triplet, k)) for k in ("with_object", "without_object", "mask")},
        "reference_candidates": [asdict(v) for v in choice.verdicts],
    }
    write_json_atomic(sample_dir / "sample.json", record)
    return sample


# ---------------------------------------------------------------------------------------------------------------
# The whole dataset


@dataclass
class BuildReport:
    """What ``build_dataset`` did: samples written (or reused), broken triplets with reasons."""

    samples: list[DatasetSample]
    broken: list[dict]
    reused: int
    seconds: float


def build_dataset(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    embedder: ImageEmbedder,
    config: DatasetBuildConfig | None = None,
    generators: list[ReferenceGenerator] | None = None,
    overwrite: bool = False,
    progress: Progress = null_progress,
) -> BuildReport:
    """Build the insertion dataset in ``out`` from every removal triplet under ``src``.

    Finished samples (``samples/<id>/sample.json`` present) are reused, so an interrupted build resumes.
    Writes ``manifest.jsonl``, ``broken.jsonl`` and ``report.json`` (see :mod:`dataset_manifest`).
    """
    config = config or DatasetBuildConfig()
    generators = generators or []
    start = time.perf_counter()
    out = prepare_output_dir(out, overwrite=overwrite, inputs=(Path(src),))
    triplets, broken = find_triplets(src)
    samples: list[DatasetSample] = []
    reused = 0
    for done, triplet in enumerate(triplets):
        progress("dataset", done, len(triplets))
        sample_dir = out / "samples" / triplet.id
        existing = sample_dir / "sample.json"
        if existing.is_file():
            record = json.loads(existing.read_text(encoding="utf-8"))
            names = DatasetSample.__dataclass_fields__
            samples.append(DatasetSample(**{k: v for k, v in record.items() if k in names}))
            reused += 1
            continue
        inputs = {k: str(getattr(triplet, k)) for k in ("with_object", "without_object", "mask")}
        try:
            with atomic_dir(sample_dir) as tmp:
                sample = build_sample(triplet, tmp, config, embedder, generators)
            samples.append(sample)
        except BrokenSampleError as err:
            broken.append({"id": triplet.id, "inputs": inputs, "reason": str(err)})
        except (UserError, OSError, ValueError) as err:  # unreadable or truncated input files
            broken.append({"id": triplet.id, "inputs": inputs, "reason": f"{err.__class__.__name__}: {err}"})
        if broken and broken[-1]["id"] == triplet.id:
            log.warning("skipping %s: %s", triplet.id, broken[-1]["reason"])
    progress("dataset", len(triplets), len(triplets))
    write_text_atomic(out / MANIFEST_NAME, "".join(sample_to_json(s) + "\n" for s in samples))
    write_text_atomic(out / BROKEN_NAME, "".join(json.dumps(b, sort_keys=True) + "\n" for b in broken))
    seconds = time.perf_counter() - start
    write_json_atomic(
        out / "report.json",
        {
            "source": str(Path(src).resolve()),
            "n_samples": len(samples),
            "n_broken": len(broken),
            "n_reused": reused,
            "embedder": embedder.name,
            "generators": [g.name for g in generators],
            "config": asdict(config),
            "seconds": round(seconds, 3),
        },
    )
    return BuildReport(samples, broken, reused, seconds)
