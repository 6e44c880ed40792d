"""The diffusion synthesis backend: Wan2.1-VACE through diffusers (``insert --synth vace``).

Conditioning follows the paper (InsertAnywhere, built on VACE's masked video-to-video task):

- the source video, with the region to generate filled by the compositing backend's frames (``control_hint``):
  VACE encodes ``video * (1 - mask)`` (kept) and ``video * mask`` (to be changed) as two latents, so the composite
  inside the mask is a hint of where the object stands and how it looks, which the model is free to redraw;
- the 4D-aware mask video (white = generate): the visible object mask, occluders cut out, grown by a band that
  takes in the contact shadow (``vace_region.generation_region``);
- the object image as VACE's reference image (on white, as VACE letterboxes references);
- a prompt (default from the object's name) and a seed;
- a first-frame anchor given as known (mask black): made by an image-inpainting model when ``anchor_model`` is set,
  else the composited frame 0;
- long clips in overlapping windows, each continuing from the previous window's output (``vace_windows``).

Only the generated region (mask plus shadow band, feathered inwards) replaces input pixels; everything else is the
input bit for bit.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from insertanywhere.errors import InputError, UserError, require
from insertanywhere.models.wan_vace import (
    DEFAULT_MODEL,
    DTYPES,
    OFFLOAD_MODES,
    estimate_vace_memory,
    load_lora,
    load_wan_vace_pipeline,
    require_prompt_cleaner,
    resolve_device,
    set_flow_shift,
    unload_lora,
)
from insertanywhere.progress import Progress, null_progress
from insertanywhere.synth.vace_region import (
    generation_region,
    generation_size,
    paste_alpha,
    paste_back,
    reference_on_white,
    resize_alpha,
    resize_frame,
    resize_mask,
)
from insertanywhere.synth.vace_windows import Window, check_window, plan_windows

logger = logging.getLogger(__name__)

# Wan's recommended negative prompt (English rendering of the one in Wan2.1's shared_config.py).
DEFAULT_NEGATIVE_PROMPT = (
    "bright tones, overexposed, static, blurred details, subtitles, style, works, paintings, images, static, overall "
    "gray, worst quality, low quality, JPEG compression residue, ugly, incomplete, extra fingers, poorly drawn hands, "
    "poorly drawn faces, deformed, disfigured, misshapen limbs, fused fingers, still picture, messy background, "
    "floating object, object without shadow, flickering"
)
MASK_GRAY = 127  # VACE's "no content" value: 0 in the model's [-1, 1] range


@dataclass
class VaceConfig:
    """Settings of the VACE backend; the CLI options of ``insertanywhere insert`` map onto these fields by name.

    Attributes:
        model: hub id (``Wan-AI/Wan2.1-VACE-1.3B-diffusers`` or ``...-14B-diffusers``) or a local pipeline folder.
        lora: optional LoRA (``.safetensors`` file or folder; diffusers, Wan/ComfyUI or Kohya key names).
        lora_scale: the LoRA's weight.
        anchor_model: image-inpainting model for frame 0 (FLUX.1 Fill or SDXL inpainting, hub id or folder);
            None = the compositing backend's frame 0 is the anchor.
        anchor_strength: how far the inpainting model may move away from the composited frame 0 (0..1).
        anchor_steps: the inpainting model's steps.
        prompt: text prompt; None = built from ``object_name``.
        object_name: the object's name (e.g. the object file's stem) for the default prompt.
        negative_prompt: what to steer away from (classifier-free guidance).
        seed: random seed (window i uses seed + i).
        steps: denoising steps per window (Wan's default is 50; 30 is a fair trade).
        guidance_scale: classifier-free guidance weight (1 = off: half the compute).
        conditioning_scale: weight of the VACE control hints (1 = as trained).
        allow_cpu: run on the CPU when no GPU is present (otherwise a UserError).
        device: torch device; None = cuda (or mps) when present.
        offload: ``"model"`` | ``"group"`` | ``"none"`` (see ``models.wan_vace.load_wan_vace_pipeline``).
        dtype: ``"bf16"`` | ``"fp16"`` | ``"fp32"`` for the transformer and text encoder (the VAE stays fp32).
        vae_tiling: tile the VAE (much lower memory at 480p/720p).
        window: frames per generation, 4k+1 (81 = Wan's training length).
        overlap: frames each window shares with the previous one, given as known.
        max_area: the largest generation area in pixels (480 * 832 for the 1.3B model; 720 * 1280 for 14B at 720p).
        flow_shift: scheduler shift; None = 3.0 at 480p, 5.0 at 720p.
        shadow_band_px: band (input pixels) around the object regenerated with it, taking in the contact shadow.
        feather_px: width (input pixels) of the paste-back ramp, inside the region.
        shadow_threshold: shadow-matte values above this are regenerated too.
        control_hint: fill the region with the composited frames (True) or with gray (False, plain VACE inpainting).
        max_sequence_length: text tokens (Wan uses 512).
    """

    model: str = DEFAULT_MODEL
    lora: str | Path | None = None
    lora_scale: float = 1.0
    anchor_model: str | None = None
    anchor_strength: float = 0.6
    anchor_steps: int = 28
    prompt: str | None = None
    object_name: str | None = None
    negative_prompt: str = DEFAULT_NEGATIVE_PROMPT
    seed: int = 0
    steps: int = 30
    guidance_scale: float = 5.0
    conditioning_scale: float = 1.0
    allow_cpu: bool = False
    device: str | None = None
    offload: str = "model"
    dtype: str = "bf16"
    vae_tiling: bool = True
    window: int = 81
    overlap: int = 16
    max_area: int = 480 * 832
    flow_shift: float | None = None
    shadow_band_px: int = 12
    feather_px: float = 6.0
    shadow_threshold: float = 0.02
    control_hint: bool = True
    max_sequence_length: int = 512

    def validate(self) -> None:
        """Raise UserError naming the first bad field."""
        check_window(self.window, self.overlap)
        if self.offload not in OFFLOAD_MODES:
            raise UserError(f"--offload must be one of {', '.join(OFFLOAD_MODES)}, got {self.offload!r}")
        if self.dtype not in DTYPES:
            raise UserError(f"VACE dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.steps < 1:
            raise UserError(f"--steps must be at least 1, got {self.steps}")
        if not 0.0 < self.anchor_strength <= 1.0:
            raise UserError(f"anchor strength must be in (0, 1], got {self.anchor_strength}")
        if self.shadow_band_px < 0 or self.feather_px < 0:
            raise UserError("shadow band and feather widths must be >= 0 pixels")
        if self.max_area < 16 * 16:
            raise UserError(f"VACE max_area must be at least 256 pixels, got {self.max_area}")
        if self.lora is not None and not Path(self.lora).expanduser().exists():
            raise UserError(f"--lora {self.lora} does not exist; pass a .safetensors file or a folder with one")


def vace_report(config: VaceConfig) -> dict[str, Any]:
    """What decided a VACE run, for report.json: every setting, the prompt actually used and the torch device
    the model ran on (``device`` resolved, so "auto" reads as "cuda", "mps" or "cpu")."""
    settings = asdict(config)
    settings["lora"] = None if config.lora is None else str(config.lora)
    settings["prompt"] = default_prompt(config)
    settings["device"] = resolve_device(config.device, allow_cpu=True)
    return settings


PROMPT_TAIL = "placed naturally in the scene, lit like its surroundings, casting a soft shadow, realistic"


def default_prompt(config: VaceConfig) -> str:
    """The prompt: ``config.prompt`` when given, else a sentence naming the object (from its file name)."""
    if config.prompt:
        return config.prompt
    name = (config.object_name or "object").replace("_", " ").replace("-", " ").strip() or "object"
    article = "an" if name[0].lower() in "aeiou" else "a"
    return f"{article} {name} {PROMPT_TAIL}"


def _stderr_line(message: str) -> None:
    print(message, file=sys.stderr)


def preflight_vace(config: VaceConfig) -> str:
    """Check the settings and the machine before any expensive stage runs; returns the torch device to use.

    Call it where the user's options enter (the CLI, the start of ``run_insert``), so a CPU-only machine or a bad
    ``--lora``/``--offload`` fails in the first second, not after the reconstruction.

    Raises:
        UserError: a bad setting, or no GPU without ``allow_cpu``.
        MissingDependencyError: the ``diffusion`` extra (torch, diffusers, transformers) is missing.
    """
    config.validate()
    require("diffusers", "diffusion")
    require("transformers", "diffusion")
    require_prompt_cleaner()
    return resolve_device(config.device, config.allow_cpu)


def _check_inputs(
    source_frames: np.ndarray,
    control_frames: np.ndarray,
    object_masks: np.ndarray,
    shadow_mattes: np.ndarray,
    reference_rgba: np.ndarray,
) -> None:
    if source_frames.ndim != 4 or source_frames.shape[-1] != 3 or source_frames.dtype != np.uint8:
        raise InputError(f"source frames must be (T, H, W, 3) uint8, got {source_frames.shape} {source_frames.dtype}")
    if control_frames.shape != source_frames.shape or control_frames.dtype != np.uint8:
        raise InputError(
            f"control frames must match the source {source_frames.shape} uint8, got {control_frames.shape}"
        )
    if object_masks.shape != source_frames.shape[:3] or shadow_mattes.shape != source_frames.shape[:3]:
        raise InputError(
            f"object masks and shadow mattes must be {source_frames.shape[:3]}, "
            f"got {object_masks.shape} and {shadow_mattes.shape}"
        )
    if reference_rgba.ndim != 3 or reference_rgba.shape[-1] not in (3, 4) or reference_rgba.dtype != np.uint8:
        raise InputError(f"reference image must be (h, w, 4) uint8 RGBA, got {reference_rgba.shape}")


def make_anchor(
    source_frame: np.ndarray,
    control_frame: np.ndarray,
    region: np.ndarray,
    alpha: np.ndarray,
    config: VaceConfig,
    prompt: str,
    device: str,
    anchor_pipeline: Any = None,
) -> np.ndarray:
    """Frame 0, which the video model keeps: inpainted by the image model, else the composited frame.

    Args:
        source_frame: (H, W, 3) uint8, input frame 0.
        control_frame: (H, W, 3) uint8, the compositing backend's frame 0.
        region: (H, W) bool, the generation region of frame 0.
        alpha: (H, W) float32, its paste-back weight.
        anchor_pipeline: an inpainting pipeline to use (tests); None = load ``config.anchor_model`` when set.

    Returns:
        (H, W, 3) uint8, equal to ``source_frame`` wherever ``alpha`` is 0.
    """
    if anchor_pipeline is None and config.anchor_model is None:
        return paste_back(source_frame, control_frame, alpha)
    from insertanywhere.models.inpaint import inpaint_image, load_inpaint_pipeline

    pipeline = anchor_pipeline
    if pipeline is None:
        pipeline = load_inpaint_pipeline(config.anchor_model, config.dtype, device, config.offload)
    painted = inpaint_image(
        pipeline,
        control_frame,
        region,
        prompt,
        seed=config.seed,
        steps=config.anchor_steps,
        strength=config.anchor_strength,
    )
    if anchor_pipeline is None:
        _release(pipeline)  # free the image model before the video model loads
    return paste_back(source_frame, painted, alpha)


def _release(pipeline: Any) -> None:
    """Drop a pipeline's offload hooks and cached accelerator memory (the caller drops its last reference)."""
    torch = require("torch", "diffusion")
    if hasattr(pipeline, "remove_all_hooks"):
        pipeline.remove_all_hooks()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _window_conditions(
    window: Window,
    source_small: np.ndarray,
    control_small: np.ndarray,
    region_small: np.ndarray,
    known_small: dict[int, np.ndarray],
    control_hint: bool,
) -> tuple[list[Any], list[Any]]:
    """VACE's video and mask for one window, as PIL images at the generation size.

    Known frames (the anchor, the previous window's overlap) go in whole with a black mask; the others carry the
    source outside the region and the composite (or gray) inside it, with the region white.
    """
    from PIL import Image

    video, mask = [], []
    n_frames = source_small.shape[0]
    for index in range(window.start, window.stop):
        frame_index = min(index, n_frames - 1)  # frames past the clip's end pad the last one
        if index in known_small:
            video.append(Image.fromarray(known_small[index]))
            mask.append(Image.fromarray(np.zeros(region_small.shape[1:], np.uint8), mode="L"))
            continue
        region = region_small[frame_index]
        fill = control_small[frame_index] if control_hint else np.full_like(source_small[frame_index], MASK_GRAY)
        frame = np.where(region[..., None], fill, source_small[frame_index])
        video.append(Image.fromarray(frame))
        mask.append(Image.fromarray(region.astype(np.uint8) * 255, mode="L"))
    return video, mask


def synthesize_vace(
    source_frames: np.ndarray,
    control_frames: np.ndarray,
    object_masks: np.ndarray,
    shadow_mattes: np.ndarray,
    reference_rgba: np.ndarray,
    config: VaceConfig,
    progress: Progress = null_progress,
    pipeline: Any = None,
    anchor_pipeline: Any = None,
    notify: Callable[[str], None] = _stderr_line,
) -> np.ndarray:
    """Insert the object with Wan2.1-VACE: regenerate the object's region so it looks filmed there.

    Args:
        source_frames: (T, H, W, 3) uint8, the input video.
        control_frames: (T, H, W, 3) uint8, the compositing backend's result (hint inside the region, anchor).
        object_masks: (T, H, W) bool, visible object masks (4D-aware: occluded parts False).
        shadow_mattes: (T, H, W) float32 in [0, 1], the shadow's weight (0 = none).
        reference_rgba: (h, w, 4) uint8 straight-alpha object image.
        config: the backend's settings.
        progress: called as ``progress("vace", done, total)`` after every denoising step of every window.
        pipeline: a built ``WanVACEPipeline`` to use (tests, or a caller reusing one); None = load ``config.model``.
            A LoRA from ``config.lora`` is loaded into an injected pipeline and unloaded before returning.
        anchor_pipeline: a built inpainting pipeline for frame 0; None = load ``config.anchor_model`` when set.
        notify: receives one-line notices (the memory estimate before loading); default prints to stderr.

    Returns:
        (T, H, W, 3) uint8 at the input size; only the generated region (mask plus shadow band, feathered)
        differs from ``source_frames``.

    Raises:
        UserError: a bad setting, no GPU without ``allow_cpu``, missing weights or dependencies.
    """
    config.validate()
    _check_inputs(source_frames, control_frames, object_masks, shadow_mattes, reference_rgba)
    n_frames, height, width = source_frames.shape[:3]
    region = generation_region(object_masks, shadow_mattes, config.shadow_band_px, config.shadow_threshold)
    alpha = paste_alpha(region, object_masks, config.feather_px)
    if not region.any():
        return source_frames.copy()

    gen_height, gen_width = generation_size(height, width, config.max_area)
    windows, _ = plan_windows(n_frames, config.window, config.overlap)
    if pipeline is None:
        device = resolve_device(config.device, config.allow_cpu)
        frames_per_window = windows[0].length
        estimate = estimate_vace_memory(
            config.model, gen_height, gen_width, frames_per_window, config.dtype, config.offload, config.vae_tiling
        )
        notify(estimate.line(config.model, gen_height, gen_width, frames_per_window, config.offload))
        if config.anchor_model is not None and anchor_pipeline is None:
            from insertanywhere.models.inpaint import estimate_inpaint_memory_line

            notify(estimate_inpaint_memory_line(config.anchor_model))
        _warn_if_short_of_memory(device, estimate.total_gib, notify)
    else:
        device = str(pipeline._execution_device)
    prompt = default_prompt(config)

    progress("vace anchor", 0, 1)
    anchor = make_anchor(
        source_frames[0], control_frames[0], region[0], alpha[0], config, prompt, device, anchor_pipeline
    )

    progress("vace anchor", 1, 1)
    own_pipeline = pipeline is None
    if own_pipeline:
        pipeline = load_wan_vace_pipeline(
            config.model,
            config.dtype,
            device,
            config.offload,
            vae_tiling=config.vae_tiling,
            lora=config.lora,
            lora_scale=config.lora_scale,
        )
    elif config.lora is not None:
        load_lora(pipeline, config.lora, config.lora_scale)
    try:
        generated_small = _generate_windows(
            pipeline, windows, source_frames, control_frames, region, alpha, reference_rgba, anchor, prompt, config,
            gen_height, gen_width, progress,
        )  # fmt: skip
    finally:
        if not own_pipeline and config.lora is not None:
            unload_lora(pipeline)

    output = np.empty_like(source_frames)
    output[0] = anchor
    for index in range(1, n_frames):
        generated = resize_frame(generated_small[index], height, width)
        output[index] = paste_back(source_frames[index], generated, alpha[index])
    return output


def _generate_windows(
    pipeline: Any,
    windows: list[Window],
    source_frames: np.ndarray,
    control_frames: np.ndarray,
    region: np.ndarray,
    alpha: np.ndarray,
    reference_rgba: np.ndarray,
    anchor: np.ndarray,
    prompt: str,
    config: VaceConfig,
    gen_height: int,
    gen_width: int,
    progress: Progress,
) -> np.ndarray:
    """Run every window; returns (T, gen_height, gen_width, 3) uint8 generated frames (frame 0 = the anchor).

    A window's known frames are the earlier output as the viewer will see it: the generated frame pasted into the
    source at the generation size, so the next window continues what is shown, not the model's whole-frame redraw.
    """
    torch = require("torch", "diffusion")
    from PIL import Image

    n_frames = source_frames.shape[0]
    source_small = np.stack([resize_frame(frame, gen_height, gen_width) for frame in source_frames])
    control_small = np.stack([resize_frame(frame, gen_height, gen_width) for frame in control_frames])
    region_small = np.stack([resize_mask(mask, gen_height, gen_width) for mask in region])
    alpha_small = np.stack([resize_alpha(weight, gen_height, gen_width) for weight in alpha])
    reference = Image.fromarray(reference_on_white(reference_rgba))
    set_flow_shift(pipeline, gen_height, gen_width, config.flow_shift)

    with torch.no_grad():
        prompt_embeds, negative_embeds = pipeline.encode_prompt(
            prompt=prompt,
            negative_prompt=config.negative_prompt,
            do_classifier_free_guidance=config.guidance_scale > 1.0,
            max_sequence_length=config.max_sequence_length,
        )

    generated_small = np.zeros((n_frames, gen_height, gen_width, 3), np.uint8)
    generated_small[0] = resize_frame(anchor, gen_height, gen_width)
    shown_small = generated_small.copy()  # the pasted frames, what later windows are conditioned on
    done_until = 1  # frames [0, done_until) are final
    total_steps = len(windows) * config.steps
    for window_index, window in enumerate(windows):
        known = {index: shown_small[index] for index in range(window.start, min(done_until, n_frames))}
        if window.start + len(known) >= n_frames:
            continue  # nothing left to generate (a one-frame clip: the anchor is the whole output)
        video, mask = _window_conditions(window, source_small, control_small, region_small, known, config.control_hint)

        def report_step(_pipe: Any, step: int, _timestep: Any, tensors: dict, base: int = window_index) -> dict:
            progress("vace", base * config.steps + step + 1, total_steps)
            return tensors

        frames = pipeline(
            video=video,
            mask=mask,
            reference_images=[reference],
            prompt_embeds=prompt_embeds,
            negative_prompt_embeds=negative_embeds,
            conditioning_scale=config.conditioning_scale,
            height=gen_height,
            width=gen_width,
            num_frames=window.length,
            num_inference_steps=config.steps,
            guidance_scale=config.guidance_scale,
            generator=torch.Generator(device="cpu").manual_seed(config.seed + window_index),
            output_type="np",
            callback_on_step_end=report_step,
        ).frames[0]  # (length, gen_height, gen_width, 3) float32 in [0, 1]
        frames_uint8 = np.clip(np.rint(np.asarray(frames) * 255.0), 0, 255).astype(np.uint8)
        for offset in range(window.length):
            index = window.start + offset
            if done_until <= index < n_frames:
                generated_small[index] = frames_uint8[offset]
                shown_small[index] = paste_back(source_small[index], frames_uint8[offset], alpha_small[index])
        done_until = max(done_until, min(window.stop, n_frames))
        logger.info("VACE window %d/%d: frames %d-%d", window_index + 1, len(windows), window.start, window.stop - 1)
    return generated_small


def _warn_if_short_of_memory(device: str, needed_gib: float, notify: Callable[[str], None]) -> None:
    """One notice when the estimate exceeds the free memory of a CUDA device (the estimate is rough: no refusal)."""
    torch = require("torch", "diffusion")
    if not device.startswith("cuda") or not torch.cuda.is_available():
        return
    free_bytes, _total = torch.cuda.mem_get_info(torch.device(device))
    free_gib = free_bytes / 1024**3
    if needed_gib > free_gib:
        notify(
            f"warning: about {needed_gib:.0f} GiB needed but {free_gib:.0f} GiB free on {device}; "
            "try --offload group, a smaller max area, or the 1.3B model"
        )
