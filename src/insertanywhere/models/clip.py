"""CLIP image encoder loader (transformers ``CLIPModel``): a hub id or a local folder.

Default checkpoint: ``openai/clip-vit-base-patch32`` (the paper's CLIP-I can also be read
with ``openai/clip-vit-large-patch14``). The embedding is ``get_image_features``: the
pooled vision token through the visual projection, L2-normalised by ``ImageEncoder``.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

from insertanywhere.models.image_encoder import (
    CLIP_MEAN,
    CLIP_STD,
    ImageEncoder,
    load_pretrained,
    normalisation_for,
    require_torch_transformers,
    resolve_model_source,
)

DEFAULT_CLIP = "openai/clip-vit-base-patch32"


def _clip_image_features(model: Any, pixel_values: Any) -> Any:
    """(B, D) projected image embeddings; transformers 5 returns an output object, 4.x a tensor."""
    kwargs = {}
    if "interpolate_pos_encoding" in inspect.signature(model.get_image_features).parameters:
        kwargs["interpolate_pos_encoding"] = pixel_values.shape[-1] != pixel_values.shape[-2]
    output = model.get_image_features(pixel_values=pixel_values, **kwargs)
    return output if hasattr(output, "shape") else output.pooler_output


def load_clip_encoder(model: str | os.PathLike[str] = DEFAULT_CLIP, device: str = "cpu") -> ImageEncoder:
    """Load a CLIP model as an ImageEncoder.

    Args:
        model: a folder saved with ``CLIPModel.save_pretrained`` or a hub id (may download
            when the hub is reachable; never in tests).
        device: torch device string.

    Raises:
        MissingDependencyError: torch/transformers missing, or the weights cannot be loaded.
        InputError: a folder path that does not exist or holds no config.json.
    """
    _, transformers = require_torch_transformers()
    source, is_local = resolve_model_source(model, "CLIP model")
    clip_model = load_pretrained(transformers.CLIPModel, source, is_local, "CLIP model")
    clip_model = clip_model.eval().to(device)
    mean, std = normalisation_for(source, is_local, (CLIP_MEAN, CLIP_STD))
    return ImageEncoder(
        name=source,
        family="clip",
        model=clip_model,
        features=_clip_image_features,
        image_size=int(clip_model.config.vision_config.image_size),
        mean=mean,
        std=std,
        device=device,
    )
