"""Pixel boxes of masks (pixel-corner origin, as ``insertanywhere.conventions``)."""

from __future__ import annotations

import cv2
import numpy as np


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Tight box ``(x0, y0, x1, y1)`` (x1, y1 exclusive) of an (H, W) bool mask; None if it is empty.

    OpenCV's ``boundingRect`` scans the mask once without building index arrays: on the per-frame paths
    (shadow boxes, colour probes, the compositor's region) ``np.nonzero`` over a full frame cost milliseconds.
    """
    left, top, box_w, box_h = cv2.boundingRect(np.ascontiguousarray(mask, bool).view(np.uint8))
    if box_w == 0:
        return None
    return left, top, left + box_w, top + box_h
