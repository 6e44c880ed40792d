"""Colour and exposure harmonisation of the inserted object with its surroundings.

Two parts, both in linear light (exposure and illuminant colour act multiplicatively there):

* at the placement frame, a partial grey-world adaptation (Buchsbaum 1980, "A spatial processor model
  for object colour perception"): the surroundings' mean colour estimates the illuminant, and the object
  takes a fraction of that tint and of the brightness difference (a photo shot elsewhere carries its
  own illuminant and exposure);
* in every frame t, the exposure and white-balance change since the placement frame: the per-channel
  ratio of a ring of background around the object in frame t to the same ring in the placement frame
  (medians, robust to a passer-by), smoothed over time by a One Euro filter (Casiez et al., CHI 2012):
  heavy smoothing while the ratio is steady (no flicker), light smoothing when it moves fast (no lag).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_SRGB_TO_LINEAR_LUT = np.where(
    np.arange(256) / 255.0 <= 0.04045,
    np.arange(256) / 255.0 / 12.92,
    ((np.arange(256) / 255.0 + 0.055) / 1.055) ** 2.4,
).astype(np.float32)

REC709_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)


def srgb_uint8_to_linear(image: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 sRGB -> (..., 3) float32 linear RGB in [0, 1] (exact IEC 61966-2-1 decode)."""
    return _SRGB_TO_LINEAR_LUT[image]


_DECODE_STEPS = 4095
_DECODE_LUT = np.where(
    np.linspace(0, 1, _DECODE_STEPS + 1) <= 0.04045,
    np.linspace(0, 1, _DECODE_STEPS + 1) / 12.92,
    ((np.linspace(0, 1, _DECODE_STEPS + 1) + 0.055) / 1.055) ** 2.4,
).astype(np.float32)
_ENCODE_STEPS = 65535  # linear light needs fine steps in the shadows (sRGB's slope is 12.92 there)
_ENCODE_GRID = np.linspace(0, 1, _ENCODE_STEPS + 1)
_ENCODE_LUT = np.where(
    _ENCODE_GRID <= 0.0031308, _ENCODE_GRID * 12.92, 1.055 * _ENCODE_GRID ** (1 / 2.4) - 0.055
).astype(np.float32)
_ENCODE_LUT_UINT8 = np.clip(np.rint(_ENCODE_LUT * 255.0), 0, 255).astype(np.uint8)


def _lut_index(values: np.ndarray, steps: int) -> np.ndarray:
    scaled = np.clip(np.asarray(values, np.float32), 0.0, 1.0) * np.float32(steps) + np.float32(0.5)
    return scaled.astype(np.int32)


def srgb_to_linear(values: np.ndarray) -> np.ndarray:
    """float sRGB-encoded values in [0, 1] -> float32 linear light (4096-step LUT, error < 0.1 of an 8-bit level)."""
    return _DECODE_LUT[_lut_index(values, _DECODE_STEPS)]


def linear_to_srgb(values: np.ndarray) -> np.ndarray:
    """float32 linear light -> sRGB-encoded values in [0, 1], clipped (LUT of 65536 steps)."""
    return _ENCODE_LUT[_lut_index(values, _ENCODE_STEPS)]


def linear_to_srgb_uint8(values: np.ndarray) -> np.ndarray:
    """float32 linear light -> uint8 sRGB (rounded), clipped."""
    return _ENCODE_LUT_UINT8[_lut_index(values, _ENCODE_STEPS)]


def ring_mask(object_mask: np.ndarray, inner_px: float, width_px: float) -> np.ndarray:
    """Pixels at distance in (inner_px, inner_px + width_px] from an object mask: the object's surroundings.

    Args:
        object_mask: (h, w) bool, the object's pixels.
        inner_px: gap left around the object (its antialiased edge, a thin contact shadow).
        width_px: ring thickness.

    Returns:
        (h, w) bool.
    """
    import cv2

    if not object_mask.any():
        return np.zeros_like(object_mask)
    distance = cv2.distanceTransform((~object_mask).astype(np.uint8), cv2.DIST_L2, 3)
    return (distance > inner_px) & (distance <= inner_px + width_px)


def ring_width_for(bbox: tuple[int, int, int, int]) -> float:
    """A ring thickness in pixels proportional to the object's size: 35 % of sqrt(box area), in [6, 40]."""
    x0, y0, x1, y1 = bbox
    return float(np.clip(0.35 * math.sqrt(max((x1 - x0) * (y1 - y0), 1)), 6.0, 40.0))


def surroundings_linear(
    frame: np.ndarray, object_alpha: np.ndarray, bbox: tuple[int, int, int, int], inner_px: float = 3.0
) -> np.ndarray | None:
    """Median linear RGB of a ring of background around the object.

    Args:
        frame: (H, W, 3) uint8 sRGB frame.
        object_alpha: (H, W) float32 object coverage in [0, 1] (the full rendered coverage, not only the visible part).
        bbox: (x0, y0, x1, y1) the object's pixel box.
        inner_px: gap between the object and the ring.

    Returns:
        (3,) float32 linear RGB, or None when fewer than 30 ring pixels are inside the frame or the ring is
        clipped (saturated) for most pixels.
    """
    height, width = object_alpha.shape
    ring_w = ring_width_for(bbox)
    pad = math.ceil(inner_px + ring_w) + 1
    x0, y0 = max(bbox[0] - pad, 0), max(bbox[1] - pad, 0)
    x1, y1 = min(bbox[2] + pad, width), min(bbox[3] + pad, height)
    ring = ring_mask(object_alpha[y0:y1, x0:x1] > 0, inner_px, ring_w)
    pixels = frame[y0:y1, x0:x1][ring]
    if len(pixels) < 30:
        return None
    unclipped = pixels.max(axis=1) < 250
    if unclipped.mean() < 0.5:
        return None
    return np.median(srgb_uint8_to_linear(pixels[unclipped]), axis=0).astype(np.float32)


def placement_gain(
    object_linear_mean: np.ndarray,
    surroundings: np.ndarray,
    tint_transfer: float,
    exposure_transfer: float,
    max_exposure_gain: float = 1.3,
) -> np.ndarray:
    """Per-channel linear gain adapting the object to the scene's illuminant and exposure (partial grey world).

    Args:
        object_linear_mean: (3,) coverage-weighted mean linear RGB of the object.
        surroundings: (3,) median linear RGB of its surroundings in the placement frame.
        tint_transfer: in [0, 1], how much of the surroundings' chromaticity to impose (0 = none).
        exposure_transfer: in [0, 1], how much of the luminance ratio surroundings / object to apply.
        max_exposure_gain: bound (and 1 / bound) on the exposure part of the gain.

    Returns:
        (3,) float32 gains.
    """
    eps = 1e-4
    # Grey world: the surroundings' mean colour is the illuminant's. The object's own mean colour is its albedo
    # (its photo is assumed white-balanced), so it is not divided out: a red object stays red.
    scene_tint = (surroundings + eps) / (float(surroundings.mean()) + eps)
    tint_gain = scene_tint**tint_transfer
    tint_gain /= float(REC709_LUMA @ tint_gain)  # keep luminance: tint only
    luminance_ratio = (float(REC709_LUMA @ surroundings) + eps) / (float(REC709_LUMA @ object_linear_mean) + eps)
    # A dark object on a white table is not under-exposed: only a bounded nudge of exposure is taken.
    exposure_gain = float(np.clip(luminance_ratio**exposure_transfer, 1.0 / max_exposure_gain, max_exposure_gain))
    return (tint_gain * exposure_gain).astype(np.float32)


@dataclass
class OneEuroFilter:
    """One Euro filter (Casiez, Roussel, Vogel, CHI 2012) on a vector signal sampled once per frame.

    The cutoff frequency grows with the signal's speed: ``cutoff = min_cutoff + beta * |dx/dt|``, so a
    steady signal is smoothed hard and a step passes within a frame or two.

    Attributes:
        min_cutoff: cycles per frame at rest.
        beta: cutoff growth per unit of speed (signal units per frame).
        derivative_cutoff: cycles per frame for the speed estimate.
    """

    min_cutoff: float = 0.05
    beta: float = 3.0
    derivative_cutoff: float = 0.5
    _value: np.ndarray | None = None
    _speed: np.ndarray | None = None

    @staticmethod
    def _smoothing(cutoff: float | np.ndarray) -> float | np.ndarray:
        tau = 1.0 / (2.0 * math.pi * cutoff)
        return 1.0 / (1.0 + tau)  # sample period = 1 frame

    def __call__(self, measurement: np.ndarray) -> np.ndarray:
        measurement = np.asarray(measurement, np.float64)
        if self._value is None:
            self._value = measurement.copy()
            self._speed = np.zeros_like(measurement)
            return self._value.copy()
        assert self._speed is not None
        raw_speed = measurement - self._value
        a_d = self._smoothing(self.derivative_cutoff)
        self._speed = a_d * raw_speed + (1.0 - a_d) * self._speed
        a = self._smoothing(self.min_cutoff + self.beta * np.abs(self._speed))
        self._value = a * measurement + (1.0 - a) * self._value
        return self._value.copy()

    @property
    def value(self) -> np.ndarray | None:
        return None if self._value is None else self._value.copy()
