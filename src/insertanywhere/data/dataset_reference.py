"""Reference-image selection for an insertion sample (InsertAnywhere, arXiv 2512.17504, Sec. 3.3).

VACE is conditioned on one reference image of the object. Training on a crop of the very frame it must
reproduce teaches copy-paste (the paper's failure case: the model pastes the reference, background and all).
So the reference is chosen among candidates that are *not* raw crops:

* the object cut out (alpha = object mask) from several target frames,
* renders of the object from other angles (synthetic scenes: ``object.png``, ``object_texture.png``),
* images from a pluggable generator hook (an image-editing / generation model; registry below).

Each candidate is scored by the mean cosine similarity of its embedding to the embeddings of the object
cut-outs (DINOv2 when a model is at hand, else the classical descriptor below), leaving out the crop a
candidate came from. Candidates that carry background are rejected first: a border ring that is neither
transparent nor uniform, or an embedding ~identical to a raw crop (background included).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from insertanywhere.errors import InputError, MissingDependencyError, require

# ---------------------------------------------------------------------------------------------------------------
# Crops


@dataclass
class ObjectCrop:
    """The object cut out of one target frame.

    Attributes:
        frame_index: index of the frame in the clip.
        rgba: (h, w, 4) uint8, straight alpha = the object mask (background transparent).
        raw_rgb: (h, w, 3) uint8, the same box with its background (what a copy-paste reference looks like).
    """

    frame_index: int
    rgba: np.ndarray
    raw_rgb: np.ndarray


def crop_object(frame: np.ndarray, object_mask: np.ndarray, frame_index: int, margin: float = 0.1) -> ObjectCrop:
    """Cut the object's bounding box (grown by ``margin`` of its size per side) out of a frame.

    Args:
        frame: (H, W, 3) uint8 RGB.
        object_mask: (H, W) bool, non-empty.
        frame_index: recorded in the crop.
        margin: fraction of the box width/height added on each side (clipped to the frame).
    """
    ys, xs = np.nonzero(object_mask)
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    pad_x, pad_y = round(margin * (x1 - x0)), round(margin * (y1 - y0))
    height, width = object_mask.shape
    x0, x1 = max(0, x0 - pad_x), min(width, x1 + pad_x)
    y0, y1 = max(0, y0 - pad_y), min(height, y1 + pad_y)
    raw = np.ascontiguousarray(frame[y0:y1, x0:x1])
    alpha = object_mask[y0:y1, x0:x1].astype(np.uint8) * 255
    return ObjectCrop(frame_index, np.dstack([raw, alpha]), raw)


def object_crops(
    target_frames: np.ndarray, object_masks: np.ndarray, n_crops: int = 4, min_area_px: int = 16
) -> list[ObjectCrop]:
    """Crops of the object from up to ``n_crops`` frames spread over the clip where it is visible.

    Args:
        target_frames: (T, H, W, 3) uint8 RGB clip with the object.
        object_masks: (T, H, W) bool.
        n_crops: how many frames to crop (evenly spaced among the frames where the object has at least
            ``min_area_px`` pixels).
        min_area_px: smaller masks are skipped.
    """
    areas = object_masks.reshape(len(object_masks), -1).sum(axis=1)
    visible = np.flatnonzero(areas >= min_area_px)
    if len(visible) == 0:
        return []
    picks = visible[np.unique(np.linspace(0, len(visible) - 1, min(n_crops, len(visible))).round().astype(int))]
    return [crop_object(target_frames[i], object_masks[i], int(i)) for i in picks]


def composite_on_white(rgba: np.ndarray) -> np.ndarray:
    """(h, w, 4) uint8 straight-alpha RGBA -> (h, w, 3) uint8 RGB over white.

    White because WanVACEPipeline pastes the reference image onto a white canvas.
    """
    if rgba.shape[2] == 3:
        return rgba
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    return (rgba[..., :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)).round().astype(np.uint8)


def carries_background(
    image: np.ndarray,
    border_fraction: float = 0.06,
    alpha_clear: int = 16,
    uniform_std: float = 12.0,
    cutout_fraction: float = 0.01,
) -> bool:
    """True when the image shows background: an opaque picture whose border ring is not of one uniform colour.

    A clean reference is an object cut out on transparency or shown on a plain backdrop; an opaque picture with a
    textured ring was cut with its surroundings (the copy-paste failure the paper warns about). An RGBA image with
    transparent pixels is a cut-out: its alpha already separates object from background, and its opaque pixels are
    the object even where they touch the border (tight crops). Copies of a frame that pass this test are caught by
    the similarity test of :func:`select_reference`.

    Args:
        image: (h, w, 3) or (h, w, 4) uint8.
        border_fraction: ring width as a fraction of the smaller side (at least one pixel).
        alpha_clear: a pixel with alpha below this counts as transparent.
        uniform_std: the ring is "uniform" when each channel's std is below this (0..255).
        cutout_fraction: an RGBA image with at least this share of transparent pixels counts as a cut-out.
    """
    if image.shape[2] == 4 and (image[..., 3] < alpha_clear).mean() >= cutout_fraction:
        return False
    height, width = image.shape[:2]
    ring = max(1, round(border_fraction * min(height, width)))
    border = np.ones((height, width), dtype=bool)
    border[ring:-ring, ring:-ring] = False
    pixels = image[border][:, :3].astype(np.float32)
    return bool(pixels.std(axis=0).max() > uniform_std)


# ---------------------------------------------------------------------------------------------------------------
# Embedders


class ImageEmbedder(Protocol):
    """Maps images to L2-normalised descriptors whose dot product is a similarity."""

    name: str

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """(h_i, w_i, 3) uint8 RGB images (any sizes) -> (N, D) float32, rows of unit length."""


def _pad_to_square_white(image: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    side = max(height, width)
    canvas = np.full((side, side, 3), 255, dtype=np.uint8)
    top, left = (side - height) // 2, (side - width) // 2
    canvas[top : top + height, left : left + width] = image
    return canvas


def _unit_rows(features: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return (features / np.maximum(norms, 1e-12)).astype(np.float32)


class ClassicalEmbedder:
    """The fallback when no DINOv2 weights are at hand: colour + shape, no learning.

    Descriptor of an image padded to a white square and resized to 64x64:
    an HSV colour histogram (8 hue x 4 saturation x 4 value bins) and a 4x4 grid of 8-bin gradient-orientation
    histograms weighted by gradient magnitude (HOG without block normalisation). Each part is L1-normalised,
    square-rooted (Hellinger kernel, so the dot product of two descriptors is a Bhattacharyya-like similarity),
    the parts are concatenated with equal weight and the result L2-normalised. It tells a different object or a
    crop with its background apart from the object, which is all the ranking needs; it is blind to semantics.
    """

    name = "classical"
    size = 64

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        return _unit_rows(np.stack([self._describe(image) for image in images]))

    def _describe(self, image: np.ndarray) -> np.ndarray:
        import cv2

        square = cv2.resize(_pad_to_square_white(image), (self.size, self.size), interpolation=cv2.INTER_AREA)
        hsv = cv2.cvtColor(square, cv2.COLOR_RGB2HSV)
        colour = cv2.calcHist([hsv], [0, 1, 2], None, [8, 4, 4], [0, 180, 0, 256, 0, 256]).ravel()
        gray = cv2.cvtColor(square, cv2.COLOR_RGB2GRAY).astype(np.float32)
        gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
        magnitude = np.hypot(gx, gy)
        orientation = (np.arctan2(gy, gx) % np.pi) / np.pi * 8  # unsigned orientation, 8 bins
        bins = np.minimum(orientation.astype(int), 7)
        cell = self.size // 4
        shape = np.zeros((4, 4, 8), dtype=np.float32)
        for cy in range(4):
            for cx in range(4):
                window = (slice(cy * cell, (cy + 1) * cell), slice(cx * cell, (cx + 1) * cell))
                shape[cy, cx] = np.bincount(bins[window].ravel(), magnitude[window].ravel(), minlength=8)
        parts = []
        for part in (colour, shape.ravel()):
            total = part.sum()
            parts.append(np.sqrt(part / total) if total > 0 else part)
        return np.concatenate(parts) / np.sqrt(2.0)


IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


class Dinov2Embedder:
    """DINOv2 global descriptors (the CLS token after the final layer norm, i.e. ``pooler_output``).

    Images are padded to a white square, resized to ``image_size`` and normalised with ImageNet statistics,
    as DINOv2's own image processor does for a centre crop.
    """

    name = "dinov2"

    def __init__(self, model: object, image_size: int = 224, device: str = "cpu") -> None:
        self.model = model
        self.image_size = image_size
        self.device = device

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        import cv2
        import torch

        batch = []
        for image in images:
            square = cv2.resize(
                _pad_to_square_white(image), (self.image_size, self.image_size), interpolation=cv2.INTER_AREA
            )
            batch.append((square.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD)
        pixels = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).to(self.device)
        with torch.no_grad():
            output = self.model(pixel_values=pixels)
        return _unit_rows(output.pooler_output.float().cpu().numpy())


def load_dinov2_embedder(model: str | os.PathLike[str], device: str = "cpu", image_size: int = 224) -> Dinov2Embedder:
    """Load a DINOv2 embedder from a local folder (``save_pretrained`` layout) or a hub id (e.g.
    ``facebook/dinov2-base``).

    Raises:
        MissingDependencyError: transformers/torch missing, or the weights cannot be found.
    """
    transformers = require("transformers", "learned")
    require("torch", "learned")
    try:
        network = transformers.Dinov2Model.from_pretrained(str(model))
    except OSError as err:
        raise MissingDependencyError(
            f"cannot load DINOv2 from {model!r} ({str(err).splitlines()[0]}); "
            "pass a local folder with config.json and weights, or omit --dino for the classical score"
        ) from None
    return Dinov2Embedder(network.eval().to(device), image_size=image_size, device=device)


EMBEDDERS: dict[str, Callable[..., ImageEmbedder]] = {
    "classical": lambda model=None, device="cpu": ClassicalEmbedder(),
    "dinov2": lambda model=None, device="cpu": load_dinov2_embedder(model or "facebook/dinov2-base", device),
}
"""Embedders by name: ``EMBEDDERS[name](model=hub_id_or_folder, device=...)``."""


def make_embedder(name: str, model: str | os.PathLike[str] | None = None, device: str = "cpu") -> ImageEmbedder:
    """An embedder from :data:`EMBEDDERS` by name."""
    if name not in EMBEDDERS:
        raise InputError(f"unknown embedder {name!r}; choose one of {', '.join(sorted(EMBEDDERS))}")
    return EMBEDDERS[name](model=model, device=device)


# ---------------------------------------------------------------------------------------------------------------
# Generator hook


class ReferenceGenerator(Protocol):
    """An image-editing or generation model that proposes references (e.g. "the object on white, front view")."""

    name: str

    def generate(self, crops: Sequence[ObjectCrop], n_images: int, seed: int) -> list[np.ndarray]:
        """Images of the object shown in ``crops``: (h, w, 3) RGB or (h, w, 4) RGBA uint8, straight alpha."""


REFERENCE_GENERATORS: dict[str, Callable[[], ReferenceGenerator]] = {}
"""Generators by name. None ships with the project (they need large weights); register yours with
:func:`register_reference_generator` and pass ``--generator NAME`` to ``dataset build``."""


def register_reference_generator(name: str, factory: Callable[[], ReferenceGenerator]) -> None:
    """Make ``factory()`` available under ``name`` in :data:`REFERENCE_GENERATORS`."""
    REFERENCE_GENERATORS[name] = factory


def make_reference_generator(name: str) -> ReferenceGenerator:
    if name not in REFERENCE_GENERATORS:
        known = ", ".join(sorted(REFERENCE_GENERATORS)) or "none registered"
        raise InputError(f"unknown reference generator {name!r} ({known}); register it first")
    return REFERENCE_GENERATORS[name]()


# ---------------------------------------------------------------------------------------------------------------
# Selection


@dataclass
class ReferenceCandidate:
    """One image that could serve as the reference.

    Attributes:
        kind: "crop" (a cut-out from a target frame), "render" (another view of the object), "generated".
        image: (h, w, 3) RGB or (h, w, 4) straight-alpha RGBA uint8.
        origin: where it comes from (frame index, file name, generator name).
        crop_frame: for kind "crop", the frame it was cut from (left out of its own score).
    """

    kind: str
    image: np.ndarray
    origin: str
    crop_frame: int | None = None


@dataclass
class CandidateVerdict:
    origin: str
    kind: str
    score: float | None
    rejected: str | None


@dataclass
class ReferenceChoice:
    """The chosen reference and why: ``verdicts`` lists every candidate's score or rejection reason."""

    candidate: ReferenceCandidate | None
    score: float | None
    embedder: str
    verdicts: list[CandidateVerdict] = field(default_factory=list)


def load_reference_file(path: str | os.PathLike[str], kind: str = "render") -> ReferenceCandidate:
    """A reference candidate from an image file (RGBA kept when present)."""
    from insertanywhere.io.images import read_png

    path = Path(path)
    try:
        image = read_png(path)
    except OSError:
        raise InputError(f"{path}: not a readable image") from None
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.dtype != np.uint8:
        image = (image.astype(np.float32) / np.iinfo(image.dtype).max * 255).round().astype(np.uint8)
    return ReferenceCandidate(kind, image, path.name)


def select_reference(
    crops: Sequence[ObjectCrop],
    extra_candidates: Sequence[ReferenceCandidate],
    embedder: ImageEmbedder,
    copy_similarity: float = 0.98,
    include_crops: bool = True,
) -> ReferenceChoice:
    """Pick the candidate most similar to the object crops that does not carry background.

    Candidates are the masked crops plus ``extra_candidates``. Score = mean cosine similarity of the candidate's
    embedding (on white) to the masked crops' embeddings, leaving out a crop candidate's own crop. Rejected:
    a border ring that is not transparent/uniform (:func:`carries_background`), or a similarity of at least
    ``copy_similarity`` to a raw crop (background included) - a copy-paste of the training frame.

    Args:
        crops: object crops from the target clip (at least one).
        extra_candidates: renders and generated images.
        embedder: any :class:`ImageEmbedder`.
        copy_similarity: cosine similarity to a raw crop at or above which a candidate counts as a copy.
        include_crops: offer the masked crops as candidates too (they show the object exactly as filmed, so they
            usually win; leave them out to force another view or a generated image).
    """
    candidates = [ReferenceCandidate("crop", c.rgba, f"frame {c.frame_index}", c.frame_index) for c in crops]
    candidates = (candidates if include_crops else []) + list(extra_candidates)
    if not crops or not candidates:
        return ReferenceChoice(None, None, embedder.name)
    crop_embeddings = embedder.embed([composite_on_white(c.rgba) for c in crops])
    raw_embeddings = embedder.embed([c.raw_rgb for c in crops])
    candidate_embeddings = embedder.embed([composite_on_white(c.image) for c in candidates])
    crop_frames = np.array([c.frame_index for c in crops])
    verdicts: list[CandidateVerdict] = []
    best: tuple[float, int] | None = None
    for index, (candidate, embedding) in enumerate(zip(candidates, candidate_embeddings, strict=True)):
        if carries_background(candidate.image):
            verdicts.append(CandidateVerdict(candidate.origin, candidate.kind, None, "border shows background"))
            continue
        copy_of_raw = float((raw_embeddings @ embedding).max())
        if copy_of_raw >= copy_similarity:
            reason = f"near-copy of a raw crop with background (similarity {copy_of_raw:.3f})"
            verdicts.append(CandidateVerdict(candidate.origin, candidate.kind, None, reason))
            continue
        others = crop_frames != candidate.crop_frame if candidate.crop_frame is not None else np.ones(len(crops), bool)
        if not others.any():  # a single crop: nothing else to compare with but itself
            others = np.ones(len(crops), bool)
        score = float((crop_embeddings[others] @ embedding).mean())
        verdicts.append(CandidateVerdict(candidate.origin, candidate.kind, score, None))
        if best is None or score > best[0]:
            best = (score, index)
    if best is None:
        return ReferenceChoice(None, None, embedder.name, verdicts)
    return ReferenceChoice(candidates[best[1]], best[0], embedder.name, verdicts)
