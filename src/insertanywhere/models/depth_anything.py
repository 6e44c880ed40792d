"""Depth Anything V2 (Yang et al., NeurIPS 2024) through transformers' DepthAnythingForDepthEstimation.

One loader, ``load_depth_anything(path_or_hub_id)``: a local folder (config.json + weights) or a hub id
already in the local cache; nothing downloads. Relative checkpoints predict affine-invariant inverse
depth ("disparity"); metric checkpoints (``depth_estimation_type == "metric"``) predict metres.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from insertanywhere.errors import MissingDependencyError, require

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def load_depth_anything(model_path: str | None, device: str = "cpu") -> tuple[Any, dict[str, Any]]:
    """Load a Depth Anything (V2) model in eval mode.

    Args:
        model_path: local folder or cached hub id, e.g. ``depth-anything/Depth-Anything-V2-Small-hf``.
        device: torch device.

    Returns:
        (model, preprocessing settings ``{"input_size", "patch_size"}``).

    Raises:
        MissingDependencyError: torch/transformers missing, or no weights at ``model_path`` (one line).
    """
    if not model_path:
        raise MissingDependencyError(
            "depth-anything-v2 needs --model-path: a local folder with config.json and weights "
            "(e.g. a snapshot of depth-anything/Depth-Anything-V2-Small-hf)"
        )
    require("torch", "learned")
    transformers = require("transformers", "learned")
    try:
        model = transformers.DepthAnythingForDepthEstimation.from_pretrained(model_path, local_files_only=True)
    except (OSError, ValueError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise MissingDependencyError(
            f"no Depth Anything weights at {model_path!r} ({first_line[:160]}); download the checkpoint "
            "into a folder and pass that folder with --model-path"
        ) from None
    model.to(device).eval()
    patch_size = int(getattr(model.config.backbone_config, "patch_size", 14))
    return model, {"input_size": 518, "patch_size": patch_size}


def preprocess(image: np.ndarray, input_size: int, patch_size: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (1, 3, h, w) float32 normalised, short side ~ input_size, sides multiples of patch.

    The upstream transform keeps the aspect ratio and rounds each side to a multiple of the ViT patch.
    """
    height, width = image.shape[:2]
    scale = input_size / min(height, width)
    new_h = max(patch_size, round(height * scale / patch_size) * patch_size)
    new_w = max(patch_size, round(width * scale / patch_size) * patch_size)
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255.0
    normalised = (resized - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(normalised.transpose(2, 0, 1)[None])


@dataclass
class DepthAnythingPrior:
    """A DepthPrior (scene/depth.py) running Depth Anything on each frame."""

    model: Any
    settings: dict[str, Any]
    device: str = "cpu"
    name: str = "depth-anything-v2"

    def __post_init__(self) -> None:
        metric = getattr(self.model.config, "depth_estimation_type", "relative") == "metric"
        self.kind = "depth" if metric else "disparity"
        self.metric = metric

    def __call__(self, frame_index: int, image: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB -> (H, W) float32 disparity (relative models) or metres (metric models)."""
        import torch

        pixels = torch.from_numpy(preprocess(image, self.settings["input_size"], self.settings["patch_size"])).to(
            self.device
        )
        with torch.inference_mode():
            predicted = self.model(pixel_values=pixels).predicted_depth  # (1, h, w)
        output = predicted[0].float().cpu().numpy()
        height, width = image.shape[:2]
        resized = cv2.resize(output, (width, height), interpolation=cv2.INTER_LINEAR)
        return np.maximum(resized, 0.0).astype(np.float32)
