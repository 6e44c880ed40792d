"""``insertanywhere eval``: every metric of one output folder, written to ``OUT/eval.json``.

Stages (each streams the videos once; nothing holds a whole clip):

1. subject consistency to the reference (CLIP-I, DINO-I) on 10 evenly spaced frames;
2. VBench-style quality: subject (DINO) and background (CLIP) consistency, motion
   smoothness (DIS interpolation), imaging quality (sharpness-noise substitute);
3. background preservation against the input video (PSNR outside the object and shadow);
4. temporal warping error (flow on the input video when given);
5. with GT: mask J/F, PSNR/SSIM in the object and shadow regions, camera / object trajectory.

Learned metrics need model folders or hub ids (``clip``, ``dino``); without them they are
skipped with a note, so the command never downloads unless asked to.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from insertanywhere.errors import InputError, MissingDependencyError
from insertanywhere.eval import gt_metrics, vbench
from insertanywhere.eval.cases import GtCase, count_frames, iter_masks, iter_mattes, read_gt_case
from insertanywhere.eval.masks import score_mask_sequence
from insertanywhere.eval.subject import evenly_spaced_frames, subject_similarity
from insertanywhere.eval.trajectory import score_trajectory
from insertanywhere.geometry.boxes import mask_box
from insertanywhere.io.assets import load_object
from insertanywhere.io.atomic import read_json, write_json_atomic
from insertanywhere.io.images import frame_name, read_png
from insertanywhere.io.video import VideoReader
from insertanywhere.models.image_encoder import ImageEncoder
from insertanywhere.progress import Progress, null_progress

EVAL_FILE = "eval.json"


@dataclass
class EvalModels:
    """Loaded encoders (None = that family is skipped) and the notes on why one is missing."""

    clip: ImageEncoder | None = None
    dino: ImageEncoder | None = None
    notes: list[str] = field(default_factory=list)


def load_eval_models(
    clip: str | os.PathLike[str] | None, dino: str | os.PathLike[str] | None, learned: bool = True, device: str = "cpu"
) -> EvalModels:
    """Load the CLIP and DINO encoders that were asked for.

    A missing dependency or weight becomes a note (the learned metrics are skipped); a wrong
    folder path is a user error and raises InputError.
    """
    models = EvalModels()
    if not learned:
        models.notes.append("learned metrics skipped (--no-learned)")
        return models
    if clip is None:
        models.notes.append("CLIP metrics skipped: pass --clip openai/clip-vit-base-patch32 or a local folder")
    if dino is None:
        models.notes.append("DINO metrics skipped: pass --dino facebook/dinov2-base or a local folder")
    if clip is not None:
        from insertanywhere.models.clip import load_clip_encoder

        try:
            models.clip = load_clip_encoder(clip, device=device)
        except MissingDependencyError as err:
            models.notes.append(f"CLIP metrics skipped: {err}")
    if dino is not None:
        from insertanywhere.models.dino import load_dino_encoder

        try:
            models.dino = load_dino_encoder(dino, device=device)
        except MissingDependencyError as err:
            models.notes.append(f"DINO metrics skipped: {err}")
    return models


@dataclass
class EvalInputs:
    """What ``evaluate_output`` compares an output folder with (all optional).

    Attributes:
        gt: a synthetic case folder (or its gt/ folder).
        input_video: the object-free input video (defaults: the GT case's background.mp4,
            else report.json's input when that file exists).
        reference: the reference object (RGBA image; a mesh uses the output's object layer);
            defaults as above.
        gt_track: a GT ``track.json``-schema file (cameras, optionally object poses) for a real
            clip with known cameras (e.g. 7-Scenes); scores the trajectory without image GT.
    """

    gt: Path | None = None
    input_video: Path | None = None
    reference: Path | None = None
    gt_track: Path | None = None


def json_safe(value: Any) -> Any:
    """Make a result JSON-strict: inf -> "inf", nan -> None, numpy scalars -> Python."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
    return value


def _frames(video: Path) -> Iterator[np.ndarray]:
    yield from VideoReader(video)


def _frames_at(video: Path, indices: list[int]) -> dict[int, np.ndarray]:
    wanted = set(indices)
    picked: dict[int, np.ndarray] = {}
    for index, frame in enumerate(VideoReader(video)):
        if index in wanted:
            picked[index] = frame
            if len(picked) == len(wanted):
                break
    return picked


def _object_regions(masks: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    """(H, W) bool: the box of each mask grown by 25 % per side (empty when the object is hidden)."""
    for mask in masks:
        region = np.zeros_like(mask)
        box = mask_box(mask)
        if box is not None:
            x0, y0, x1, y1 = gt_metrics.grow_box(box, gt_metrics.OBJECT_BOX_GROWTH, mask.shape[1], mask.shape[0])
            region[y0:y1, x0:x1] = True
        yield region


def _reference_rgba(reference: Path | None, out: Path, n_frames: int, notes: list[str]) -> np.ndarray | None:
    """The RGBA reference: the object image, or (for a mesh) the output's most visible object layer."""
    if reference is not None:
        asset = load_object(reference)
        if asset.kind == "image":
            return asset.rgba
        notes.append(f"{reference.name} is a mesh: the reference is the output's rendered object layer")
    layers = out / "layers"
    if not layers.is_dir():
        return None
    best, best_area = None, 0
    for index in evenly_spaced_frames(n_frames, 10):
        path = layers / frame_name(index)
        if path.is_file():
            layer = read_png(path, "rgba")
            area = int(np.count_nonzero(layer[..., 3]))
            if area > best_area:
                best, best_area = layer, area
    return best


def _background_psnr(out: Path, video: Path, input_video: Path, n_frames: int) -> float | None:
    """Mean PSNR of the output against the input away from the predicted object and shadow."""
    shadows = iter_mattes(out / "shadow", n_frames) if (out / "shadow").is_dir() else itertools.repeat(None)
    values = []
    for output, input_frame, mask, shadow in zip(
        _frames(video), _frames(input_video), iter_masks(out / "masks", n_frames), shadows, strict=False
    ):
        frame = gt_metrics.GtFrame(output, input_frame, np.zeros_like(mask), None, input_frame, mask, shadow)
        values.append(gt_metrics.psnr(output, input_frame, gt_metrics.background_region(frame)))
    return gt_metrics.finite_mean(values)


def _check_output(out: Path) -> tuple[Path, int]:
    video = out / "inserted.mp4"
    if not video.is_file():
        raise InputError(f"{out}: no inserted.mp4; give the output folder of `insertanywhere insert`")
    if not (out / "masks").is_dir():
        raise InputError(f"{out}: no masks/ folder; give the output folder of `insertanywhere insert`")
    n_frames = VideoReader(video).info.n_frames
    n_masks = count_frames(out / "masks")
    if n_masks != n_frames:
        raise InputError(f"{out}: masks/ holds {n_masks} frames but inserted.mp4 has {n_frames}; rerun the insert")
    return video, n_frames


def _resolve_inputs(out: Path, inputs: EvalInputs, notes: list[str]) -> tuple[GtCase | None, Path | None, Path | None]:
    gt_case = read_gt_case(inputs.gt) if inputs.gt is not None else None
    recorded: dict[str, Any] = {}
    if (out / "report.json").is_file():
        try:
            recorded = read_json(out / "report.json").get("inputs", {})
        except InputError:
            notes.append("report.json is unreadable; inputs were not taken from it")
    input_video = inputs.input_video
    if input_video is None and gt_case is not None:
        input_video = gt_case.input_video
    if input_video is None and recorded.get("video") and Path(recorded["video"]).exists():
        input_video = Path(recorded["video"])
    reference = inputs.reference
    if reference is None and gt_case is not None:
        reference = gt_case.object_path
    if reference is None and recorded.get("object") and Path(recorded["object"]).is_file():
        reference = Path(recorded["object"])
    if input_video is not None and not Path(input_video).exists():
        raise InputError(f"{input_video}: no such input video")
    return gt_case, (Path(input_video) if input_video else None), (Path(reference) if reference else None)


def evaluate_output(
    out: str | os.PathLike[str],
    inputs: EvalInputs | None = None,
    models: EvalModels | None = None,
    progress: Progress = null_progress,
    write: bool = True,
) -> dict[str, Any]:
    """Compute every available metric of an output folder; write ``OUT/eval.json``.

    Args:
        out: an output folder of ``insertanywhere insert`` (inserted.mp4, masks/, ...).
        inputs: GT case, input video and reference (see EvalInputs).
        models: loaded encoders; None skips the learned metrics with a note.
        progress: progress callback.
        write: write ``eval.json`` into ``out``.

    Returns:
        The JSON-safe result dict (also written to ``eval.json``).
    """
    out = Path(out)
    inputs = inputs or EvalInputs()
    models = models or EvalModels(notes=["learned metrics skipped: no --clip / --dino model given"])
    notes = list(models.notes)
    video, n_frames = _check_output(out)
    gt_case, input_video, reference = _resolve_inputs(out, inputs, notes)
    info = VideoReader(video).info
    result: dict[str, Any] = {
        "out": str(out.resolve()),
        "clip": info.to_dict(),
        "inputs": {
            "gt": str(gt_case.folder) if gt_case else None,
            "input_video": str(input_video) if input_video else None,
            "reference": str(reference) if reference else None,
        },
    }
    if input_video is not None and VideoReader(input_video).info.n_frames != n_frames:
        notes.append(f"input video {input_video} has a different frame count; background and flow use the output")
        input_video = None
    stages = 6
    progress("eval", 0, stages)

    # 1. subject consistency to the reference (paper's CLIP-I / DINO-I)
    encoders = {name: enc for name, enc in (("clip_i", models.clip), ("dino_i", models.dino)) if enc is not None}
    reference_rgba = _reference_rgba(reference, out, n_frames, notes) if encoders else None
    if encoders and reference_rgba is None:
        notes.append("CLIP-I/DINO-I skipped: no reference object (pass --reference OBJ)")
    elif encoders:
        indices = evenly_spaced_frames(n_frames)
        frames = _frames_at(video, indices)
        triples = ((i, frames[i], read_png(out / "masks" / frame_name(i), "mask")) for i in indices if i in frames)
        result["subject"] = subject_similarity(reference_rgba, triples, encoders, indices).summary()
    progress("eval", 1, stages)

    # 2. VBench-style quality
    quality: dict[str, Any] = {}
    if models.dino is not None:
        quality["subject_consistency"] = vbench.subject_consistency(_frames(video), models.dino)
        quality["subject_consistency_model"] = models.dino.name
    if models.clip is not None:
        quality["background_consistency"] = vbench.background_consistency(_frames(video), models.clip)
        quality["background_consistency_model"] = models.clip.name
    quality["motion_smoothness_dis"] = vbench.motion_smoothness(_frames(video))
    quality.update(vbench.imaging_quality_substitute(_frames(video)))
    result["quality"] = quality
    progress("eval", 2, stages)

    # 3. background preserved against the input (no GT needed)
    if input_video is not None:
        result["background"] = {"psnr_background": _background_psnr(out, video, input_video, n_frames)}
    progress("eval", 3, stages)

    # 4. temporal warping error (flow on the input when present)
    videos = {"output": _frames(video)}
    if gt_case is not None:
        videos["gt"] = _frames(gt_case.gt_video)
    warping = gt_metrics.warping_errors(
        videos,
        flow_frames=_frames(input_video) if input_video is not None else None,
        regions=_object_regions(iter_masks(out / "masks", n_frames)),
    )
    result["temporal"] = {
        "flow_on": "input" if input_video is not None else "output",
        **warping["output"],
        **({"gt_video": warping["gt"]} if "gt" in warping else {}),
    }
    progress("eval", 4, stages)

    # 5. ground truth
    if gt_case is not None:
        result["gt"] = _evaluate_against_gt(out, video, n_frames, gt_case, input_video, notes)
    elif inputs.gt_track is not None:
        from insertanywhere.conventions import ObjectTrack

        gt_track = ObjectTrack.from_dict(read_json(inputs.gt_track))
        poses = [f.world_from_object for f in gt_track.frames]
        trajectory_result = _trajectory(out, gt_track.cameras, poses, notes)
        if trajectory_result is not None:
            result["gt"] = trajectory_result
    progress("eval", stages, stages)
    result["notes"] = notes
    safe = json_safe(result)
    if write:
        write_json_atomic(out / EVAL_FILE, safe)
    return safe


def _evaluate_against_gt(
    out: Path, video: Path, n_frames: int, gt_case: GtCase, input_video: Path | None, notes: list[str]
) -> dict[str, Any]:
    gt_frames = VideoReader(gt_case.gt_video).info.n_frames
    if gt_frames != n_frames:
        raise InputError(f"{gt_case.gt_video} has {gt_frames} frames but the output has {n_frames}; wrong --gt case?")
    masks = score_mask_sequence(
        iter_masks(out / "masks", n_frames),
        iter_masks(gt_case.masks_dir, n_frames),
        gt_case.partly_occluded_frames,
        gt_case.fully_occluded_frames,
    )
    lpips_distance = None
    try:
        lpips_distance = gt_metrics.load_lpips()
    except MissingDependencyError as err:
        notes.append(str(err))
    image_means, image_per_frame = gt_metrics.score_gt_sequence(
        gt_metrics.iter_gt_frames(
            _frames(video),
            _frames(gt_case.gt_video),
            iter_masks(gt_case.masks_dir, n_frames),
            gt_shadows=iter_mattes(gt_case.shadow_dir, n_frames) if gt_case.shadow_dir else None,
            input_frames=_frames(input_video) if input_video is not None else None,
            predicted_masks=iter_masks(out / "masks", n_frames),
            predicted_shadows=iter_mattes(out / "shadow", n_frames) if (out / "shadow").is_dir() else None,
        ),
        lpips_distance,
    )
    gt_result: dict[str, Any] = {
        "masks": masks.summary(),
        "image": image_means,
        "per_frame": {
            "J": masks.j_per_frame.tolist(),
            "F": masks.f_per_frame.tolist(),
            **vars(image_per_frame),
        },
        "partly_occluded_frames": gt_case.partly_occluded_frames,
        "fully_occluded_frames": gt_case.fully_occluded_frames,
    }
    if gt_case.cameras is not None and gt_case.world_from_object is not None:
        trajectory_result = _trajectory(out, gt_case.cameras, gt_case.world_from_object, notes)
        if trajectory_result is not None:
            gt_result["per_frame"].update(trajectory_result.pop("per_frame"))
            gt_result.update(trajectory_result)
    else:
        notes.append("trajectory skipped: the GT case has no gt/cameras.json + gt/object_poses.json")
    return gt_result


def _trajectory(
    out: Path, gt_cameras: list, gt_poses: list[np.ndarray | None], notes: list[str]
) -> dict[str, Any] | None:
    """Trajectory scores of ``out/track.json`` against GT cameras and object poses, or None with a note."""
    from insertanywhere.conventions import ObjectTrack

    track_path = out / "track.json"
    if not track_path.is_file():
        notes.append("trajectory skipped: the output has no track.json")
        return None
    try:
        trajectory = score_trajectory(ObjectTrack.from_dict(read_json(track_path)), gt_cameras, gt_poses)
    except (ValueError, KeyError) as err:
        notes.append(f"trajectory skipped: {err}")
        return None
    return {
        "trajectory": trajectory.summary(),
        "per_frame": {
            "rotation_error_deg": trajectory.rotation_error_deg.tolist(),
            "contact_px": trajectory.contact_px,
        },
        "trajectory_centres": {
            "gt": trajectory.gt_centres.tolist(),
            "estimated_aligned": None
            if trajectory.estimated_centres_aligned is None
            else trajectory.estimated_centres_aligned.tolist(),
        },
    }


__all__ = ["EvalInputs", "EvalModels", "evaluate_output", "json_safe", "load_eval_models"]
