"""Mask metrics with the DAVIS definitions: region similarity J and boundary accuracy F.

Both follow the DAVIS 2016/2017 evaluation toolkit (Perazzi et al., CVPR 2016, Sec. 3):

* J is the intersection over union of the predicted and the ground-truth mask; two empty
  masks agree perfectly (J = 1).
* F is the F-measure of boundary precision and recall. Boundaries are one-pixel contours
  (``boundary_map``, the toolkit's ``seg2bmap``); a boundary pixel counts as matched when a
  boundary pixel of the other mask lies within a disk of radius
  ``ceil(0.008 * image diagonal)`` pixels.

Pure numpy + OpenCV; masks are ``(H, W) bool``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

DAVIS_BOUNDARY_TOLERANCE = 0.008
"""DAVIS boundary tolerance as a fraction of the image diagonal."""


def jaccard(predicted_mask: np.ndarray, gt_mask: np.ndarray) -> float:
    """Region similarity J (intersection over union).

    Args:
        predicted_mask: (H, W) bool, the mask to judge.
        gt_mask: (H, W) bool, the ground truth.

    Returns:
        J in [0, 1]; 1.0 when both masks are empty (DAVIS ``db_eval_iou``).
    """
    predicted_mask = np.asarray(predicted_mask, dtype=bool)
    gt_mask = np.asarray(gt_mask, dtype=bool)
    union = np.count_nonzero(predicted_mask | gt_mask)
    if union == 0:
        return 1.0
    return float(np.count_nonzero(predicted_mask & gt_mask) / union)


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """One-pixel-wide boundary of a mask, as DAVIS's ``seg2bmap`` draws it.

    A pixel is on the boundary when it differs from its right, lower or lower-right
    neighbour; the last row and column compare only along the image edge.

    Args:
        mask: (H, W) bool.

    Returns:
        (H, W) bool boundary pixels.
    """
    seg = np.asarray(mask, dtype=bool)
    east = np.zeros_like(seg)
    south = np.zeros_like(seg)
    south_east = np.zeros_like(seg)
    east[:, :-1] = seg[:, 1:]
    south[:-1, :] = seg[1:, :]
    south_east[:-1, :-1] = seg[1:, 1:]
    boundary = (seg ^ east) | (seg ^ south) | (seg ^ south_east)
    boundary[-1, :] = seg[-1, :] ^ east[-1, :]
    boundary[:, -1] = seg[:, -1] ^ south[:, -1]
    boundary[-1, -1] = False
    return boundary


def boundary_tolerance_px(height: int, width: int, tolerance: float = DAVIS_BOUNDARY_TOLERANCE) -> int:
    """Matching radius in pixels: ``ceil(tolerance * diagonal)``, or ``tolerance`` itself when >= 1 (DAVIS)."""
    if tolerance >= 1:
        return int(tolerance)
    return math.ceil(tolerance * math.hypot(height, width))


def _disk(radius: int) -> np.ndarray:
    """(2r+1, 2r+1) uint8 disk, the same footprint as ``skimage.morphology.disk``."""
    ys, xs = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return (xs * xs + ys * ys <= radius * radius).astype(np.uint8)


def boundary_precision_recall(
    predicted_mask: np.ndarray, gt_mask: np.ndarray, tolerance: float = DAVIS_BOUNDARY_TOLERANCE
) -> tuple[float, float]:
    """Boundary precision and recall with the DAVIS tolerance.

    Args:
        predicted_mask: (H, W) bool.
        gt_mask: (H, W) bool, same size.
        tolerance: fraction of the image diagonal (< 1) or pixels (>= 1).

    Returns:
        (precision, recall), each in [0, 1], with DAVIS's conventions for empty boundaries.
    """
    import cv2

    predicted_boundary = boundary_map(predicted_mask)
    gt_boundary = boundary_map(gt_mask)
    radius = boundary_tolerance_px(*gt_boundary.shape, tolerance)
    disk = _disk(radius)
    predicted_dilated = cv2.dilate(predicted_boundary.astype(np.uint8), disk) > 0
    gt_dilated = cv2.dilate(gt_boundary.astype(np.uint8), disk) > 0
    n_predicted = np.count_nonzero(predicted_boundary)
    n_gt = np.count_nonzero(gt_boundary)
    if n_predicted == 0 and n_gt == 0:
        return 1.0, 1.0
    if n_predicted == 0:
        return 1.0, 0.0
    if n_gt == 0:
        return 0.0, 1.0
    precision = np.count_nonzero(predicted_boundary & gt_dilated) / n_predicted
    recall = np.count_nonzero(gt_boundary & predicted_dilated) / n_gt
    return float(precision), float(recall)


def boundary_f(predicted_mask: np.ndarray, gt_mask: np.ndarray, tolerance: float = DAVIS_BOUNDARY_TOLERANCE) -> float:
    """Boundary accuracy F = 2PR / (P + R) (DAVIS ``db_eval_boundary``); 0 when P + R = 0.

    Args:
        predicted_mask: (H, W) bool.
        gt_mask: (H, W) bool.
        tolerance: fraction of the image diagonal (< 1) or pixels (>= 1).
    """
    precision, recall = boundary_precision_recall(predicted_mask, gt_mask, tolerance)
    if precision + recall == 0:
        return 0.0
    return 2.0 * precision * recall / (precision + recall)


@dataclass
class MaskScores:
    """Per-frame J and F of a clip and their summaries.

    Attributes:
        j_per_frame: (T,) float64 J of every frame.
        f_per_frame: (T,) float64 F of every frame.
        partly_occluded_frames: indices whose GT object is partly hidden (given by the case).
        fully_occluded_frames: indices whose GT object is wholly hidden.
    """

    j_per_frame: np.ndarray
    f_per_frame: np.ndarray
    partly_occluded_frames: list[int]
    fully_occluded_frames: list[int]

    def summary(self) -> dict[str, float | int | None]:
        """J/F means, J&F, J recall (share of frames with J > 0.5, DAVIS), J on partly occluded frames."""
        partly = [i for i in self.partly_occluded_frames if 0 <= i < len(self.j_per_frame)]
        fully = [i for i in self.fully_occluded_frames if 0 <= i < len(self.j_per_frame)]
        j_mean = float(np.mean(self.j_per_frame)) if len(self.j_per_frame) else float("nan")
        f_mean = float(np.mean(self.f_per_frame)) if len(self.f_per_frame) else float("nan")
        return {
            "J_mean": j_mean,
            "F_mean": f_mean,
            "JF_mean": (j_mean + f_mean) / 2.0,
            "J_recall": float(np.mean(self.j_per_frame > 0.5)) if len(self.j_per_frame) else float("nan"),
            "J_partly_occluded": float(np.mean(self.j_per_frame[partly])) if partly else None,
            "F_partly_occluded": float(np.mean(self.f_per_frame[partly])) if partly else None,
            "J_fully_occluded": float(np.mean(self.j_per_frame[fully])) if fully else None,
            "n_frames": len(self.j_per_frame),
            "n_partly_occluded": len(partly),
            "n_fully_occluded": len(fully),
        }


def score_mask_sequence(
    predicted_masks: Iterable[np.ndarray],
    gt_masks: Iterable[np.ndarray],
    partly_occluded_frames: Iterable[int] = (),
    fully_occluded_frames: Iterable[int] = (),
    tolerance: float = DAVIS_BOUNDARY_TOLERANCE,
) -> MaskScores:
    """J and F of every frame of two mask streams, read one frame at a time.

    Args:
        predicted_masks: iterable of (H, W) bool, one per frame.
        gt_masks: iterable of (H, W) bool, the same number of frames and size.
        partly_occluded_frames: frame indices where the GT object is partly hidden.
        fully_occluded_frames: frame indices where the GT object is wholly hidden.
        tolerance: boundary tolerance (see ``boundary_f``).

    Raises:
        ValueError: when the streams differ in length or frame size.
    """
    j_values: list[float] = []
    f_values: list[float] = []
    predicted_iter = iter(predicted_masks)
    gt_iter = iter(gt_masks)
    sentinel = object()
    while True:
        predicted = next(predicted_iter, sentinel)
        gt = next(gt_iter, sentinel)
        if predicted is sentinel and gt is sentinel:
            break
        if predicted is sentinel or gt is sentinel:
            raise ValueError(f"mask sequences differ in length (one ends after {len(j_values)} frames)")
        if predicted.shape != gt.shape:
            raise ValueError(f"frame {len(j_values)}: mask sizes differ {predicted.shape} vs {gt.shape}")
        j_values.append(jaccard(predicted, gt))
        f_values.append(boundary_f(predicted, gt, tolerance))
    return MaskScores(
        j_per_frame=np.asarray(j_values, dtype=np.float64),
        f_per_frame=np.asarray(f_values, dtype=np.float64),
        partly_occluded_frames=sorted(int(i) for i in partly_occluded_frames),
        fully_occluded_frames=sorted(int(i) for i in fully_occluded_frames),
    )
