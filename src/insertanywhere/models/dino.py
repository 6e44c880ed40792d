"""DINO image encoder loader (transformers ``AutoModel``): a hub id or a local folder.

Default checkpoint: ``facebook/dinov2-base`` (DINOv2, the paper's DINO-I). VBench's subject
consistency uses DINO v1 ViT-B/16, available as ``facebook/dino-vitb16`` (a ``ViTModel``);
both load here. The embedding is the final-layer-normalised CLS token
(``last_hidden_state[:, 0]``), what ``torch.hub``'s DINO returns and DINOv2's pooler gives.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

from insertanywhere.models.image_encoder import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageEncoder,
    load_pretrained,
    normalisation_for,
    require_torch_transformers,
    resolve_model_source,
)

DEFAULT_DINO = "facebook/dinov2-base"
VBENCH_DINO = "facebook/dino-vitb16"
DINO_IMAGE_SIZE = 224


def _dino_cls_features(model: Any, pixel_values: Any) -> Any:
    """(B, D) CLS token after the final layer norm; ViT needs positional interpolation off 224x224."""
    kwargs = {}
    if "interpolate_pos_encoding" in inspect.signature(model.forward).parameters:
        kwargs["interpolate_pos_encoding"] = True
    return model(pixel_values=pixel_values, **kwargs).last_hidden_state[:, 0]


def load_dino_encoder(model: str | os.PathLike[str] = DEFAULT_DINO, device: str = "cpu") -> ImageEncoder:
    """Load a DINO / DINOv2 backbone as an ImageEncoder.

    Args:
        model: a folder saved with ``save_pretrained`` (``Dinov2Model`` or ``ViTModel``) or a hub id.
        device: torch device string.

    Raises:
        MissingDependencyError: torch/transformers missing, or the weights cannot be loaded.
        InputError: a folder path that does not exist or holds no config.json.
    """
    _, transformers = require_torch_transformers()
    source, is_local = resolve_model_source(model, "DINO model")
    dino_model = load_pretrained(transformers.AutoModel, source, is_local, "DINO model")
    dino_model = dino_model.eval().to(device)
    mean, std = normalisation_for(source, is_local, (IMAGENET_MEAN, IMAGENET_STD))
    return ImageEncoder(
        name=source,
        family="dino",
        model=dino_model,
        features=_dino_cls_features,
        image_size=DINO_IMAGE_SIZE,
        mean=mean,
        std=std,
        device=device,
    )
