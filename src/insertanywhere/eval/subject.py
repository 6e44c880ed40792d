"""Subject consistency as InsertAnywhere (arXiv 2512.17504, Sec. 5) reports it: CLIP-I and DINO-I.

The cosine similarity between the embedding of the reference object image and the
embedding of the object region in 10 evenly spaced frames of the output, averaged.
Paper figures on its 200-clip set: CLIP-I 0.813, DINO-I 0.567.

Both sides are prepared the same way, so the background does not decide the score:
the reference RGBA is composited over a neutral grey; the frame is cropped to the box of
the object's visible mask and every pixel outside that mask is set to the same grey;
both are then padded with grey to a square (the object is never cropped by the
encoder's centre crop) and resized to the encoder's input.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from insertanywhere.geometry.boxes import mask_box
from insertanywhere.models.image_encoder import ImageEncoder

N_SUBJECT_FRAMES = 10
NEUTRAL_GREY = 128


def evenly_spaced_frames(n_frames: int, count: int = N_SUBJECT_FRAMES) -> list[int]:
    """``count`` frame indices spread evenly from the first to the last frame (fewer if the clip is shorter)."""
    if n_frames <= 0:
        return []
    return sorted({int(v) for v in np.rint(np.linspace(0, n_frames - 1, min(count, n_frames)))})


def pad_to_square(image: np.ndarray, value: int = NEUTRAL_GREY) -> np.ndarray:
    """Centre an (h, w, 3) uint8 image on a square canvas of side max(h, w) filled with ``value``."""
    height, width = image.shape[:2]
    side = max(height, width)
    canvas = np.full((side, side, 3), value, dtype=np.uint8)
    top = (side - height) // 2
    left = (side - width) // 2
    canvas[top : top + height, left : left + width] = image
    return canvas


def reference_view(reference_rgba: np.ndarray) -> np.ndarray:
    """The reference object ready for an encoder.

    Args:
        reference_rgba: (h, w, 4) uint8 straight-alpha RGBA image of the object.

    Returns:
        (s, s, 3) uint8: cropped to alpha > 0, composited over neutral grey, padded square.
    """
    alpha = reference_rgba[..., 3].astype(np.float32)[..., None] / 255.0
    rgb = reference_rgba[..., :3].astype(np.float32)
    composite = np.clip(rgb * alpha + NEUTRAL_GREY * (1.0 - alpha) + 0.5, 0, 255).astype(np.uint8)
    box = mask_box(reference_rgba[..., 3] > 0)
    if box is not None:
        x0, y0, x1, y1 = box
        composite = composite[y0:y1, x0:x1]
    return pad_to_square(composite)


def frame_object_view(frame: np.ndarray, visible_mask: np.ndarray) -> np.ndarray | None:
    """The object region of an output frame ready for an encoder.

    Args:
        frame: (H, W, 3) uint8 RGB output frame.
        visible_mask: (H, W) bool visible object mask of that frame.

    Returns:
        (s, s, 3) uint8 crop to the mask's box, grey outside the mask, padded square; None
        when the object is not visible.
    """
    box = mask_box(visible_mask)
    if box is None:
        return None
    x0, y0, x1, y1 = box
    crop = frame[y0:y1, x0:x1].copy()
    crop[~visible_mask[y0:y1, x0:x1]] = NEUTRAL_GREY
    return pad_to_square(crop)


@dataclass
class SubjectScores:
    """CLIP-I / DINO-I of one output.

    Attributes:
        per_frame: {"clip_i": {frame: cos}, "dino_i": {frame: cos}} for the frames scored.
        frames: the evenly spaced frames asked for.
        skipped_frames: those where the object was not visible (no region to compare).
        models: {"clip_i": checkpoint, "dino_i": checkpoint}.
    """

    per_frame: dict[str, dict[int, float]] = field(default_factory=dict)
    frames: list[int] = field(default_factory=list)
    skipped_frames: list[int] = field(default_factory=list)
    models: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict[str, object]:
        result: dict[str, object] = {
            name: (float(np.mean(list(values.values()))) if values else None) for name, values in self.per_frame.items()
        }
        result.update(
            {
                "frames": self.frames,
                "skipped_frames": self.skipped_frames,
                "models": self.models,
                "per_frame": {k: {str(i): v for i, v in vals.items()} for k, vals in self.per_frame.items()},
            }
        )
        return result


def subject_similarity(
    reference_rgba: np.ndarray,
    frames_with_masks: Iterable[tuple[int, np.ndarray, np.ndarray]],
    encoders: dict[str, ImageEncoder],
    frames_asked: list[int] | None = None,
) -> SubjectScores:
    """Cosine similarity of the reference and the object region per frame, for each encoder.

    Args:
        reference_rgba: (h, w, 4) uint8 RGBA reference object.
        frames_with_masks: iterable of (frame index, (H, W, 3) uint8 frame, (H, W) bool visible mask),
            typically the 10 evenly spaced frames.
        encoders: metric name -> encoder, e.g. {"clip_i": clip, "dino_i": dino}.
        frames_asked: the indices requested (recorded in the report); defaults to those given.

    Returns:
        SubjectScores; frames whose mask is empty are listed in ``skipped_frames``.
    """
    views: list[np.ndarray] = []
    view_frames: list[int] = []
    skipped: list[int] = []
    given: list[int] = []
    for index, frame, mask in frames_with_masks:
        given.append(int(index))
        view = frame_object_view(frame, mask)
        if view is None:
            skipped.append(int(index))
            continue
        views.append(view)
        view_frames.append(int(index))
    scores = SubjectScores(frames=frames_asked if frames_asked is not None else given, skipped_frames=skipped)
    reference = reference_view(reference_rgba)
    for name, encoder in encoders.items():
        scores.models[name] = encoder.name
        if not views:
            scores.per_frame[name] = {}
            continue
        embeddings = encoder.embed([reference, *views], resize="square")
        cosines = embeddings[1:] @ embeddings[0]
        scores.per_frame[name] = {index: float(c) for index, c in zip(view_frames, cosines, strict=True)}
    return scores
