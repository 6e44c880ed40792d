"""Shared glue of the image-embedding loaders (``models/clip.py``, ``models/dino.py``).

An ``ImageEncoder`` turns RGB ``uint8`` images into L2-normalised embeddings with a
transformers vision model. Preprocessing is done here in numpy/OpenCV (not by the
hub's processor) so that the evaluation controls exactly how a frame is resized and
cropped (VBench resizes the shorter side, CLIP-I pads a crop to a square).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from insertanywhere.errors import InputError, MissingDependencyError, require

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Resize = Literal["square", "shorter", "shorter_center_crop"]


def resolve_model_source(model: str | os.PathLike[str], what: str) -> tuple[str, bool]:
    """Tell a local model folder from a hub id.

    Args:
        model: a folder saved with ``save_pretrained`` or a hub id such as ``"facebook/dinov2-base"``.
        what: a human name for messages ("CLIP model").

    Returns:
        (source string for ``from_pretrained``, True when it is a local folder).

    Raises:
        InputError: a path that does not exist (starts with ``/ . ~`` or has several ``/``),
            a file instead of a folder, or a folder without ``config.json``.
    """
    text = str(model)
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise InputError(f"{path}: no config.json in this {what} folder; use save_pretrained or give a hub id")
        return str(path), True
    if path.exists():
        raise InputError(f"{path}: the {what} must be a folder saved with save_pretrained (or a hub id), not a file")
    if text.startswith(("/", ".", "~")) or text.count("/") != 1 or isinstance(model, Path):
        raise InputError(f"{text}: no such {what} folder; give an existing folder or a hub id like org/name")
    return text, False


def load_pretrained(loader: Callable[..., Any], source: str, is_local: bool, what: str) -> Any:
    """Call ``loader.from_pretrained`` and turn a failure into one line.

    A hub id may download on a machine with network access; offline it fails with a message
    saying to point at a local folder.
    """
    try:
        return loader.from_pretrained(source, local_files_only=is_local)
    except (OSError, ValueError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else err.__class__.__name__
        raise MissingDependencyError(
            f"cannot load the {what} {source!r} ({first_line}); give a local folder saved with save_pretrained"
        ) from None


def _read_preprocessor_stats(folder: Path) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    config_path = folder / "preprocessor_config.json"
    if not config_path.is_file():
        return None
    try:
        data = json.loads(config_path.read_text(encoding="utf-8"))
        return tuple(float(v) for v in data["image_mean"]), tuple(float(v) for v in data["image_std"])
    except (KeyError, TypeError, ValueError, json.JSONDecodeError):
        return None


def normalisation_for(source: str, is_local: bool, default: tuple[tuple[float, ...], tuple[float, ...]]):
    """(mean, std) from a local folder's ``preprocessor_config.json``, else the model family's default."""
    if is_local:
        stats = _read_preprocessor_stats(Path(source))
        if stats is not None:
            return stats
    return default


def resize_for_encoder(image: np.ndarray, size: int, mode: Resize) -> np.ndarray:
    """Resize an RGB image for a vision encoder.

    Args:
        image: (H, W, 3) uint8.
        size: the encoder's input side in pixels.
        mode: "square" resizes to (size, size) (callers pad to a square first);
            "shorter" scales the shorter side to ``size`` and keeps the aspect (VBench's DINO transform);
            "shorter_center_crop" then crops the centre square (VBench's / CLIP's transform).

    Returns:
        (h, w, 3) uint8. Area interpolation when shrinking (anti-aliased), bicubic when enlarging.
    """
    import cv2

    height, width = image.shape[:2]
    if mode == "square":
        target_w, target_h = size, size
    else:
        scale = size / min(height, width)
        target_w, target_h = max(size, round(width * scale)), max(size, round(height * scale))
    shrinking = target_w * target_h < width * height
    resized = cv2.resize(image, (target_w, target_h), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)
    if mode == "shorter_center_crop":
        top = (target_h - size) // 2
        left = (target_w - size) // 2
        resized = resized[top : top + size, left : left + size]
    return np.ascontiguousarray(resized)


@dataclass
class ImageEncoder:
    """A loaded vision model that embeds images.

    Attributes:
        name: the hub id or folder it was loaded from (recorded in reports).
        family: "clip" or "dino".
        model: the transformers module (eval mode).
        features: function (model, pixel_values (B, 3, h, w) float tensor) -> (B, D) tensor.
        image_size: input side in pixels (224 for the default checkpoints).
        mean, std: per-channel normalisation of [0, 1] RGB.
        device: torch device string.
    """

    name: str
    family: str
    model: Any
    features: Callable[[Any, Any], Any]
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    device: str = "cpu"

    def embed(self, images: Sequence[np.ndarray], resize: Resize = "square", batch_size: int = 8) -> np.ndarray:
        """L2-normalised embeddings of RGB images.

        Args:
            images: sequence of (H, W, 3) uint8 RGB images (sizes may differ in "square" mode).
            resize: see ``resize_for_encoder``; "shorter" keeps the aspect, so images of one call
                must share a size in that mode (frames of one video do).
            batch_size: images per forward pass.

        Returns:
            (N, D) float32, unit-norm rows.
        """
        import torch

        if len(images) == 0:
            return np.zeros((0, 0), dtype=np.float32)
        mean = np.asarray(self.mean, dtype=np.float32)
        std = np.asarray(self.std, dtype=np.float32)
        chunks: list[np.ndarray] = []
        for start in range(0, len(images), batch_size):
            batch = [resize_for_encoder(image, self.image_size, resize) for image in images[start : start + batch_size]]
            pixels = (np.stack(batch).astype(np.float32) / 255.0 - mean) / std
            pixel_values = torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous().to(self.device)
            with torch.no_grad():
                features = self.features(self.model, pixel_values).float()
                features = torch.nn.functional.normalize(features, dim=-1)
            chunks.append(features.cpu().numpy())
        return np.concatenate(chunks).astype(np.float32)


def require_torch_transformers() -> tuple[Any, Any]:
    """Import torch and transformers, or raise MissingDependencyError in one line."""
    torch = require("torch", "learned")
    transformers = require("transformers", "learned")
    return torch, transformers
