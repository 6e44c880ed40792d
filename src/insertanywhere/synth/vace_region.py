"""The region the video model regenerates, its feathered paste-back alpha, and resizing to the generation size.

Pure numpy/OpenCV: no torch, no I/O. The region is the paper's 4D-aware mask (the visible object, occluders already
cut out) grown by a band that takes in the contact shadow, so the model can relight the surroundings it touches.
Pixels outside the region are copied from the input bit for bit.
"""

from __future__ import annotations

import math

import cv2
import numpy as np


def generation_region(
    object_masks: np.ndarray, shadow_mattes: np.ndarray, band_px: int, shadow_threshold: float = 0.02
) -> np.ndarray:
    """The pixels the video model regenerates: the object mask grown by ``band_px``, plus the shadow.

    Args:
        object_masks: (T, H, W) bool, the visible object per frame (4D-aware: occluded parts are False).
        shadow_mattes: (T, H, W) float32 in [0, 1], the shadow's darkening weight (0 = no shadow).
        band_px: radius in pixels of the band around the object that is regenerated with it (edges, contact).
        shadow_threshold: matte values above this count as shadow.

    Returns:
        (T, H, W) bool, True = generate (white in VACE's mask video).
    """
    region = np.asarray(object_masks, dtype=bool).copy()
    if band_px > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band_px + 1, 2 * band_px + 1))
        for t in range(region.shape[0]):
            if region[t].any():
                region[t] = cv2.dilate(region[t].astype(np.uint8), kernel) > 0
    shadow = np.asarray(shadow_mattes, dtype=np.float32) > shadow_threshold
    if band_px > 0 and shadow.any():
        # The shadow's soft edge is part of the region too: grow it by half the band.
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (band_px + 1, band_px + 1))
        for t in range(shadow.shape[0]):
            if shadow[t].any():
                shadow[t] = cv2.dilate(shadow[t].astype(np.uint8), kernel) > 0
    return region | shadow


def paste_alpha(region: np.ndarray, object_masks: np.ndarray, feather_px: float) -> np.ndarray:
    """The paste-back weight of the generated pixels: 1 deep inside the region, ramping to 0 at its border.

    The ramp is the Euclidean distance to the region's outside divided by ``feather_px``, so it lies inside the
    region (inside the band, when the band is wider than the feather) and the weight is exactly 0 outside it: those
    pixels keep the input's values bit for bit. The visible object itself always gets weight 1.

    Args:
        region: (T, H, W) bool, from ``generation_region``.
        object_masks: (T, H, W) bool, the visible object.
        feather_px: ramp width in pixels (0 = hard edge).

    Returns:
        (T, H, W) float32 in [0, 1].
    """
    alpha = np.zeros(region.shape, dtype=np.float32)
    for t in range(region.shape[0]):
        if not region[t].any():
            continue
        if feather_px <= 0:
            alpha[t] = region[t]
            continue
        # Pad by repeating the edge so a region touching the frame border does not ramp there: the frame border is
        # not a seam with input pixels.
        padded = np.pad(region[t].astype(np.uint8), 1, mode="edge")
        inside_distance = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
        alpha[t] = np.clip(inside_distance / float(feather_px), 0.0, 1.0)
    alpha[np.asarray(object_masks, dtype=bool)] = 1.0
    return alpha


def paste_back(source: np.ndarray, generated: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``source * (1 - alpha) + generated * alpha``, rounded, with ``source`` kept exactly where alpha == 0.

    Args:
        source: (H, W, 3) uint8, the input frame.
        generated: (H, W, 3) uint8, the model's frame at the input size.
        alpha: (H, W) float32 in [0, 1], from ``paste_alpha``.

    Returns:
        (H, W, 3) uint8.
    """
    weight = alpha[..., None]
    blended = source.astype(np.float32) * (1.0 - weight) + generated.astype(np.float32) * weight
    out = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    out[alpha <= 0.0] = source[alpha <= 0.0]
    return out


def generation_size(height: int, width: int, max_area: int, multiple: int = 16) -> tuple[int, int]:
    """The size the video model runs at: the input's aspect ratio, area at most ``max_area``, sides multiples of 16.

    Wan's VAE downsamples by 8 and its transformer patchifies by 2, so sides must be multiples of 16 (diffusers'
    ``check_inputs``). Frames are not scaled up (rounding to 16 may add at most 8 pixels to a side).

    Returns:
        ``(gen_height, gen_width)`` in pixels.
    """
    scale = min(1.0, math.sqrt(max_area / float(height * width)))
    gen_height = max(multiple, round(height * scale / multiple) * multiple)
    gen_width = max(multiple, round(width * scale / multiple) * multiple)
    while gen_height * gen_width > max_area and max(gen_height, gen_width) > multiple:
        if gen_height >= gen_width:
            gen_height -= multiple
        else:
            gen_width -= multiple
    return gen_height, gen_width


def resize_frame(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize an (h, w, 3) uint8 frame to (height, width, 3): area averaging when shrinking, bicubic when growing."""
    if frame.shape[:2] == (height, width):
        return frame.copy()
    shrinking = height * width < frame.shape[0] * frame.shape[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    return cv2.resize(frame, (width, height), interpolation=interpolation)


def resize_mask(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize an (h, w) bool mask to (height, width), conservatively: any covered pixel stays True."""
    if mask.shape == (height, width):
        return mask.copy()
    coverage = cv2.resize(mask.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)
    return coverage > 1e-3


def resize_alpha(alpha: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize an (h, w) float32 weight in [0, 1] to (height, width) by area averaging (bilinear when growing)."""
    if alpha.shape == (height, width):
        return alpha.copy()
    shrinking = height * width < alpha.shape[0] * alpha.shape[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return np.clip(cv2.resize(alpha.astype(np.float32), (width, height), interpolation=interpolation), 0.0, 1.0)


def reference_on_white(reference_rgba: np.ndarray) -> np.ndarray:
    """The object image composited on white and cropped to its alpha's bounding box.

    VACE's reference images are letterboxed on a white canvas (diffusers' ``preprocess_conditions``), so white is
    the background the model knows.

    Args:
        reference_rgba: (h, w, 4) uint8 straight alpha, or (h, w, 3) uint8 (taken as opaque).

    Returns:
        (h', w', 3) uint8.
    """
    if reference_rgba.shape[-1] == 3:
        return reference_rgba.copy()
    alpha = reference_rgba[..., 3:4].astype(np.float32) / 255.0
    on_white = reference_rgba[..., :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
    rgb = np.clip(np.rint(on_white), 0, 255).astype(np.uint8)
    rows = np.flatnonzero(reference_rgba[..., 3].any(axis=1))
    cols = np.flatnonzero(reference_rgba[..., 3].any(axis=0))
    if rows.size == 0:
        return rgb
    return rgb[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
