"""Intrinsics: from the user (field of view or K) or a default guess refined by self-calibration.

Self-calibration itself happens in the camera stage: the shared focal length is a parameter of the
bundle adjustment (rotation-only or general) with a weak log-prior around this initial guess.
"""

from __future__ import annotations

import math

import numpy as np

from insertanywhere.conventions import intrinsics_from_fov
from insertanywhere.errors import InputError

DEFAULT_FOV_DEG = 60.0
"""Initial horizontal field of view when the user gives none (a typical phone/camcorder lens)."""


def initial_intrinsics(
    width: int, height: int, fov_deg: float | None = None, K: tuple[float, float, float, float] | None = None
) -> tuple[np.ndarray, bool]:
    """The starting K and whether it is the user's (fixed) or a guess (to self-calibrate).

    Args:
        width, height: full-resolution frame size in pixels.
        fov_deg: horizontal field of view in degrees, or None.
        K: ``(fx, fy, cx, cy)`` in full-resolution pixels (pixel-corner origin), or None.

    Returns:
        (3, 3) float64 K at full resolution and True when the user gave it.
    """
    if fov_deg is not None and K is not None:
        raise InputError("give either --fov or --K, not both")
    if K is not None:
        fx, fy, cx, cy = (float(v) for v in K)
        if not all(math.isfinite(v) for v in (fx, fy, cx, cy)) or fx <= 0 or fy <= 0:
            raise InputError(f"--K {fx},{fy},{cx},{cy}: fx and fy must be positive finite numbers")
        return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]]), True
    if fov_deg is not None:
        if not 1.0 <= float(fov_deg) <= 179.0:
            raise InputError(f"--fov {fov_deg}: give a horizontal field of view between 1 and 179 degrees")
        return intrinsics_from_fov(width, height, float(fov_deg)), True
    return intrinsics_from_fov(width, height, DEFAULT_FOV_DEG), False


def scale_intrinsics(K: np.ndarray, scale: float) -> np.ndarray:
    """K (3, 3) for an image resized by ``scale`` (pixel-corner origin: every entry scales alike)."""
    scaled = K.copy()
    scaled[:2] *= scale
    return scaled


def fov_x_deg(K: np.ndarray, width: int) -> float:
    """Horizontal field of view in degrees of K (3, 3) for an image ``width`` pixels wide."""
    return math.degrees(2.0 * math.atan(0.5 * width / K[0, 0]))
