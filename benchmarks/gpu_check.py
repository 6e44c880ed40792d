"""Device check of the learned backends' plumbing: the same tiny random model and input on the CPU and on a GPU.

Every model here is randomly initialised from a small config and saved to a temporary folder, then loaded back
through the project's own loader with a ``device`` argument and run through the project's own backend code
(nothing is downloaded; no weights are needed). For each backend it reports, per run:

* ``ok`` and, on failure, the error (one line) and the last traceback frames;
* the outputs' shapes, dtypes and where they ended (``host`` for numpy arrays, else the tensor's device);
* the devices and dtypes of the loaded model's parameters (did the loader put it where it was asked?);
* wall times (load, first call, second call where cheap) and the CUDA peak memory (did it run on the GPU?);
* ``diff_vs_cpu``: the max abs difference of each output from the CPU float32 run (fraction of differing pixels
  for masks), and ``close``: whether the float32 GPU run agrees within the backend's tolerance.

Half-precision runs (bf16/fp16) use the backend's dtype option where it has one (the diffusion loaders, the
trainer's mixed precision); for the loaders without one (RAFT, Depth Anything, SAM 2, CLIP, DINO) the loaded model
is cast with ``model.to(dtype)``, the way a caller would run it in half precision. Float32 GPU runs have TF32 off,
so a difference is the device's arithmetic, not TF32 rounding.

The inpainting backend also runs bf16/fp16 on the CPU (``diff_vs_cpu_same_dtype``: is a half-precision
difference the device's or the dtype's?) and with PyTorch's math attention instead of the fused kernels, and
reports the pipeline's float output before the uint8 rounding (NaNs would otherwise become black pixels).

Usage::

    python benchmarks/gpu_check.py                      # CPU reference + cuda (when present) + half runs
    python benchmarks/gpu_check.py --device cpu         # CPU only (half runs on the CPU too)
    python benchmarks/gpu_check.py --backends raft,sam2 --out result.json

Prints one JSON object (and writes it to ``--out`` when given). The diffusion backends need diffusers, ftfy, peft
and accelerate; on a GPU image without diffusers/ftfy carry their wheels (diffusers, importlib_metadata, ftfy,
wcwidth) and put them on PYTHONPATH. benchmarks/results/gpu_check.json is a run on one H100 (torch 2.11+cu130,
transformers 5.17, diffusers 0.42.1).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

HALF = ("bf16", "fp16")


# ---------------------------------------------------------------------------------------------------------------------
# helpers


def torch_dtype(name: str) -> Any:
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[name]


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        torch.cuda.synchronize()


def describe(value: Any) -> dict[str, Any]:
    """Shape, dtype and where an output lives (numpy -> host)."""
    import torch

    if isinstance(value, torch.Tensor):
        return {"shape": list(value.shape), "dtype": str(value.dtype).replace("torch.", ""), "on": str(value.device)}
    if isinstance(value, np.ndarray):
        return {"shape": list(value.shape), "dtype": str(value.dtype), "on": "host"}
    return {"type": type(value).__name__, "on": "host"}


def as_numpy(value: Any) -> np.ndarray:
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().float().cpu().numpy() if value.is_floating_point() else value.detach().cpu().numpy()
    return np.asarray(value)


def difference(reference: Any, other: Any) -> dict[str, Any]:
    """Max abs difference (float/int outputs) or fraction of differing elements (bool outputs)."""
    a, b = as_numpy(reference), as_numpy(other)
    if a.shape != b.shape:
        return {"shape_mismatch": [list(a.shape), list(b.shape)]}
    if a.dtype == bool:
        return {"differing_fraction": float(np.mean(a != b)) if a.size else 0.0}
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    if a.size == 0:
        return {"max_abs": 0.0}
    diff = np.abs(a64 - b64)
    scale = float(np.max(np.abs(a64))) or 1.0
    return {"max_abs": float(np.max(diff)), "mean_abs": float(np.mean(diff)), "ref_max_abs": scale}


def within(diff: dict[str, Any], tolerance: dict[str, float]) -> bool:
    if "shape_mismatch" in diff:
        return False
    if "differing_fraction" in diff:
        return diff["differing_fraction"] <= tolerance.get("fraction", 0.0)
    if not np.isfinite(diff["max_abs"]):
        return False
    if "mean_abs" in tolerance:  # uint8 images: a few levels may flip after several denoising steps
        return diff["mean_abs"] <= tolerance["mean_abs"] and diff["max_abs"] <= tolerance.get("max_abs", 255)
    return diff["max_abs"] <= tolerance.get("rel", 1e-3) * max(1.0, diff["ref_max_abs"])


def module_placement(module: Any) -> dict[str, list[str]]:
    """Devices and dtypes of a torch module's parameters and buffers."""
    tensors = [*module.parameters(), *module.buffers()]
    return {
        "devices": sorted({str(t.device) for t in tensors}),
        "dtypes": sorted({str(t.dtype).replace("torch.", "") for t in tensors if t.is_floating_point()}),
    }


def error_record(err: BaseException) -> dict[str, Any]:
    frames = traceback.extract_tb(err.__traceback__)
    first_line = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return {
        "error": f"{type(err).__name__}: {first_line[:400]}",
        "where": [f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in frames[-6:]],
    }


@dataclass
class RunOutput:
    outputs: dict[str, Any]
    load_s: float = 0.0
    run_s: float = 0.0
    warm_run_s: float | None = None
    placement: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Variant:
    label: str
    device: str
    dtype: str = "fp32"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Backend:
    name: str
    entry: str  # the project's code paths it runs
    setup: Callable[[Path], Any]
    run: Callable[[Any, Variant], RunOutput]
    variants: Callable[[str, bool], list[Variant]]
    tolerance: dict[str, float]
    half_via: str  # "dtype option" or "model cast"


def timed(device: str, fn: Callable[[], Any]) -> tuple[Any, float]:
    sync(device)
    start = time.perf_counter()
    value = fn()
    sync(device)
    return value, time.perf_counter() - start


def default_variants(device: str, half: bool, cuda_options: list[dict[str, Any]] | None = None) -> list[Variant]:
    """CPU fp32 reference, then ``device`` fp32 (once per option set), then the half dtypes on ``device``."""
    variants = [Variant("cpu/fp32", "cpu")]
    if device != "cpu":
        for options in cuda_options or [{}]:
            suffix = "".join(f"/{k}={v}" for k, v in options.items())
            variants.append(Variant(f"{device}/fp32{suffix}", device, "fp32", dict(options)))
    if half:
        for dtype in HALF:
            variants.append(Variant(f"{device}/{dtype}", device, dtype))
    return variants


def random_frames(count: int, height: int, width: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]


# ---------------------------------------------------------------------------------------------------------------------
# RAFT (models/raft.py: load_raft, RaftFlow)


def raft_setup(work: Path) -> Any:
    import torch

    from insertanywhere.models.raft import RAFT_SMALL, build_raft

    torch.manual_seed(0)
    folder = work / "raft"
    folder.mkdir()
    torch.save(build_raft(RAFT_SMALL).state_dict(), folder / "raft_small.pth")
    rng = np.random.default_rng(0)
    image_a = rng.integers(0, 255, (60, 90, 3), dtype=np.uint8)  # not multiples of 8: padded inside
    return folder, image_a, np.roll(image_a, 2, axis=1)


def raft_run(ctx: Any, variant: Variant) -> RunOutput:
    from insertanywhere.models.raft import RaftFlow, load_raft

    folder, image_a, image_b = ctx
    model, load_s = timed(variant.device, lambda: load_raft(str(folder), device=variant.device))
    if variant.dtype != "fp32":
        model = model.to(torch_dtype(variant.dtype))
    backend = RaftFlow(model, device=variant.device, num_flow_updates=4)
    flow, run_s = timed(variant.device, lambda: backend(image_a, image_b))
    _, warm_s = timed(variant.device, lambda: backend(image_a, image_b))
    return RunOutput({"flow": flow}, load_s, run_s, warm_s, module_placement(model))


# ---------------------------------------------------------------------------------------------------------------------
# Depth Anything V2 (models/depth_anything.py: load_depth_anything, DepthAnythingPrior)


def depth_setup(work: Path) -> Any:
    import torch
    from transformers import DepthAnythingForDepthEstimation

    from insertanywhere.testing import tiny_depth_anything_config

    config = tiny_depth_anything_config()
    torch.manual_seed(0)
    folder = work / "depth_anything"
    DepthAnythingForDepthEstimation(config).save_pretrained(folder)
    return folder, random_frames(1, 48, 80, seed=1)[0]


def depth_run(ctx: Any, variant: Variant) -> RunOutput:
    from insertanywhere.models.depth_anything import DepthAnythingPrior, load_depth_anything

    folder, image = ctx
    (model, settings), load_s = timed(variant.device, lambda: load_depth_anything(str(folder), device=variant.device))
    if variant.dtype != "fp32":
        model = model.to(torch_dtype(variant.dtype))
    settings["input_size"] = 56
    prior = DepthAnythingPrior(model, settings, device=variant.device)
    depth, run_s = timed(variant.device, lambda: prior(0, image))
    _, warm_s = timed(variant.device, lambda: prior(0, image))
    return RunOutput({"disparity": depth}, load_s, run_s, warm_s, module_placement(model))


# ---------------------------------------------------------------------------------------------------------------------
# SAM 2 (models/sam2.py: load_sam2, Sam2VideoSegmenter)


def sam2_setup(work: Path) -> Any:
    import torch
    import transformers

    from insertanywhere.testing import moving_squares, tiny_sam2_config

    torch.manual_seed(0)
    folder = work / "sam2"
    transformers.Sam2VideoModel(tiny_sam2_config()).save_pretrained(folder)
    frames, coarse = moving_squares(6, 48, 64)  # a square moving right, a second one entering at frame 3
    return folder, frames, coarse


def sam2_run(ctx: Any, variant: Variant) -> RunOutput:
    from insertanywhere.models.sam2 import Sam2VideoSegmenter, load_sam2

    folder, frames, coarse = ctx
    model, load_s = timed(variant.device, lambda: load_sam2(str(folder), device=variant.device))
    if variant.dtype != "fp32":
        model = model.to(torch_dtype(variant.dtype))
    segmenter = Sam2VideoSegmenter(model, device=variant.device)
    result, run_s = timed(variant.device, lambda: segmenter(frames, coarse))
    _, warm_s = timed(variant.device, lambda: segmenter(frames, coarse))
    prompts = [[p.frame, p.object_id, list(p.box), list(p.point), p.reprompt] for p in result.prompts]
    return RunOutput(
        {"masks": result.masks}, load_s, run_s, warm_s, module_placement(model),
        {"prompts": prompts, "mask_fraction": float(result.masks.mean())},
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------------------------------
# CLIP and DINO (models/clip.py, models/dino.py, models/image_encoder.py)


def clip_setup(work: Path) -> Any:
    import torch
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(0)
    config = CLIPConfig(
        text_config={"hidden_size": 32, "intermediate_size": 37, "num_attention_heads": 4, "num_hidden_layers": 2,
                     "vocab_size": 99, "max_position_embeddings": 16},
        vision_config={"image_size": 32, "patch_size": 8, "hidden_size": 32, "intermediate_size": 37,
                       "num_attention_heads": 4, "num_hidden_layers": 2},
        projection_dim=16,
    )  # fmt: skip
    folder = work / "clip"
    CLIPModel(config).eval().save_pretrained(folder)
    return folder, random_frames(5, 40, 56, seed=2)


def dino_setup(work: Path) -> Any:
    import torch
    from transformers import Dinov2Config, Dinov2Model

    torch.manual_seed(0)
    config = Dinov2Config(
        image_size=32, patch_size=16, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37
    )
    folder = work / "dino"
    Dinov2Model(config).eval().save_pretrained(folder)
    return folder, random_frames(5, 40, 56, seed=3)


def encoder_run(loader_name: str) -> Callable[[Any, Variant], RunOutput]:
    def run(ctx: Any, variant: Variant) -> RunOutput:
        from insertanywhere.models.clip import load_clip_encoder
        from insertanywhere.models.dino import load_dino_encoder

        loader = {"clip": load_clip_encoder, "dino": load_dino_encoder}[loader_name]
        folder, images = ctx
        encoder, load_s = timed(variant.device, lambda: loader(folder, device=variant.device))
        if variant.dtype != "fp32":
            encoder.model = encoder.model.to(torch_dtype(variant.dtype))
        square, run_s = timed(variant.device, lambda: encoder.embed(images, resize="square", batch_size=2))
        shorter, warm_s = timed(variant.device, lambda: encoder.embed(images, resize="shorter", batch_size=4))
        return RunOutput(
            {"embed_square": square, "embed_shorter": shorter}, load_s, run_s, warm_s, module_placement(encoder.model)
        )

    return run


# ---------------------------------------------------------------------------------------------------------------------
# first-frame inpainting (models/inpaint.py: load_inpaint_pipeline, inpaint_image)


def inpaint_setup(work: Path) -> Any:
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionInpaintPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from insertanywhere.models.wan_vace import tiny_tokenizer

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=16, in_channels=9, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, norm_num_groups=8,
    )  # fmt: skip
    vae = AutoencoderKL(
        block_out_channels=[16, 32], in_channels=3, out_channels=3, latent_channels=4, norm_num_groups=8,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
    )  # fmt: skip
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=0, eos_token_id=1, hidden_size=32, intermediate_size=37, num_attention_heads=4,
            num_hidden_layers=2, pad_token_id=0, vocab_size=64,
        )
    )  # fmt: skip
    tokenizer = tiny_tokenizer()
    tokenizer.model_max_length = 77
    pipeline = StableDiffusionInpaintPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=DDIMScheduler(steps_offset=1),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )  # fmt: skip
    folder = work / "inpaint"
    pipeline.save_pretrained(folder)
    image = random_frames(1, 48, 64, seed=4)[0]
    mask = np.zeros((48, 64), bool)
    mask[12:36, 20:44] = True
    return folder, image, mask


def inpaint_variants(device: str, half: bool) -> list[Variant]:
    variants = default_variants(device, half=False, cuda_options=[{"offload": "none"}, {"offload": "model"}])
    if half:
        if device != "cpu":  # same-dtype references: is a half difference the device's or the dtype's?
            variants += [Variant(f"cpu/{dtype}", "cpu", dtype, {"offload": "none"}) for dtype in HALF]
        variants += [Variant(f"{device}/bf16/offload=model", device, "bf16", {"offload": "model"})]
        variants += [Variant(f"{device}/fp16/offload=none", device, "fp16", {"offload": "none"})]
        if device != "cpu":  # the same with PyTorch's plain (math) attention instead of the fused kernels
            variants += [
                Variant(f"{device}/{dtype}/offload=none/sdpa=math", device, dtype, {"offload": "none", "sdpa": "math"})
                for dtype in HALF
            ]
    return variants


class RawOutputSpy:
    """Wraps a pipeline; records statistics of the float images its call returns (before the uint8 rounding)."""

    def __init__(self, pipeline: Any) -> None:
        object.__setattr__(self, "pipeline", pipeline)
        object.__setattr__(self, "stats", {})

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pipeline, name)

    def __call__(self, **kwargs: Any) -> Any:
        output = self.pipeline(**kwargs)
        raw = np.asarray(output.images[0], dtype=np.float64)
        self.stats.update(
            nan=int(np.isnan(raw).sum()),
            min=float(np.nanmin(raw)),
            max=float(np.nanmax(raw)),
            mean=float(np.nanmean(raw)),
        )
        return output


def inpaint_run(ctx: Any, variant: Variant) -> RunOutput:
    from insertanywhere.models.inpaint import inpaint_image, load_inpaint_pipeline

    folder, image, mask = ctx
    offload = variant.options.get("offload", "none")
    pipeline, load_s = timed(
        variant.device,
        lambda: load_inpaint_pipeline(str(folder), variant.dtype, variant.device, offload, local_files_only=True),
    )
    spy = RawOutputSpy(pipeline)

    def paint() -> np.ndarray:
        if variant.options.get("sdpa") == "math":
            from torch.nn.attention import SDPBackend, sdpa_kernel

            with sdpa_kernel(SDPBackend.MATH):
                return inpaint_image(spy, image, mask, "a red cup", seed=0, steps=3, strength=0.6)
        return inpaint_image(spy, image, mask, "a red cup", seed=0, steps=3, strength=0.6)

    painted, run_s = timed(variant.device, paint)
    placement = {name: module_placement(getattr(pipeline, name)) for name in ("unet", "vae", "text_encoder")}
    placement["execution_device"] = str(pipeline._execution_device)
    return RunOutput({"painted": painted}, load_s, run_s, None, placement, {"raw_float_output": spy.stats})


# ---------------------------------------------------------------------------------------------------------------------
# Wan2.1-VACE synthesis (synth/vace.py: synthesize_vace -> models/wan_vace.py: load_wan_vace_pipeline, place_pipeline)


def vace_setup(work: Path) -> Any:
    from insertanywhere.models.wan_vace import tiny_wan_vace_pipeline

    folder = work / "wan_vace"
    tiny_wan_vace_pipeline(seed=0).save_pretrained(folder)
    from insertanywhere.testing import tiny_insertion_clip

    clip = tiny_insertion_clip(9, 16, 32)  # a red box moving right over a textured background, a shadow strip
    return folder, clip


def vace_variants(device: str, half: bool) -> list[Variant]:
    options = [{"offload": "none"}, {"offload": "model"}, {"offload": "group"}]
    variants = default_variants(device, half=False, cuda_options=options)
    if half:
        variants += [Variant(f"{device}/bf16/offload=model", device, "bf16", {"offload": "model"})]
        variants += [Variant(f"{device}/fp16/offload=none", device, "fp16", {"offload": "none"})]
    return variants


def vace_run(ctx: Any, variant: Variant) -> RunOutput:
    from insertanywhere.models.wan_vace import load_wan_vace_pipeline
    from insertanywhere.synth.vace import VaceConfig, synthesize_vace

    folder, clip = ctx
    offload = variant.options.get("offload", "none")
    # Where the loader puts each component (a separate load: synthesize_vace loads and drops its own).
    pipeline = load_wan_vace_pipeline(str(folder), variant.dtype, variant.device, offload, local_files_only=True)
    placement = {name: module_placement(getattr(pipeline, name)) for name in ("transformer", "vae", "text_encoder")}
    placement["execution_device"] = str(pipeline._execution_device)
    del pipeline
    config = VaceConfig(
        model=str(folder), device=variant.device, allow_cpu=True, dtype=variant.dtype, offload=offload, steps=2,
        window=5, overlap=2, shadow_band_px=3, feather_px=2.0, max_sequence_length=16, prompt="a red cup",
    )  # fmt: skip
    notices: list[str] = []
    frames, run_s = timed(variant.device, lambda: synthesize_vace(**clip, config=config, notify=notices.append))
    return RunOutput({"frames": frames}, 0.0, run_s, None, placement, {"notices": notices})


# ---------------------------------------------------------------------------------------------------------------------
# LoRA training (train/lora.py: train_lora -> train/latent_cache.py, train/alignment.py, train/flow_matching.py)


def train_setup(work: Path) -> Any:
    """A two-sample insertion dataset of PNG sequences (no video codec needed), 9 frames 32x32."""
    from insertanywhere.data.dataset_manifest import MANIFEST_NAME, DatasetSample, sample_to_json
    from insertanywhere.io.images import write_png, write_sequence_frame

    dataset = work / "dataset"
    records = []
    n_frames, height, width = 9, 32, 32
    ys, xs = np.mgrid[0:height, 0:width]
    for seed in range(2):
        rng = np.random.default_rng(seed)
        background = rng.uniform(40, 215, (height // 4, width // 4, 3)).repeat(4, 0).repeat(4, 1)
        colour = rng.uniform(30, 230, 3)
        folder = dataset / "samples" / f"s{seed}"
        for t in range(n_frames):
            x0 = 6 + t
            mask = (xs >= x0) & (xs < x0 + 8) & (ys >= 12) & (ys < 22)
            shadow = (xs >= x0 + 2) & (xs < x0 + 12) & (ys >= 22) & (ys < 25)
            target = np.where(mask[..., None], colour, background * np.where(shadow, 0.6, 1.0)[..., None])
            write_sequence_frame(folder / "source", t, background.astype(np.uint8))
            write_sequence_frame(folder / "target", t, target.clip(0, 255).astype(np.uint8))
            write_sequence_frame(folder / "masks", t, mask)
            write_sequence_frame(folder / "optics", t, mask | shadow)
        reference = np.zeros((12, 10, 4), np.uint8)
        reference[1:11, 1:9, :3] = colour.astype(np.uint8)
        reference[1:11, 1:9, 3] = 255
        write_png(folder / "reference.png", reference)
        rel = f"samples/s{seed}"
        records.append(
            DatasetSample(
                id=f"s{seed}", origin="synthetic", source=f"{rel}/source", target=f"{rel}/target", mask=f"{rel}/masks",
                optics_mask=f"{rel}/optics", reference=f"{rel}/reference.png", reference_kind="render",
                reference_origin="gpu_check", reference_score=1.0, embedder="classical", n_frames=n_frames,
                width=width, height=height, fps=10.0, prompt="a red cup",
            )
        )  # fmt: skip
    (dataset / MANIFEST_NAME).write_text("".join(sample_to_json(r) + "\n" for r in records))
    return dataset, work


def train_variants(device: str, half: bool) -> list[Variant]:
    variants = [Variant("cpu/fp32", "cpu", "fp32", {"mixed_precision": "no"})]
    if device != "cpu":
        variants.append(Variant(f"{device}/fp32", device, "fp32", {"mixed_precision": "no"}))
    if half and device != "cpu":  # accelerate's autocast on the CPU is bf16 only
        for dtype in HALF:
            variants.append(Variant(f"{device}/{dtype}", device, dtype, {"mixed_precision": dtype}))
    elif half:
        variants.append(Variant(f"{device}/bf16", device, "bf16", {"mixed_precision": "bf16"}))
    return variants


def train_run(ctx: Any, variant: Variant) -> RunOutput:
    import torch
    from accelerate.state import AcceleratorState
    from safetensors.torch import load_file

    from insertanywhere.train.latent_cache import load_cached
    from insertanywhere.train.lora import LoraTrainConfig, train_lora

    dataset, work = ctx
    AcceleratorState._reset_state(reset_partial_state=True)  # one Accelerator per run, each with its precision
    out = work / ("train_" + variant.label.replace("/", "_").replace(":", "_"))
    config = LoraTrainConfig(
        dataset=dataset, out=out, tiny=True, rank=4, learning_rate=1e-3, max_steps=2, checkpoint_every=2,
        align_weight=0.1, eval_samples=2, seed=0, mixed_precision=variant.options["mixed_precision"],
        device=variant.device,
    )  # fmt: skip
    torch.manual_seed(0)
    result, run_s = timed(variant.device, lambda: train_lora(config))
    # One more step resumed from the step-2 checkpoint (optimizer state loaded with map_location=device).
    AcceleratorState._reset_state(reset_partial_state=True)
    resumed = train_lora(dataclasses.replace(config, max_steps=3))
    AcceleratorState._reset_state(reset_partial_state=True)
    lora = load_file(str(result.lora_dir / "pytorch_lora_weights.safetensors"))
    lora_flat = np.concatenate([lora[k].float().numpy().ravel() for k in sorted(lora)])
    cache = load_cached(sorted((out / "latent_cache").glob("*.safetensors"))[0])
    report = json.loads((out / "report.json").read_text())
    return RunOutput(
        {
            "train_losses": np.array([loss for _, loss in result.losses]),
            "eval_losses": np.array([loss for _, loss in result.eval_losses]),
            "resumed_step3_loss": np.array([loss for _, loss in resumed.losses]),
            "lora_weights": lora_flat,
            "cache_x0": cache["x0"],
            "cache_control_object": cache["control_object"],
            "cache_prompt_embeds": cache["prompt_embeds"],
        },
        0.0,
        run_s,
        None,
        {"report_device": report["device"], "mixed_precision": report["mixed_precision"]},
    )


# ---------------------------------------------------------------------------------------------------------------------
# the run


BACKENDS = [
    Backend("raft", "models.raft.load_raft(path, device) + RaftFlow(model, device)", raft_setup, raft_run,
            default_variants, {"rel": 1e-3}, "model cast"),
    Backend("depth_anything", "models.depth_anything.load_depth_anything(path, device) + DepthAnythingPrior",
            depth_setup, depth_run, default_variants, {"rel": 1e-3}, "model cast"),
    Backend("sam2", "models.sam2.load_sam2(path, device) + Sam2VideoSegmenter(model, device)", sam2_setup, sam2_run,
            default_variants, {"fraction": 0.01}, "model cast"),
    Backend("clip", "models.clip.load_clip_encoder(path, device) + ImageEncoder.embed", clip_setup,
            encoder_run("clip"), default_variants, {"rel": 1e-3}, "model cast"),
    Backend("dino", "models.dino.load_dino_encoder(path, device) + ImageEncoder.embed", dino_setup,
            encoder_run("dino"), default_variants, {"rel": 1e-3}, "model cast"),
    Backend("inpaint", "models.inpaint.load_inpaint_pipeline(path, dtype, device, offload) + inpaint_image",
            inpaint_setup, inpaint_run, inpaint_variants, {"mean_abs": 1.0, "max_abs": 16}, "dtype option"),
    Backend("synth_vace", "synth.vace.synthesize_vace(config.model=path, device, dtype, offload) -> "
            "models.wan_vace.load_wan_vace_pipeline/place_pipeline", vace_setup, vace_run, vace_variants,
            {"mean_abs": 1.0, "max_abs": 16}, "dtype option"),
    Backend("train_lora", "train.lora.train_lora(device, mixed_precision) -> latent_cache.encode_sample, flow_loss, "
            "alignment", train_setup, train_run, train_variants, {"rel": 1e-3}, "mixed_precision option"),
]  # fmt: skip


def needs(name: str) -> list[str]:
    return {
        "inpaint": ["diffusers"],
        "synth_vace": ["diffusers"],
        "train_lora": ["diffusers", "peft", "accelerate"],
    }.get(name, [])


def missing_modules(names: list[str]) -> list[str]:
    import importlib.util

    return [n for n in names if importlib.util.find_spec(n) is None]


def run_backend(backend: Backend, work: Path, device: str, half: bool) -> dict[str, Any]:
    import torch

    record: dict[str, Any] = {"entry": backend.entry, "half_via": backend.half_via, "tolerance": backend.tolerance}
    missing = missing_modules(needs(backend.name))
    if missing:
        record.update(ok=False, skipped=f"not installed: {', '.join(missing)}", runs=[])
        return record
    folder = work / backend.name
    folder.mkdir()
    try:
        start = time.perf_counter()
        ctx = backend.setup(folder)
        record["setup_s"] = round(time.perf_counter() - start, 3)
    except Exception as err:  # a report, not a program: record, go on
        record.update(ok=False, setup_error=error_record(err), runs=[])
        return record
    runs = []
    reference: RunOutput | None = None
    cpu_by_dtype: dict[str, RunOutput] = {}
    for variant in backend.variants(device, half):
        run: dict[str, Any] = {"label": variant.label, "device": variant.device, "dtype": variant.dtype}
        if variant.options:
            run["options"] = variant.options
        cuda = variant.device.startswith("cuda") and torch.cuda.is_available()
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        try:
            output = backend.run(ctx, variant)
        except Exception as err:
            run.update(ok=False, **error_record(err))
            runs.append(run)
            continue
        finite = all(np.isfinite(as_numpy(v).astype(np.float64)).all() for v in output.outputs.values())
        run.update(
            ok=finite,
            outputs={k: describe(v) for k, v in output.outputs.items()},
            finite=finite,
            load_s=round(output.load_s, 4),
            run_s=round(output.run_s, 4),
        )
        if not finite:
            run["error"] = "non-finite output"
        if output.warm_run_s is not None:
            run["warm_run_s"] = round(output.warm_run_s, 4)
        if cuda:
            run["cuda_peak_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 2)
        if output.placement:
            run["placement"] = output.placement
        if output.extra:
            run["extra"] = output.extra
        if variant.device == "cpu" and variant.dtype != "fp32":
            cpu_by_dtype.setdefault(variant.dtype, output)
        elif variant.dtype in cpu_by_dtype:
            same = cpu_by_dtype[variant.dtype].outputs
            run["diff_vs_cpu_same_dtype"] = {k: difference(same[k], v) for k, v in output.outputs.items()}
        if reference is None and variant.device == "cpu" and variant.dtype == "fp32":
            reference = output
        elif reference is not None:
            diffs = {k: difference(reference.outputs[k], v) for k, v in output.outputs.items()}
            run["diff_vs_cpu"] = diffs
            if variant.dtype == "fp32":
                run["close"] = all(within(d, backend.tolerance) for d in diffs.values())
                run["ok"] = run["ok"] and run["close"]
            if "prompts" in output.extra:
                run["same_prompts_as_cpu"] = output.extra["prompts"] == reference.extra.get("prompts")
        runs.append(run)
    record["runs"] = runs
    record["ok"] = bool(runs) and all(r.get("ok") for r in runs)
    return record


def summarise(record: dict[str, Any]) -> dict[str, Any]:
    """Per backend: ok, and per run ok / largest difference from the CPU / first-call seconds / error."""
    runs = {}
    for run in record.get("runs", []):
        line: dict[str, Any] = {"ok": run.get("ok", False)}
        diffs = run.get("diff_vs_cpu", {})
        if diffs:
            values = [d.get("max_abs", d.get("differing_fraction", float("nan"))) for d in diffs.values()]
            line["max_diff"] = max(values)
            line["diff_kind"] = (
                "differing_fraction" if "differing_fraction" in next(iter(diffs.values())) else "max_abs"
            )
        if "run_s" in run:
            line["run_s"] = run["run_s"]
        if "warm_run_s" in run:
            line["warm_run_s"] = run["warm_run_s"]
        if "error" in run:
            line["error"] = run["error"]
        runs[run["label"]] = line
    summary: dict[str, Any] = {"ok": record["ok"], "runs": runs}
    for key in ("skipped", "setup_error"):
        if key in record:
            summary[key] = record[key]
    return summary


def environment(device: str) -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda_available": torch.cuda.is_available(),
        "device": device,
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "tf32_cudnn": torch.backends.cudnn.allow_tf32,
    }
    for name in ("transformers", "diffusers", "peft", "accelerate", "numpy"):
        try:
            info[name] = __import__(name).__version__
        except ImportError:
            info[name] = None
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
        info["cuda_runtime"] = torch.version.cuda
    return info


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default=None, help="device to compare with the CPU (default: cuda when present)")
    parser.add_argument(
        "--backends", default=None, help="comma list (default all): " + ",".join(b.name for b in BACKENDS)
    )
    parser.add_argument("--no-half", action="store_true", help="skip the bf16/fp16 runs")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args(argv)

    for name, value in (("DIFFUSERS_VERBOSITY", "error"), ("TRANSFORMERS_VERBOSITY", "error"),
                        ("HF_HUB_DISABLE_PROGRESS_BARS", "1"), ("HF_HUB_OFFLINE", "1"),
                        ("TOKENIZERS_PARALLELISM", "false")):  # fmt: skip
        os.environ.setdefault(name, value)
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        print(f"warning: {device} asked for but torch sees no CUDA device; running on the CPU only", file=sys.stderr)
        device = "cpu"
    # Float32 on the GPU without TF32, so the comparison with the CPU measures plumbing, not TF32 rounding.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False

    wanted = set(args.backends.split(",")) if args.backends else {b.name for b in BACKENDS}
    unknown = wanted - {b.name for b in BACKENDS}
    if unknown:
        parser.error(f"unknown backends: {', '.join(sorted(unknown))}")
    result: dict[str, Any] = {"environment": environment(device), "backends": {}}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        for backend in BACKENDS:
            if backend.name not in wanted:
                continue
            print(f"[gpu_check] {backend.name} ...", file=sys.stderr, flush=True)
            begin = time.perf_counter()
            record = run_backend(backend, Path(tmp), device, half=not args.no_half)
            record["seconds"] = round(time.perf_counter() - begin, 2)
            result["backends"][backend.name] = record
            print(f"[gpu_check] {backend.name}: ok={record['ok']} ({record['seconds']} s)", file=sys.stderr, flush=True)
    result["seconds"] = round(time.perf_counter() - start, 2)
    result["summary"] = {name: summarise(rec) for name, rec in result["backends"].items()}
    text = json.dumps(result, indent=1)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)
    return result


if __name__ == "__main__":
    main()
