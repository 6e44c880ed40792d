"""First-frame anchor: an image-inpainting model (FLUX.1 Fill or SDXL inpainting) through diffusers.

The paper anchors the video on a first frame made by an image-inpainting model, which is better at one sharp,
well-lit frame than the video model; the video model then keeps that frame (given as known) and carries it through
time. We inpaint the composited frame 0 (the object already rendered in place) at ``strength`` < 1, so the
inpainting model harmonises the object and its shadow with the scene while keeping the object's identity and pose.

Heavy imports happen inside the functions. Hub ids: ``black-forest-labs/FLUX.1-Fill-dev`` (FluxFillPipeline),
``diffusers/stable-diffusion-xl-1.0-inpainting-0.1`` (StableDiffusionXLInpaintPipeline); a local folder is any
``save_pretrained`` output of an inpainting pipeline (``model_index.json`` names its class).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from insertanywhere.errors import InputError, MissingDependencyError, require

INPAINT_PIPELINE_CLASSES = (
    "FluxFillPipeline",
    "FluxInpaintPipeline",
    "StableDiffusionXLInpaintPipeline",
    "StableDiffusionInpaintPipeline",
)


def _pipeline_class_name(model: str) -> str | None:
    """The pipeline class a model names: ``model_index.json``'s ``_class_name`` for a folder, else a name guess."""
    folder = Path(model).expanduser()
    if folder.is_dir():
        index = folder / "model_index.json"
        if not index.is_file():
            raise InputError(
                f"{model} holds no model_index.json; point --anchor-model at a diffusers inpainting folder"
            )
        return str(json.loads(index.read_text()).get("_class_name"))
    lowered = model.lower()
    if "flux" in lowered and "fill" in lowered:
        return "FluxFillPipeline"
    return None  # let AutoPipelineForInpainting read the hub config


# Peak GPU memory (GiB) with model CPU offload, bf16: the largest component plus activations at about 1 MP.
# FLUX.1 Fill: 11.9 B-parameter transformer (22 GiB) + ~2 GiB; SDXL: 2.6 B UNet (4.8 GiB) + ~2 GiB (the T5-XXL / CLIP
# text encoders run before and leave the device).
INPAINT_MEMORY_GIB = {"FluxFillPipeline": 24.0, "FluxInpaintPipeline": 24.0, "StableDiffusionXLInpaintPipeline": 7.0}


def estimate_inpaint_memory_line(model: str) -> str:
    """One line on the GPU memory the first-frame inpainting model needs (model CPU offload, bf16)."""
    try:
        class_name = _pipeline_class_name(model)
    except InputError:
        class_name = None
    gib = INPAINT_MEMORY_GIB.get(class_name or "", 7.0 if "xl" in model.lower() else 24.0)
    return f"first-frame inpainting model {model}: about {gib:.0f} GiB of GPU memory (model CPU offload, bf16)"


def load_inpaint_pipeline(
    model: str, dtype: str = "bf16", device: str = "cuda", offload: str = "model", local_files_only: bool = False
) -> Any:
    """Load an image-inpainting pipeline from a hub id or a local folder and place it for inference.

    Args:
        model: hub id or local folder (see the module docstring).
        dtype: ``"bf16"``, ``"fp16"`` or ``"fp32"``.
        device: the torch device to run on.
        offload: ``"model"`` (diffusers' model CPU offload), ``"group"`` (treated as ``"model"`` here: the anchor runs
            once) or ``"none"``.

    Raises:
        InputError: the folder does not hold an inpainting pipeline.
        MissingDependencyError: diffusers is missing, or the weights cannot be found or fetched.
    """
    torch = require("torch", "diffusion")
    diffusers = require("diffusers", "diffusion")
    from insertanywhere.models.wan_vace import dtype_kwargs, torch_dtype

    class_name = _pipeline_class_name(model)
    if class_name is not None and class_name not in INPAINT_PIPELINE_CLASSES:
        raise InputError(
            f"{model} is a {class_name}, not an inpainting pipeline; use one of {', '.join(INPAINT_PIPELINE_CLASSES)}"
        )
    source = str(Path(model).expanduser()) if Path(model).expanduser().is_dir() else model
    pipeline_class = getattr(diffusers, class_name) if class_name else diffusers.AutoPipelineForInpainting
    try:
        pipeline = pipeline_class.from_pretrained(
            source, **dtype_kwargs(torch_dtype(dtype)), local_files_only=local_files_only
        )
    except OSError as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise MissingDependencyError(
            f"cannot load the inpainting model {model!r} ({first_line}); download it with `huggingface-cli download "
            f"{model}` or point --anchor-model at a local folder"
        ) from None
    if torch.device(device).type == "cpu" or offload == "none":
        pipeline.to(device)
    else:
        pipeline.enable_model_cpu_offload(device=device)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def inpaint_size(height: int, width: int, max_area: int = 1024 * 1024, multiple: int = 16) -> tuple[int, int]:
    """The size the image model runs at: aspect kept, area at most ``max_area``, sides multiples of 16 (FLUX packs
    2x2 latents of an 8x VAE; SDXL needs multiples of 8)."""
    scale = min(1.0, math.sqrt(max_area / float(height * width)))
    return (
        max(multiple, int(height * scale) // multiple * multiple),
        max(multiple, int(width * scale) // multiple * multiple),
    )


def inpaint_image(
    pipeline: Any,
    image: np.ndarray,
    mask: np.ndarray,
    prompt: str,
    seed: int = 0,
    steps: int = 30,
    guidance_scale: float | None = None,
    strength: float = 0.6,
    max_area: int = 1024 * 1024,
) -> np.ndarray:
    """Inpaint ``mask`` of ``image`` with an image-inpainting pipeline; returns the whole frame at the input size.

    Args:
        pipeline: a diffusers inpainting pipeline (FluxFillPipeline, StableDiffusion(XL)InpaintPipeline).
        image: (H, W, 3) uint8, the frame to inpaint (here: the composited first frame).
        mask: (H, W) bool, True = repaint.
        prompt: what to paint.
        seed: generator seed (CPU generator, so the result does not depend on the device).
        steps: denoising steps.
        guidance_scale: None = the pipeline's default (FLUX Fill is distilled: 30; SD: 7.5).
        strength: how much of the input is kept under the mask (1 = repaint from noise, 0 = keep).
        max_area: the largest pixel area the model runs at.

    Returns:
        (H, W, 3) uint8: the pipeline's frame resized back to the input size. Pasting into the input is the
        caller's business (it knows the feathered region).
    """
    torch = require("torch", "diffusion")
    from PIL import Image

    height, width = image.shape[:2]
    run_height, run_width = inpaint_size(height, width, max_area)
    image_small = cv2.resize(image, (run_width, run_height), interpolation=cv2.INTER_AREA)
    # Any covered pixel stays in the mask, so the repainted area never shrinks.
    mask_small = cv2.resize(mask.astype(np.float32), (run_width, run_height), interpolation=cv2.INTER_AREA) > 1e-3
    kwargs: dict[str, Any] = {
        "prompt": prompt,
        "image": Image.fromarray(image_small),
        "mask_image": Image.fromarray(mask_small.astype(np.uint8) * 255, mode="L"),
        "height": run_height,
        "width": run_width,
        "num_inference_steps": steps,
        "strength": strength,
        "generator": torch.Generator(device="cpu").manual_seed(seed),
        "output_type": "np",
    }
    if guidance_scale is not None:
        kwargs["guidance_scale"] = guidance_scale
    painted = pipeline(**kwargs).images[0]  # (h, w, 3) float in [0, 1]
    painted_uint8 = np.clip(np.rint(np.asarray(painted) * 255.0), 0, 255).astype(np.uint8)
    if painted_uint8.shape[:2] == (height, width):
        return painted_uint8
    return cv2.resize(painted_uint8, (width, height), interpolation=cv2.INTER_CUBIC)
