"""Tiny removal triplets in the synthetic-scene layout, drawn in numpy (shared by the dataset and train tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from insertanywhere.io.images import write_png, write_sequence_frame
from insertanywhere.io.video import write_video


def _smooth_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    import cv2

    noise = rng.uniform(0, 255, size=(height // 8 + 1, width // 8 + 1, 3)).astype(np.float32)
    return cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC).clip(40, 215)


def write_tiny_triplet(
    folder: Path, seed: int = 0, n_frames: int = 9, width: int = 96, height: int = 64, shadow_strength: float = 0.45
) -> Path:
    """A synthetic case: a coloured box sliding right over a smooth background, casting a soft shadow.

    Writes background.mp4, gt/inserted.mp4, gt/masks/, gt/shadow/ (matte 0..255), object.png (RGBA),
    object_texture.png and meta.json. Returns ``folder``.
    """
    rng = np.random.default_rng(seed)
    background = _smooth_background(rng, height, width)
    colour = rng.uniform(30, 230, size=3)
    ys, xs = np.mgrid[0:height, 0:width]
    box_w, box_h = width // 6, height // 3
    with_object, without_object = [], []
    for t in range(n_frames):
        x0 = width // 5 + t * 2
        y1 = int(height * 0.75)
        mask = (xs >= x0) & (xs < x0 + box_w) & (ys >= y1 - box_h) & (ys < y1)
        # A soft elliptic shadow on the ground to the right of the box's base (light from the upper left).
        cx, cy = x0 + box_w * 1.2, y1 - 1
        distance = np.hypot((xs - cx) / (box_w * 0.9), (ys - cy) / (box_h * 0.35))
        matte = np.clip(1.3 - distance, 0, 1) ** 0.7 * (~mask)
        frame_bg = background * (1 + 0.01 * t)
        shadowed = frame_bg * (1 - shadow_strength * matte[..., None])
        inserted = np.where(mask[..., None], colour, shadowed)
        without_object.append(frame_bg.clip(0, 255).astype(np.uint8))
        with_object.append(inserted.clip(0, 255).astype(np.uint8))
        write_sequence_frame(folder / "gt" / "masks", t, mask)
        write_sequence_frame(folder / "gt" / "shadow", t, (matte * 255).round().astype(np.uint8))
    write_video(folder / "background.mp4", np.stack(without_object), 10)
    write_video(folder / "gt" / "inserted.mp4", np.stack(with_object), 10)
    rgba = np.zeros((box_h + 8, box_w + 8, 4), np.uint8)
    rgba[4:-4, 4:-4, :3] = colour.astype(np.uint8)
    rgba[4:-4, 4:-4, 3] = 255
    write_png(folder / "object.png", rgba)
    write_png(folder / "object_texture.png", np.broadcast_to(colour.astype(np.uint8), (16, 16, 3)).copy())
    (folder / "meta.json").write_text('{"prompt": "a box"}\n')
    return folder
