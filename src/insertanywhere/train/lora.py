"""LoRA fine-tuning of Wan2.1-VACE on the insertion dataset (InsertAnywhere, arXiv 2512.17504, Sec. 3.3 / 4.1).

The paper fine-tunes Wan2.1-VACE-14B with a rank-128 LoRA at lr 1e-4 on 81-frame 832x480 clips of ROSE++.
Here:

* latents come from a cache (:mod:`latent_cache`): the VAE and the text encoder run once per sample;
* the objective is Wan's rectified flow (:mod:`flow_matching`), loss on the video frames (the reference frame is
  noised and denoised like at inference, but not scored: it is an input, not an output);
* optional optics-aware alignment (:mod:`alignment`): ``--align-weight`` > 0 adds the squared distance between the
  hidden states of ``--align-blocks`` under object-mask and (stop-gradient) extended-mask conditioning;
* accelerate places the model and runs bf16 autocast on a GPU (fp32 on the CPU); peft holds the LoRA (added with
  diffusers' ``add_adapter``, so the saved file is what ``WanVACEPipeline.load_lora_weights`` reads);
* every draw (sample, sigma, noise) is seeded by (seed, step), so a resumed run repeats the uninterrupted run's
  loss curve exactly; checkpoints hold the LoRA, the optimizer and the LR schedule.

Run folder::

    RUN/
      config.json                the settings
      latent_cache/<id>.safetensors
      log.jsonl                  {"kind": "train", "step", "loss", "flow_loss", "align_loss", "lr", "sigma",
                                  "sample", "seconds"} per step; {"kind": "eval", "step", "eval_loss"} per eval
      checkpoints/step_000250/   lora.safetensors, optimizer.pt, scheduler.pt, state.json
      lora/pytorch_lora_weights.safetensors   the diffusers-format LoRA (load with pipeline.load_lora_weights)
      report.json                steps, losses, seconds
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from insertanywhere.data.dataset_manifest import load_manifest
from insertanywhere.errors import InputError, UserError, require
from insertanywhere.io.atomic import atomic_dir, prepare_output_dir, write_json_atomic
from insertanywhere.progress import Progress, null_progress
from insertanywhere.train.alignment import alignment_loss, capture_block_outputs, parse_align_blocks
from insertanywhere.train.flow_matching import noisy_latents_and_target, shift_sigma, sigma_to_timestep
from insertanywhere.train.latent_cache import ClipGeometry, ConditioningConfig, build_latent_cache, load_cached

log = logging.getLogger(__name__)

DEFAULT_TARGET_MODULES = ("to_q", "to_k", "to_v", "to_out.0", "ffn.net.0.proj", "ffn.net.2", "proj_out")
"""Attention and feed-forward projections of every main and VACE block, plus every ``proj_out``: the output head
and the VACE blocks' hint projections (how the control video enters the backbone). diffusers' Wan LoRA scripts
adapt the attention only; on the tiny overfit probe (docs/training.md) the ``proj_out`` LoRAs took the loss to
0.65x in 40 steps where attention + feed-forward alone reached 0.77x."""
TINY_GEOMETRY = ClipGeometry(num_frames=9, height=32, width=32)
EVAL_SIGMAS = (0.25, 0.5, 0.75)


@dataclass
class LoraTrainConfig:
    """Settings of ``train-lora`` (defaults from the paper where it gives them).

    Attributes:
        dataset: folder made by ``dataset build``.
        out: run folder.
        model: WanVACEPipeline hub id or local folder; ignored with ``tiny``.
        tiny: train the tiny random model (tests, smoke runs).
        rank, alpha: LoRA rank and alpha (alpha None = rank, i.e. scale 1).
        target_modules: module-name suffixes that get a LoRA.
        learning_rate, weight_decay, warmup_steps, max_grad_norm: AdamW and its schedule (constant after warmup).
        max_steps: optimizer steps in total (a resumed run stops at the same total).
        grad_accum: micro-batches (of one clip) per optimizer step.
        geometry: frames and size of the training clips (None = 81x480x832, or 9x32x32 with ``tiny``).
        shift: flow-matching sigma shift (None = 3.0 below 720p, 5.0 at 720p, as at inference).
        align_weight: weight of the optics-aware alignment loss (0 = off).
        align_blocks: "i,j" transformer blocks to align (None = the middle block).
        checkpoint_every, keep_checkpoints: checkpoint cadence and how many to keep.
        resume: continue from the latest checkpoint in ``out`` when there is one.
        eval_every: evaluate the fixed-probe loss every this many steps (0 = at start and end only).
        eval_samples: the fixed probes use the first this many samples (3 sigmas each).
        seed: seeds sample order, sigmas and noise; same seed = same run.
        gradient_checkpointing: recompute block activations in the backward pass (memory for time).
        mixed_precision: "auto" (bf16 on CUDA, none on CPU), "bf16", "fp16" or "no".
        device: "cuda", "cpu", ... (None = CUDA when present).
        prompt: prompt for samples whose manifest prompt is empty.
        cache_dir: latent cache folder (None = RUN/latent_cache).
        conditioning: how the VACE input video and mask are made (match ``synth.vace``'s inference settings).
    """

    dataset: Path
    out: Path
    model: str | None = None
    tiny: bool = False
    rank: int = 128
    alpha: float | None = None
    target_modules: tuple[str, ...] = DEFAULT_TARGET_MODULES
    learning_rate: float = 1e-4
    weight_decay: float = 0.0
    warmup_steps: int = 0
    max_grad_norm: float = 1.0
    max_steps: int = 1000
    grad_accum: int = 1
    geometry: ClipGeometry | None = None
    shift: float | None = None
    align_weight: float = 0.0
    align_blocks: str | None = None
    checkpoint_every: int = 250
    keep_checkpoints: int = 2
    resume: bool = True
    eval_every: int = 0
    eval_samples: int = 4
    seed: int = 0
    gradient_checkpointing: bool = True
    mixed_precision: str = "auto"
    device: str | None = None
    prompt: str = ""
    cache_dir: Path | None = None
    conditioning: ConditioningConfig = field(default_factory=ConditioningConfig)

    def resolved_geometry(self) -> ClipGeometry:
        return self.geometry or (TINY_GEOMETRY if self.tiny else ClipGeometry())

    def resolved_shift(self) -> float:
        geometry = self.resolved_geometry()
        if self.shift is not None:
            return self.shift
        return 5.0 if geometry.height * geometry.width >= 0.75 * 720 * 1280 else 3.0

    def validate(self) -> None:
        if not self.tiny and not self.model:
            raise UserError("train-lora needs --model (hub id or local folder) or --tiny")
        if self.rank < 1 or self.max_steps < 1 or self.grad_accum < 1 or self.checkpoint_every < 1:
            raise UserError("--rank, --steps, --grad-accum and --checkpoint-every must be at least 1")
        if self.learning_rate <= 0 or self.align_weight < 0:
            raise UserError("--lr must be positive and --align-weight non-negative")
        if self.mixed_precision not in ("auto", "bf16", "fp16", "no"):
            raise UserError(f"--mixed-precision {self.mixed_precision!r}: use auto, bf16, fp16 or no")
        self.resolved_geometry().validate()
        self.conditioning.validate()

    def to_json(self) -> dict[str, Any]:
        record = asdict(self)
        record.update(dataset=str(self.dataset), out=str(self.out), cache_dir=str(self.cache_dir or ""))
        record["geometry"] = asdict(self.resolved_geometry())
        record["shift"] = self.resolved_shift()
        return record


@dataclass
class TrainResult:
    """What a run did. ``losses`` are this invocation's (step, loss) pairs; ``eval_losses`` (step, loss)."""

    steps: int
    start_step: int
    losses: list[tuple[int, float]]
    eval_losses: list[tuple[int, float]]
    lora_dir: Path
    seconds: float
    skipped: list[dict] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------------------------
# model


def _load_pipeline(config: LoraTrainConfig, device: str) -> tuple[Any, str]:
    """(WanVACEPipeline on ``device``, model key for the latent cache)."""
    from insertanywhere.models.wan_vace import load_wan_vace_pipeline, tiny_wan_vace_pipeline

    if config.tiny:
        return tiny_wan_vace_pipeline(seed=0).to(device), "tiny-seed0"
    dtype = "bf16" if device.startswith("cuda") else "fp32"
    pipeline = load_wan_vace_pipeline(config.model, dtype=dtype, device=device, offload="none", vae_tiling=True)
    return pipeline, str(config.model)


def add_lora(transformer: Any, rank: int, alpha: float | None, target_modules: tuple[str, ...]) -> list[Any]:
    """Freeze ``transformer``, add a LoRA adapter (peft, through diffusers' ``add_adapter``); return its parameters.

    The LoRA parameters are kept in float32 even when the base weights are bf16 (stable Adam updates).
    """
    torch = require("torch", "diffusion")
    peft = require("peft", "diffusion")
    transformer.requires_grad_(False)
    lora_config = peft.LoraConfig(
        r=rank, lora_alpha=alpha or rank, init_lora_weights=True, target_modules=list(target_modules)
    )
    try:
        transformer.add_adapter(lora_config)
    except ValueError as err:
        raise UserError(f"--target-modules {','.join(target_modules)}: {err}") from None
    parameters = [p for p in transformer.parameters() if p.requires_grad]
    for parameter in parameters:
        parameter.data = parameter.data.to(torch.float32)
    return parameters


def lora_state_dict(transformer: Any) -> dict[str, Any]:
    """The adapter's weights with peft's key names (``blocks.0.attn1.to_q.lora_A.weight``), on the CPU."""
    from peft.utils import get_peft_model_state_dict

    return {k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(transformer).items()}


def save_lora(transformer: Any, folder: str | os.PathLike[str]) -> Path:
    """Write ``folder/pytorch_lora_weights.safetensors`` in diffusers' format (``transformer.`` key prefix)."""
    diffusers = require("diffusers", "diffusion")
    folder = Path(folder)
    with atomic_dir(folder) as tmp:
        diffusers.WanVACEPipeline.save_lora_weights(
            tmp,
            transformer_lora_layers=lora_state_dict(transformer),
            # rank/alpha/targets travel with the weights, so an alpha != rank loads with the right scale.
            transformer_lora_adapter_metadata=transformer.peft_config["default"].to_dict(),
        )
    return folder


# ---------------------------------------------------------------------------------------------------------------
# one loss evaluation


def flow_loss(
    model: Any,
    blocks_owner: Any,
    cached: dict[str, Any],
    sigma: float,
    noise_seed: int,
    align_weight: float,
    align_blocks: list[int],
    device: Any,
    dtype: Any,
) -> tuple[Any, Any, Any]:
    """Loss of one cached sample at noise level ``sigma``: (total, flow, align) scalar tensors.

    Args:
        model: the (possibly accelerate-wrapped) transformer to call.
        blocks_owner: the unwrapped transformer whose ``blocks`` get the feature hooks.
        cached: tensors from :func:`latent_cache.load_cached` (on the CPU).
        sigma: noise level in [0, 1].
        noise_seed: seeds the (C, F, h, w) Gaussian noise (drawn on the CPU so every device gets the same).
        align_weight: 0 skips the second pass.
    """
    torch = require("torch", "diffusion")
    x0 = cached["x0"][None].to(device)
    generator = torch.Generator().manual_seed(noise_seed)
    noise = torch.randn(x0.shape, generator=generator, dtype=torch.float32).to(device)
    sigma_t = torch.tensor([sigma], dtype=torch.float32, device=device)
    x_t, target = noisy_latents_and_target(x0, noise, sigma_t)
    n_reference = int(cached["n_reference"])
    inputs = {
        "hidden_states": x_t.to(dtype),
        "timestep": sigma_to_timestep(sigma_t),
        "encoder_hidden_states": cached["prompt_embeds"][None].to(device, dtype),
        "return_dict": False,
    }
    object_control = cached["control_object"][None].to(device, dtype)
    align = torch.zeros((), device=device)
    if align_weight > 0:
        with capture_block_outputs(blocks_owner, align_blocks) as features:
            with torch.no_grad():
                model(control_hidden_states=cached["control_optics"][None].to(device, dtype), **inputs)
            optics_features = {b: f.detach() for b, f in features.items()}
            prediction = model(control_hidden_states=object_control, **inputs)[0]
            align = alignment_loss(dict(features), optics_features)
    else:
        prediction = model(control_hidden_states=object_control, **inputs)[0]
    flow = torch.nn.functional.mse_loss(prediction[:, :, n_reference:].float(), target[:, :, n_reference:].float())
    return flow + align_weight * align, flow, align


def _draw(seed: int, step: int, micro: int, n_samples: int, shift: float, process: int = 0) -> tuple[int, float, int]:
    """(sample index, sigma, noise seed) of micro-batch ``micro`` of optimizer step ``step`` on data-parallel
    process ``process``: a pure function, so a resumed run draws what the uninterrupted run drew."""
    rng = np.random.default_rng([seed, step, micro, process])
    index = int(rng.integers(n_samples))
    sigma = float(shift_sigma(float(rng.uniform(0.0, 1.0)), shift))
    return index, sigma, int(rng.integers(2**31 - 1))


def evaluate(model: Any, owner: Any, caches: list[dict[str, Any]], seed: int, device: Any, dtype: Any) -> float:
    """Mean flow loss over fixed probes: each of ``caches`` at sigma 0.25/0.5/0.75 with fixed noise (no alignment)."""
    torch = require("torch", "diffusion")
    losses = []
    with torch.no_grad():
        for index, cached in enumerate(caches):
            for number, sigma in enumerate(EVAL_SIGMAS):
                noise_seed = 1_000_003 * (seed + 1) + 97 * index + number
                _, flow, _ = flow_loss(model, owner, cached, sigma, noise_seed, 0.0, [], device, dtype)
                losses.append(float(flow))
    return float(np.mean(losses))


# ---------------------------------------------------------------------------------------------------------------
# checkpoints


def _checkpoints(out: Path) -> list[Path]:
    return sorted((out / "checkpoints").glob("step_*"))


def _save_checkpoint(out: Path, step: int, owner: Any, optimizer: Any, scheduler: Any, keep: int) -> None:
    torch = require("torch", "diffusion")
    from safetensors.torch import save_file

    folder = out / "checkpoints" / f"step_{step:06d}"
    with atomic_dir(folder) as tmp:
        save_file(lora_state_dict(owner), str(tmp / "lora.safetensors"))
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        (tmp / "state.json").write_text(json.dumps({"step": step}) + "\n")
    for old in _checkpoints(out)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def _load_checkpoint(folder: Path, owner: Any, optimizer: Any, scheduler: Any, device: Any) -> int:
    torch = require("torch", "diffusion")
    from peft.utils import set_peft_model_state_dict
    from safetensors.torch import load_file

    state = load_file(str(folder / "lora.safetensors"))
    result = set_peft_model_state_dict(owner, state)
    unexpected = getattr(result, "unexpected_keys", None)
    if unexpected:
        raise UserError(f"{folder}: checkpoint does not match this LoRA (rank/targets changed?); use another --out")
    optimizer.load_state_dict(torch.load(folder / "optimizer.pt", map_location=device, weights_only=True))
    scheduler.load_state_dict(torch.load(folder / "scheduler.pt", weights_only=True))
    return int(json.loads((folder / "state.json").read_text())["step"])


def _truncate_log(path: Path, last_step: int) -> None:
    """Drop log lines after ``last_step`` (steps a crashed run did past its last checkpoint); all of them when the
    run starts from scratch."""
    if not path.is_file():
        return
    if last_step == 0:
        path.unlink()
        return
    kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= last_step]
    path.write_text("".join(line + "\n" for line in kept))


# ---------------------------------------------------------------------------------------------------------------
# the run


def _check_resume_config(out: Path, config: LoraTrainConfig) -> None:
    path = out / "config.json"
    if not path.is_file():
        return
    previous = json.loads(path.read_text())
    for key in ("rank", "alpha", "target_modules", "tiny", "model", "seed", "geometry", "conditioning"):
        now = config.to_json()[key]
        if previous.get(key) != (list(now) if isinstance(now, tuple) else now):
            raise UserError(f"{out}: was trained with {key}={previous.get(key)!r}, not {now!r}; use another --out")


def train_lora(config: LoraTrainConfig, progress: Progress = null_progress) -> TrainResult:
    """Train (or resume) a LoRA; returns the run's losses and where the LoRA was saved."""
    torch = require("torch", "diffusion")
    accelerate = require("accelerate", "diffusion")
    require("peft", "diffusion")
    config.validate()
    start_time = time.perf_counter()
    dataset = Path(config.dataset)
    samples = load_manifest(dataset)
    out = prepare_output_dir(config.out, inputs=(dataset,))
    has_checkpoint = bool(_checkpoints(out))
    if has_checkpoint and config.resume:
        _check_resume_config(out, config)
    elif has_checkpoint:
        raise UserError(f"{out} holds checkpoints; pass --resume to continue or choose another --out")
    write_json_atomic(out / "config.json", config.to_json())

    device_name = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
    mixed = config.mixed_precision
    if mixed == "auto":
        mixed = "bf16" if device_name.startswith("cuda") else "no"
    accelerator = accelerate.Accelerator(mixed_precision=mixed, cpu=device_name == "cpu")
    device = accelerator.device
    torch.manual_seed(config.seed)

    geometry = config.resolved_geometry()
    pipeline, model_key = _load_pipeline(config, str(device))
    cache_files, skipped = build_latent_cache(
        pipeline,
        dataset,
        samples,
        config.cache_dir or out / "latent_cache",
        geometry,
        model_key,
        str(device),
        config.prompt,
        progress,
        config.conditioning,
    )
    if not cache_files:
        reasons = "; ".join(f"{s['id']}: {s['reason']}" for s in skipped[:3])
        raise InputError(f"{dataset}: no sample fits --frames {geometry.num_frames} ({reasons})")
    # Clips are loaded per step (a real dataset's latents do not fit in memory); the probes stay resident.
    probes = [load_cached(path) for path in cache_files[: max(1, config.eval_samples)]]
    # The VAE and the text encoder are done: give their memory back to the transformer.
    for name in ("vae", "text_encoder"):
        if getattr(pipeline, name, None) is not None:
            getattr(pipeline, name).to("cpu")
    if torch.cuda.is_available():
        torch.cuda.empty_cache()

    transformer = pipeline.transformer
    parameters = add_lora(transformer, config.rank, config.alpha, config.target_modules)
    align_blocks = parse_align_blocks(config.align_blocks, transformer.config.num_layers)
    if config.gradient_checkpointing:
        transformer.enable_gradient_checkpointing()
    transformer.train()
    optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=config.weight_decay)
    warmup = max(config.warmup_steps, 0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / (warmup + 1)))
    model, optimizer, scheduler = accelerator.prepare(transformer, optimizer, scheduler)
    owner = accelerator.unwrap_model(model)
    dtype = next(p for p in owner.parameters() if not p.requires_grad).dtype

    log_path = out / "log.jsonl"
    start_step = 0
    checkpoints = _checkpoints(out)
    if checkpoints and config.resume:
        start_step = _load_checkpoint(checkpoints[-1], owner, optimizer, scheduler, device)
        log.info("resuming from %s (step %d)", checkpoints[-1], start_step)
    _truncate_log(log_path, start_step)

    shift = config.resolved_shift()
    losses: list[tuple[int, float]] = []
    eval_losses: list[tuple[int, float]] = []

    def write_log(record: dict[str, Any]) -> None:
        if not accelerator.is_main_process:  # data-parallel runs: one log, one set of checkpoints
            return
        with open(log_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def run_eval(step: int) -> None:
        owner.eval()
        value = evaluate(model, owner, probes, config.seed, device, dtype)
        owner.train()
        eval_losses.append((step, value))
        write_log({"kind": "eval", "step": step, "eval_loss": value})

    if start_step == 0:
        run_eval(0)
    for step in range(start_step + 1, config.max_steps + 1):
        step_start = time.perf_counter()
        total = flow_total = align_total = 0.0
        drawn = []
        for micro in range(config.grad_accum):
            index, sigma, noise_seed = _draw(
                config.seed, step, micro, len(cache_files), shift, accelerator.process_index
            )
            drawn.append((index, sigma))
            cached = load_cached(cache_files[index])
            with accelerator.autocast():
                loss, flow, align = flow_loss(
                    model, owner, cached, sigma, noise_seed, config.align_weight, align_blocks, device, dtype
                )
            accelerator.backward(loss / config.grad_accum)
            total += float(loss.detach()) / config.grad_accum
            flow_total += float(flow.detach()) / config.grad_accum
            align_total += float(align.detach()) / config.grad_accum
        if not math.isfinite(total):
            raise UserError(f"the loss became {total} at step {step}; lower --lr or use --mixed-precision no")
        accelerator.clip_grad_norm_(parameters, config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append((step, total))
        write_log(
            {
                "kind": "train",
                "step": step,
                "loss": total,
                "flow_loss": flow_total,
                "align_loss": align_total,
                "lr": float(scheduler.get_last_lr()[0]),
                "sigma": [round(s, 5) for _, s in drawn],
                "sample": [cache_files[i].stem for i, _ in drawn],
                "seconds": round(time.perf_counter() - step_start, 4),
            }
        )
        progress("train", step, config.max_steps)
        if config.eval_every and step % config.eval_every == 0 and step != config.max_steps:
            run_eval(step)
        if step % config.checkpoint_every == 0 or step == config.max_steps:
            if accelerator.is_main_process:
                _save_checkpoint(out, step, owner, optimizer, scheduler, max(1, config.keep_checkpoints))
            accelerator.wait_for_everyone()
    if not eval_losses or eval_losses[-1][0] != config.max_steps:
        run_eval(config.max_steps)
    lora_dir = out / "lora"
    seconds = time.perf_counter() - start_time
    if not accelerator.is_main_process:
        return TrainResult(config.max_steps, start_step, losses, eval_losses, lora_dir, seconds, skipped)
    save_lora(owner, lora_dir)
    write_json_atomic(
        out / "report.json",
        {
            "steps": config.max_steps,
            "resumed_from": start_step,
            "samples": len(cache_files),
            "skipped": skipped,
            "first_loss": losses[0][1] if losses else None,
            "last_loss": losses[-1][1] if losses else None,
            "eval_losses": eval_losses,
            "lora": str(lora_dir / "pytorch_lora_weights.safetensors"),
            "seconds": round(seconds, 2),
            "device": str(device),
            "mixed_precision": mixed,
        },
    )
    return TrainResult(config.max_steps, start_step, losses, eval_losses, lora_dir, seconds, skipped)
