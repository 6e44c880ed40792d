"""Wan2.1-VACE through diffusers: the pipeline loader, the tiny random components tests use, a memory estimate.

Heavy imports (torch, diffusers, transformers) happen inside the functions, never at import time, so
``import insertanywhere.models.wan_vace`` is free on a machine without the ``diffusion`` extra.

Hub ids: ``Wan-AI/Wan2.1-VACE-1.3B-diffusers`` (480p) and ``Wan-AI/Wan2.1-VACE-14B-diffusers`` (480p and 720p).
A local folder is any ``save_pretrained`` output of a ``WanVACEPipeline`` (``model_index.json`` at its root).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from insertanywhere.errors import InputError, MissingDependencyError, UserError, require

if TYPE_CHECKING:
    import torch

DEFAULT_MODEL = "Wan-AI/Wan2.1-VACE-1.3B-diffusers"
OFFLOAD_MODES = ("model", "group", "none")
DTYPES = ("bf16", "fp16", "fp32")


# ---------------------------------------------------------------------------------------------------------------------
# tiny components (tests, and the LoRA trainer's tests)
# ---------------------------------------------------------------------------------------------------------------------

TINY_TEXT_DIM = 32
TINY_VOCAB = ("<pad>", "</s>", "<unk>", "a", "an", "the", "object", "video", "on", "in", "of", "red", "blue", "cup")


def tiny_tokenizer() -> Any:
    """A word-level tokenizer built in memory (nothing downloaded), wrapped as a PreTrainedTokenizerFast.

    Ids: ``<pad>`` 0, ``</s>`` 1, ``<unk>`` 2, then the small word list of TINY_VOCAB; any other word maps to ``<unk>``.
    """
    require("tokenizers", "diffusion")
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {word: index for index, word in enumerate(TINY_VOCAB)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    # T5 appends </s> to every sequence; the pipeline counts the attention mask to cut the padding.
    backend.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", model_max_length=512
    )


def tiny_wan_vace_components(seed: int = 0) -> dict[str, Any]:
    """Tiny, randomly initialised WanVACEPipeline components built from configs (nothing downloaded).

    The transformer and VAE use the small values of diffusers' own ``tests/pipelines/wan/test_wan_vace.py``;
    the text encoder is a 2-layer UMT5 encoder whose width matches the transformer's ``text_dim`` (32).
    ``rope_max_seq_len`` is 64, so frames up to 64 * 16 = 1024 pixels wide fit (it must be >= max(H, W) / 16).

    Args:
        seed: torch seed used before building each random module, so two calls give equal weights.

    Returns:
        ``{"transformer", "vae", "scheduler", "text_encoder", "tokenizer"}`` as ``WanVACEPipeline(**components)`` takes
        them; all modules in float32 on the CPU.
    """
    torch = require("torch", "diffusion")
    diffusers = require("diffusers", "diffusion")
    transformers = require("transformers", "diffusion")
    require_prompt_cleaner()

    torch.manual_seed(seed)
    vae = diffusers.AutoencoderKLWan(
        base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
    )
    torch.manual_seed(seed)
    transformer = diffusers.WanVACETransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=16,
        out_channels=16,
        text_dim=TINY_TEXT_DIM,
        freq_dim=256,
        ffn_dim=32,
        num_layers=3,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=64,
        vace_layers=[0, 2],
        vace_in_channels=96,
    )
    torch.manual_seed(seed)
    text_config = transformers.UMT5Config(
        vocab_size=len(TINY_VOCAB),
        d_model=TINY_TEXT_DIM,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=32,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    text_encoder = transformers.UMT5EncoderModel(text_config).eval()
    # The real checkpoints ship UniPC in flow mode; flow_shift is set per resolution at run time (set_flow_shift).
    scheduler = diffusers.UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, num_train_timesteps=1000, flow_shift=3.0
    )
    return {
        "transformer": transformer.eval(),
        "vae": vae.eval(),
        "scheduler": scheduler,
        "text_encoder": text_encoder,
        "tokenizer": tiny_tokenizer(),
    }


def tiny_wan_vace_pipeline(seed: int = 0) -> Any:
    """A ``WanVACEPipeline`` assembled from ``tiny_wan_vace_components(seed)`` (float32, CPU)."""
    diffusers = require("diffusers", "diffusion")
    pipeline = diffusers.WanVACEPipeline(**tiny_wan_vace_components(seed))
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


# ---------------------------------------------------------------------------------------------------------------------
# loading the real model
# ---------------------------------------------------------------------------------------------------------------------


def require_prompt_cleaner() -> None:
    """ftfy, or MissingDependencyError: diffusers' Wan pipelines clean every prompt with ``ftfy.fix_text`` but import
    it only when present, so without it ``encode_prompt`` dies with ``NameError: name 'ftfy' is not defined``
    (seen on a GPU machine whose image lacks ftfy) after the model has loaded."""
    require("ftfy", "diffusion")


def torch_dtype(name: str | torch.dtype) -> torch.dtype:
    """``"bf16"|"fp16"|"fp32"`` (or a torch.dtype, returned as is) -> torch.dtype; anything else is a UserError."""
    torch = require("torch", "diffusion")
    if isinstance(name, torch.dtype):
        return name
    table = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
    if name not in table:
        raise UserError(f"unknown dtype {name!r}; use one of {', '.join(DTYPES)}")
    return table[name]


def dtype_kwargs(dtype: torch.dtype) -> dict[str, Any]:
    """``from_pretrained``'s dtype keyword: ``dtype`` from diffusers 0.42 (``torch_dtype`` is deprecated there)."""
    import diffusers

    major, minor = (int(part) for part in diffusers.__version__.split(".")[:2])
    return {"dtype": dtype} if (major, minor) >= (0, 42) else {"torch_dtype": dtype}


def resolve_device(device: str | None, allow_cpu: bool) -> str:
    """The torch device to run on: ``device`` when given (checked against what torch sees), else ``cuda`` (or
    ``mps``) when present (``models.device.resolve_torch_device``; None means "auto").

    Raises:
        UserError: no accelerator is present and ``allow_cpu`` is False (a real clip would take hours on a CPU),
            or the named device is not usable here.
    """
    from insertanywhere.models.device import resolve_torch_device

    resolved = resolve_torch_device("auto" if device is None else device, extra="diffusion")
    if resolved == "cpu" and not allow_cpu:
        found = "--device cpu was asked for" if device == "cpu" else "none found"
        raise UserError(
            f"--synth vace needs a GPU ({found}); run on a CUDA machine, use --synth composite, "
            "or pass --allow-cpu to run the diffusion model on the CPU (hours per clip)"
        )
    return resolved


def _is_local_folder(model: str) -> bool:
    return Path(model).expanduser().is_dir()


def load_wan_vace_pipeline(
    model: str = DEFAULT_MODEL,
    dtype: str | torch.dtype = "bf16",
    device: str = "cuda",
    offload: str = "model",
    vae_tiling: bool = True,
    vae_fp32: bool = True,
    lora: str | Path | None = None,
    lora_scale: float = 1.0,
    local_files_only: bool = False,
) -> Any:
    """Load a ``WanVACEPipeline`` from a hub id or a local folder and place it for inference.

    Args:
        model: hub id (``Wan-AI/Wan2.1-VACE-1.3B-diffusers``, ``...-14B-diffusers``) or a folder written by
            ``WanVACEPipeline.save_pretrained`` (``model_index.json`` at its root).
        dtype: transformer and text-encoder dtype, ``"bf16"`` (default), ``"fp16"``, ``"fp32"`` or a torch.dtype.
        device: where the computation runs (``"cuda"``, ``"cuda:1"``, ``"cpu"``).
        offload: ``"model"``: each component moves to ``device`` only while it runs (diffusers' model CPU offload;
            peak = the largest component); ``"group"``: the transformer's blocks stream to ``device`` one by one
            (block-level group offloading; lowest memory, slower); ``"none"``: everything on ``device``.
            Offloading is skipped when ``device`` is the CPU.
        vae_tiling: decode and encode the video in spatial tiles (much lower VAE peak memory at 480p/720p).
        vae_fp32: keep the VAE in float32, as the Wan authors recommend for decoding quality.
        lora: optional LoRA file or folder (see ``load_lora``), loaded before the pipeline is placed.
        lora_scale: the LoRA's weight.
        local_files_only: do not reach the hub (a hub id must then be in the local cache).

    Raises:
        MissingDependencyError: diffusers/transformers missing, or the weights cannot be found or fetched.
        InputError: ``model`` is a folder that does not hold a WanVACEPipeline.
    """
    torch = require("torch", "diffusion")
    diffusers = require("diffusers", "diffusion")
    require("transformers", "diffusion")
    require_prompt_cleaner()
    if offload not in OFFLOAD_MODES:
        raise UserError(f"unknown offload mode {offload!r}; use one of {', '.join(OFFLOAD_MODES)}")
    compute_dtype = torch_dtype(dtype)
    source = str(Path(model).expanduser()) if _is_local_folder(model) else model
    if _is_local_folder(model) and not (Path(source) / "model_index.json").is_file():
        raise InputError(f"{model} holds no model_index.json; point --model at a WanVACEPipeline folder or a hub id")
    try:
        vae = diffusers.AutoencoderKLWan.from_pretrained(
            source,
            subfolder="vae",
            **dtype_kwargs(torch.float32 if vae_fp32 else compute_dtype),
            local_files_only=local_files_only,
        )
        pipeline = diffusers.WanVACEPipeline.from_pretrained(
            source, vae=vae, **dtype_kwargs(compute_dtype), local_files_only=local_files_only
        )
    except OSError as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise MissingDependencyError(
            f"cannot load Wan2.1-VACE from {model!r} ({first_line}); download it with "
            f"`huggingface-cli download {DEFAULT_MODEL}` or point --model at a local folder"
        ) from None
    if vae_tiling:
        pipeline.vae.enable_tiling()
    if lora is not None:
        load_lora(pipeline, lora, lora_scale)
    place_pipeline(pipeline, device, offload)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


LORA_ADAPTER = "insertanywhere"


def load_lora(pipeline: Any, lora: str | Path, scale: float = 1.0, adapter_name: str = LORA_ADAPTER) -> str:
    """Load a LoRA into the pipeline's transformer and set its scale; returns the adapter name.

    Args:
        pipeline: a ``WanVACEPipeline`` (diffusers' ``WanLoraLoaderMixin``).
        lora: a ``.safetensors`` file, or a folder holding ``pytorch_lora_weights.safetensors``. Key names may be
            diffusers/peft (``transformer.blocks.0.attn1.to_q.lora_A.weight``), the original Wan/ComfyUI ones
            (``diffusion_model.blocks.0.self_attn.q.lora_A.weight``) or Kohya/musubi ones (``lora_unet_blocks_0_...``):
            diffusers' ``lora_state_dict`` converts the last two.
        scale: the adapter's weight (0 = off, 1 = as trained).

    Raises:
        InputError: the path does not exist or does not hold a LoRA for this transformer.
        MissingDependencyError: peft is not installed.
    """
    require("peft", "diffusion")
    path = Path(lora).expanduser()
    if not path.exists():
        raise InputError(f"LoRA {lora} does not exist; pass a .safetensors file or a folder with one")
    try:
        if path.is_file():
            pipeline.load_lora_weights(str(path.parent), weight_name=path.name, adapter_name=adapter_name)
        else:
            pipeline.load_lora_weights(str(path), adapter_name=adapter_name)
    except (ValueError, KeyError, OSError, RuntimeError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(f"cannot load LoRA {lora} into Wan2.1-VACE ({first_line})") from None
    loaded = {name for names in pipeline.get_list_adapters().values() for name in names}
    if adapter_name not in loaded:
        # diffusers only warns when no key matches the transformer; a LoRA for another model must not pass silently.
        raise InputError(f"cannot load LoRA {lora} into Wan2.1-VACE (none of its keys names a layer of this model)")
    pipeline.set_adapters([adapter_name], [float(scale)])
    return adapter_name


def unload_lora(pipeline: Any) -> None:
    """Remove every LoRA from the pipeline, restoring the base weights exactly."""
    pipeline.unload_lora_weights()


def place_pipeline(pipeline: Any, device: str, offload: str) -> None:
    """Move ``pipeline`` to ``device`` or set up its offloading (see ``load_wan_vace_pipeline``'s ``offload``)."""
    torch = require("torch", "diffusion")
    if torch.device(device).type == "cpu" or offload == "none":
        pipeline.to(device)
    elif offload == "model":
        pipeline.enable_model_cpu_offload(device=device)
    elif offload == "group":
        # Block-level groups of one block with CUDA streams overlap the copy of block i+1 with the compute of
        # block i (diffusers' group offloading guide), for the transformer and the text encoder. The VAE (0.5 GB in
        # fp32) stays on the device: its causal frame cache gains nothing from streaming.
        pipeline.enable_group_offload(
            onload_device=torch.device(device),
            offload_device=torch.device("cpu"),
            offload_type="block_level",
            num_blocks_per_group=1,
            use_stream=torch.device(device).type == "cuda",
            exclude_modules=["vae"],
        )
    else:
        raise UserError(f"unknown offload mode {offload!r}; use one of {', '.join(OFFLOAD_MODES)}")


def set_flow_shift(pipeline: Any, height: int, width: int, flow_shift: float | None = None) -> float:
    """Set the flow-matching shift of the pipeline's scheduler for this resolution and return it.

    The Wan authors use shift 3.0 at 480p and 5.0 at 720p (diffusers' WanVACEPipeline example); we switch at an area
    of 720 * 1280 * 0.75 pixels. UniPC takes ``flow_shift``; FlowMatchEulerDiscreteScheduler takes ``shift``.
    """
    diffusers = require("diffusers", "diffusion")
    if flow_shift is None:
        flow_shift = 5.0 if height * width >= 0.75 * 720 * 1280 else 3.0
    scheduler = pipeline.scheduler
    if isinstance(scheduler, diffusers.UniPCMultistepScheduler):
        pipeline.scheduler = diffusers.UniPCMultistepScheduler.from_config(scheduler.config, flow_shift=flow_shift)
    elif isinstance(scheduler, diffusers.FlowMatchEulerDiscreteScheduler):
        pipeline.scheduler = diffusers.FlowMatchEulerDiscreteScheduler.from_config(scheduler.config, shift=flow_shift)
    return float(flow_shift)


# ---------------------------------------------------------------------------------------------------------------------
# memory estimate (said before loading)
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TransformerShape:
    """The numbers of a WanVACETransformer3DModel config that its size and activations depend on."""

    dim: int  # num_attention_heads * attention_head_dim
    ffn_dim: int
    num_layers: int
    num_vace_layers: int
    text_dim: int = 4096
    in_channels: int = 16
    vace_in_channels: int = 96

    def parameter_count(self) -> int:
        """Parameters: per block 4 d^2 self-attention + 4 d^2 cross-attention + 2 d f feed-forward (+ norms/biases),
        for the main and the VACE blocks, plus patch embeddings and the text/time embedders."""
        d, f = self.dim, self.ffn_dim
        block = 8 * d * d + 2 * d * f + 12 * d + f
        vace_block = block + 2 * d * d  # VACE blocks add a zero-initialised before/after projection
        embeds = (self.in_channels + self.vace_in_channels) * 4 * d + self.text_dim * d + d * d + 256 * d + 6 * d * d
        return self.num_layers * block + self.num_vace_layers * vace_block + embeds


# Wan2.1 configs (Wan-AI/Wan2.1-VACE-*-diffusers transformer/config.json).
KNOWN_TRANSFORMERS = {
    "1.3B": TransformerShape(dim=1536, ffn_dim=8960, num_layers=30, num_vace_layers=15),
    "14B": TransformerShape(dim=5120, ffn_dim=13824, num_layers=40, num_vace_layers=8),
}
UMT5_XXL_ENCODER_PARAMS = 5.7e9  # google/umt5-xxl encoder, as Wan ships it
WAN_VAE_PARAMS = 0.127e9


def transformer_shape(model: str) -> TransformerShape:
    """The transformer shape of ``model``: from ``transformer/config.json`` in a local folder, else from the name
    (``14B`` in it -> 14B, otherwise 1.3B)."""
    config_path = Path(model).expanduser() / "transformer" / "config.json"
    if config_path.is_file():
        config = json.loads(config_path.read_text())
        return TransformerShape(
            dim=int(config["num_attention_heads"] * config["attention_head_dim"]),
            ffn_dim=int(config["ffn_dim"]),
            num_layers=int(config["num_layers"]),
            num_vace_layers=len(config.get("vace_layers", [])),
            text_dim=int(config.get("text_dim", 4096)),
            in_channels=int(config.get("in_channels", 16)),
            vace_in_channels=int(config.get("vace_in_channels", 96)),
        )
    return KNOWN_TRANSFORMERS["14B" if "14b" in model.lower() else "1.3B"]


@dataclass(frozen=True)
class MemoryEstimate:
    """Peak accelerator memory of one VACE window, in GiB, split by what takes it."""

    weights_gib: float  # weights resident on the accelerator at the peak
    activations_gib: float  # transformer activations of one forward (CFG passes run one after the other)
    vae_gib: float  # VAE encode/decode working memory
    total_gib: float

    def line(self, model: str, height: int, width: int, frames: int, offload: str) -> str:
        return (
            f"Wan2.1-VACE {model} at {width}x{height}, {frames} frames/window, offload={offload}: "
            f"about {self.total_gib:.0f} GiB of GPU memory (weights {self.weights_gib:.1f}, "
            f"activations {self.activations_gib:.1f}, VAE {self.vae_gib:.1f})"
        )


def estimate_vace_memory(
    model: str, height: int, width: int, frames: int, dtype: str = "bf16", offload: str = "model", vae_tiling=True
) -> MemoryEstimate:
    """A rough peak-GPU-memory estimate for one window (see docs/vace.md for the derivation and its error bars).

    Args:
        model: hub id or local folder (its size is read from the config or guessed from the name).
        height, width: generation size in pixels (multiples of 16).
        frames: frames per window (4k+1); the reference image adds one latent frame.

    Model: weights = bytes/param * params resident (offload "none": all components; "model": the largest one, the
    transformer; "group": two transformer blocks plus the embedders). Tokens L = (1 + (frames-1)/4 + 1) * H/16 * W/16.
    Transformer activations ~ L * (6 d + 2 f) * bytes (hidden state, q/k/v/out, the feed-forward's hidden layer,
    the VACE hints kept for every VACE block: + n_vace * L * d * bytes). VAE: the causal decoder holds about
    4 frames * H * W * 384 channels * 4 bytes * 3 live tensors, divided by the tile count when tiling (~3 at 480p).
    """
    shape = transformer_shape(model)
    bytes_per = 4 if dtype == "fp32" else 2
    transformer_bytes = shape.parameter_count() * bytes_per
    text_bytes = UMT5_XXL_ENCODER_PARAMS * bytes_per
    vae_weight_bytes = WAN_VAE_PARAMS * 4
    latent_frames = 1 + (max(frames, 1) - 1) // 4 + 1
    tokens = latent_frames * math.ceil(height / 16) * math.ceil(width / 16)
    activations = tokens * (6 * shape.dim + 2 * shape.ffn_dim) * bytes_per
    activations += shape.num_vace_layers * tokens * shape.dim * bytes_per
    vae = 4 * height * width * 384 * 4 * 3
    if vae_tiling:
        vae /= max(1.0, (height * width) / (256 * 256) / 1.5)
    # The three phases (text encoding, denoising, VAE) run one after the other; the peak is the worst phase.
    if offload == "none":
        weights = transformer_bytes + text_bytes + vae_weight_bytes
    elif offload == "model":
        weights = transformer_bytes if transformer_bytes + activations >= text_bytes else text_bytes
    else:
        weights = 2 * transformer_bytes / max(shape.num_layers + shape.num_vace_layers, 1)
    denoise_peak = (weights if offload != "model" else transformer_bytes) + activations
    vae_peak = (weights if offload == "none" else vae_weight_bytes) + vae
    text_peak = text_bytes if offload == "model" else weights
    gib = 1024**3
    overhead = 1.0 * gib  # CUDA context, allocator fragmentation
    total = max(denoise_peak, vae_peak, text_peak) + overhead
    return MemoryEstimate(weights / gib, activations / gib, vae / gib, total / gib)
