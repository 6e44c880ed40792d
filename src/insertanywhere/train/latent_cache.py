"""Encode each dataset sample once (VAE + text encoder) and keep the tensors the trainer needs on disk.

The conditioning is built with WanVACEPipeline's own ``preprocess_conditions`` / ``prepare_video_latents`` /
``prepare_masks``, so training sees exactly what inference feeds the transformer:

    control = [ VAE(video * (1 - m)) ; VAE(video * m) ; pixel-unshuffled m ]    (16 + 16 + 64 channels)

with the reference image's latent prepended as frame 0 (and a zero mask there). ``video`` and ``m`` mirror what
``synth.vace`` gives the model at inference (:class:`ConditioningConfig`): the object-free source whose masked
region holds a hint (the object pasted without its shadow, like the compositing backend's hint) or VACE's grey,
the mask optionally grown by a band, and frame 0 given whole with a black mask (the inpainted anchor). Two controls
are cached: ``m`` = the object mask (what inference gets) and ``m`` = the extended optics mask (only for the
alignment pass).
The clean latent ``x0`` is [reference latent ; VAE(target)], normalised with the VAE's latents_mean/std like the
pipeline does.

One ``<cache>/<sample id>.safetensors`` per sample, with the geometry and model key in its metadata; a file whose
metadata does not match is re-encoded.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from insertanywhere.data.dataset_manifest import DatasetSample
from insertanywhere.errors import InputError
from insertanywhere.io.atomic import atomic_path
from insertanywhere.io.images import read_png, read_sequence
from insertanywhere.io.video import VideoReader
from insertanywhere.progress import Progress, null_progress
from insertanywhere.synth.vace_region import reference_on_white


@dataclass(frozen=True)
class ClipGeometry:
    """Training clip size: ``num_frames`` = 4k + 1; ``height`` and ``width`` multiples of 16 (VAE 8 x patch 2)."""

    num_frames: int = 81
    height: int = 480
    width: int = 832

    def validate(self) -> None:
        if self.num_frames < 1 or (self.num_frames - 1) % 4:
            raise InputError(f"--frames {self.num_frames}: Wan needs 4k+1 frames (e.g. 9, 49, 81)")
        if self.height % 16 or self.width % 16 or self.height < 16 or self.width < 16:
            raise InputError(f"--height/--width {self.height}x{self.width}: both must be positive multiples of 16")


FILL_MODES = ("paste", "gray", "source")
MASK_GRAY = 127  # VACE's "no content" value: 0 in the model's [-1, 1] range (same as synth.vace)


@dataclass(frozen=True)
class ConditioningConfig:
    """How a training sample's VACE conditioning is made (match it to the inference settings of ``synth.vace``).

    Attributes:
        fill: what the video shows inside the mask: "paste" = the target's object pixels on the object mask and
            the source elsewhere (a shadowless composite: inference's ``control_hint=True``), "gray" = VACE's
            no-content grey (inference's ``control_hint=False``), "source" = the object-free source untouched.
        mask_band_px: grow the mask by this many pixels (at training resolution), like inference's shadow band.
        first_frame_known: frame 0 is given whole (the target frame, mask black), as the anchor is at inference.
    """

    fill: str = "paste"
    mask_band_px: int = 0
    first_frame_known: bool = True

    def validate(self) -> None:
        if self.fill not in FILL_MODES:
            raise InputError(f"--fill {self.fill!r}: choose one of {', '.join(FILL_MODES)}")
        if self.mask_band_px < 0:
            raise InputError(f"--mask-band {self.mask_band_px}: must be 0 or more pixels")


def conditioning_frames(
    source: np.ndarray, target: np.ndarray, object_mask: np.ndarray, mask: np.ndarray, config: ConditioningConfig
) -> tuple[np.ndarray, np.ndarray]:
    """The VACE input video and mask video of one training sample.

    Args:
        source: (T, H, W, 3) uint8, object-free.
        target: (T, H, W, 3) uint8, with the object.
        object_mask: (T, H, W) bool, the object's pixels (what "paste" copies from ``target``).
        mask: (T, H, W) bool, the region to generate (the object mask, or the extended optics mask).
        config: fill, band, first frame.

    Returns:
        (video (T, H, W, 3) uint8, region (T, H, W) bool, True = generate).
    """
    import cv2

    region = mask.copy()
    if config.mask_band_px > 0:
        size = 2 * config.mask_band_px + 1
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
        region = np.stack([cv2.dilate(m.astype(np.uint8), kernel) > 0 for m in region])
    if config.fill == "paste":
        video = np.where(object_mask[..., None], target, source)
    elif config.fill == "gray":
        video = np.where(region[..., None], np.uint8(MASK_GRAY), source)
    else:
        video = source.copy()
    if config.first_frame_known:
        video[0] = target[0]
        region[0] = False
    return video, region


def fit_frame(image: np.ndarray, height: int, width: int, nearest: bool = False) -> np.ndarray:
    """Resize to cover (height, width) keeping the aspect ratio, then crop the centre.

    Args:
        image: (H, W) or (H, W, C) uint8.
        nearest: nearest-neighbour interpolation (masks); else area/linear.
    """
    import cv2

    src_h, src_w = image.shape[:2]
    scale = max(height / src_h, width / src_w)
    new_w, new_h = max(width, round(src_w * scale)), max(height, round(src_h * scale))
    if nearest:
        interpolation = cv2.INTER_NEAREST
    else:
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    top, left = (new_h - height) // 2, (new_w - width) // 2
    return np.ascontiguousarray(resized[top : top + height, left : left + width])


@dataclass
class SampleClips:
    """A sample's clips at training geometry.

    Attributes:
        source: (T, H, W, 3) uint8, object-free.
        target: (T, H, W, 3) uint8, with the object.
        object_mask: (T, H, W) bool.
        optics_mask: (T, H, W) bool.
        reference: (h, w, 3) uint8 RGB on white, cropped to the object (as ``synth.vace`` passes it).
    """

    source: np.ndarray
    target: np.ndarray
    object_mask: np.ndarray
    optics_mask: np.ndarray
    reference: np.ndarray


def load_sample_clips(dataset: str | os.PathLike[str], sample: DatasetSample, geometry: ClipGeometry) -> SampleClips:
    """Read the first ``geometry.num_frames`` frames of a sample, fitted to the geometry.

    Raises:
        InputError: the sample has fewer frames than ``geometry.num_frames``.
    """
    if sample.n_frames < geometry.num_frames:
        raise InputError(f"sample {sample.id} has {sample.n_frames} frames, fewer than --frames {geometry.num_frames}")
    count, height, width = geometry.num_frames, geometry.height, geometry.width

    def clip(name: str) -> np.ndarray:
        frames = []
        for frame in VideoReader(sample.path(dataset, name)):
            frames.append(fit_frame(frame, height, width))
            if len(frames) == count:
                break
        return np.stack(frames)

    def masks(name: str) -> np.ndarray:
        images = read_sequence(sample.path(dataset, name), "gray")[:count]
        return np.stack([fit_frame(m, height, width, nearest=True) > 127 for m in images])

    reference = reference_on_white(read_png(sample.path(dataset, "reference"), "rgba"))
    return SampleClips(clip("source"), clip("target"), masks("mask"), masks("optics_mask"), reference)


def _pil_frames(frames: np.ndarray) -> list[Any]:
    from PIL import Image

    return [Image.fromarray(frame) for frame in frames]


def _pil_masks(masks: np.ndarray) -> list[Any]:
    from PIL import Image

    return [Image.fromarray(mask.astype(np.uint8) * 255).convert("RGB") for mask in masks]


def encode_prompt(pipeline: Any, prompt: str, device: str) -> Any:
    """(L, D) text embeddings of ``prompt`` as the pipeline computes them (UMT5, zero-padded to 512 tokens)."""
    import torch

    with torch.no_grad():
        embeds, _ = pipeline.encode_prompt(
            prompt=prompt, do_classifier_free_guidance=False, num_videos_per_prompt=1, device=device
        )
    return embeds[0].float().cpu()


def encode_sample(
    pipeline: Any,
    clips: SampleClips,
    geometry: ClipGeometry,
    device: str,
    conditioning: ConditioningConfig | None = None,
) -> dict[str, Any]:
    """The cached tensors of one sample (float32, CPU).

    Returns:
        ``{"x0": (16, R+F, h, w), "control_object": (96, R+F, h, w), "control_optics": (96, R+F, h, w),
        "n_reference": ()}`` with R = 1 reference frame, F = (num_frames - 1) / 4 + 1 latent frames,
        h = H / 8, w = W / 8.
    """
    import torch
    from PIL import Image

    height, width, count = geometry.height, geometry.width, geometry.num_frames
    conditioning = conditioning or ConditioningConfig()
    vae = pipeline.vae
    reference = Image.fromarray(clips.reference)
    result: dict[str, Any] = {}
    with torch.no_grad():
        for name, masks in (("control_object", clips.object_mask), ("control_optics", clips.optics_mask)):
            frames, region = conditioning_frames(clips.source, clips.target, clips.object_mask, masks, conditioning)
            video, mask, references = pipeline.preprocess_conditions(
                _pil_frames(frames), _pil_masks(region), reference, 1, height, width, count, torch.float32, device
            )
            latents = pipeline.prepare_video_latents(video, mask, references, None, device)
            mask_latents = pipeline.prepare_masks(mask, references, None)
            result[name] = torch.cat([latents, mask_latents.to(latents.dtype)], dim=1)[0].float().cpu()
        n_reference = len(references[0])
        target = pipeline.video_processor.preprocess_video(_pil_frames(clips.target), height, width)
        target = target.to(device=device, dtype=vae.dtype)
        target_latent = vae.encode(target).latent_dist.mode()
        z_dim = vae.config.z_dim
        latents_mean = torch.tensor(vae.config.latents_mean, device=device).view(1, z_dim, 1, 1, 1)
        latents_std = torch.tensor(vae.config.latents_std, device=device).view(1, z_dim, 1, 1, 1)
        target_latent = ((target_latent.float() - latents_mean) / latents_std)[0].cpu()
    reference_latent = result["control_object"][:z_dim, :n_reference]
    result["x0"] = torch.cat([reference_latent, target_latent], dim=1)
    result["n_reference"] = torch.tensor(n_reference)
    return result


def _metadata(model_key: str, geometry: ClipGeometry, prompt: str, conditioning: ConditioningConfig) -> dict[str, str]:
    return {
        "conditioning": json.dumps(asdict(conditioning), sort_keys=True),
        "model": model_key,
        "num_frames": str(geometry.num_frames),
        "height": str(geometry.height),
        "width": str(geometry.width),
        "prompt": prompt,
    }


def build_latent_cache(
    pipeline: Any,
    dataset: str | os.PathLike[str],
    samples: list[DatasetSample],
    cache_dir: str | os.PathLike[str],
    geometry: ClipGeometry,
    model_key: str,
    device: str,
    default_prompt: str = "",
    progress: Progress = null_progress,
    conditioning: ConditioningConfig | None = None,
) -> tuple[list[Path], list[dict]]:
    """Encode every sample not yet cached (or cached with other settings).

    Returns:
        (cache files in sample order, skipped samples as {"id", "reason"}).
    """
    from safetensors import safe_open
    from safetensors.torch import save_file

    conditioning = conditioning or ConditioningConfig()
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    files, skipped = [], []
    prompt_cache: dict[str, Any] = {}
    for done, sample in enumerate(samples):
        progress("latent cache", done, len(samples))
        prompt = sample.prompt or default_prompt
        metadata = _metadata(model_key, geometry, prompt, conditioning)
        path = cache_dir / f"{sample.id}.safetensors"
        if path.is_file():
            with safe_open(str(path), framework="pt") as handle:
                if handle.metadata() == metadata:
                    files.append(path)
                    continue
        try:
            clips = load_sample_clips(dataset, sample, geometry)
        except (InputError, OSError) as err:
            skipped.append({"id": sample.id, "reason": str(err)})
            continue
        tensors = encode_sample(pipeline, clips, geometry, device, conditioning)
        if prompt not in prompt_cache:
            prompt_cache[prompt] = encode_prompt(pipeline, prompt, device)
        tensors["prompt_embeds"] = prompt_cache[prompt]
        with atomic_path(path) as tmp:
            save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
        files.append(path)
    progress("latent cache", len(samples), len(samples))
    (cache_dir / "index.json").write_text(json.dumps([p.name for p in files], indent=1) + "\n")
    return files, skipped


def load_cached(path: str | os.PathLike[str], device: str = "cpu") -> dict[str, Any]:
    """The tensors :func:`encode_sample` made (plus ``prompt_embeds`` (L, D)), on ``device``."""
    from safetensors.torch import load_file

    return load_file(str(path), device=device)
