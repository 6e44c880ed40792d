"""DAVIS J and F on hand-made masks with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from insertanywhere.eval.masks import (
    boundary_f,
    boundary_map,
    boundary_precision_recall,
    boundary_tolerance_px,
    jaccard,
    score_mask_sequence,
)
from insertanywhere.geometry.boxes import mask_box


def square(size: int, x0: int, y0: int, side: int) -> np.ndarray:
    mask = np.zeros((size, size), dtype=bool)
    mask[y0 : y0 + side, x0 : x0 + side] = True
    return mask


def test_jaccard_square_shifted_by_k_pixels() -> None:
    side, k = 20, 5
    a = square(64, 10, 10, side)
    b = square(64, 10 + k, 10, side)
    expected = side * (side - k) / (side * (side + k))  # 300 / 500
    assert jaccard(a, b) == pytest.approx(expected)
    assert jaccard(a, b) == pytest.approx(0.6)


def test_jaccard_empty_and_disjoint() -> None:
    empty = np.zeros((8, 8), dtype=bool)
    assert jaccard(empty, empty) == 1.0
    assert jaccard(square(8, 0, 0, 2), empty) == 0.0
    assert jaccard(square(16, 0, 0, 3), square(16, 10, 10, 3)) == 0.0


def test_boundary_map_of_a_square_is_its_outline() -> None:
    mask = square(10, 2, 2, 4)  # rows/cols 2..5
    boundary = boundary_map(mask)
    # seg2bmap marks pixels that differ from right/down/down-right neighbours: the inner
    # right and bottom edges (cols/rows 5) and the outer top/left edges (cols/rows 1).
    assert boundary.sum() > 0
    assert not boundary[3:5, 3:5].any()  # interior stays clear
    assert boundary[2:6, 5].all()  # right inner edge
    assert boundary[5, 2:6].all()  # bottom inner edge


def test_boundary_tolerance_matches_davis() -> None:
    assert boundary_tolerance_px(480, 854) == math.ceil(0.008 * math.hypot(480, 854))  # 8 px
    assert boundary_tolerance_px(480, 854, 3) == 3


def test_f_is_one_for_identical_and_for_shifts_within_tolerance() -> None:
    a = square(100, 20, 20, 40)
    assert boundary_f(a, a) == 1.0
    # diagonal of 100x100 is 141.4 -> tolerance ceil(1.13) = 2 px: a 1 px shift still matches fully
    assert boundary_f(square(100, 21, 20, 40), a) == 1.0


def test_f_on_straight_boundaries_is_known() -> None:
    # Top-half masks of a 100x100 image: each boundary is one full row (100 pixels). The DAVIS
    # tolerance is ceil(0.008 * 141.4) = 2 px, so a boundary 2 rows away matches fully and one
    # 3 rows away not at all.
    def top(rows: int) -> np.ndarray:
        mask = np.zeros((100, 100), dtype=bool)
        mask[:rows] = True
        return mask

    assert boundary_map(top(50)).sum() == 100
    assert boundary_f(top(52), top(50)) == 1.0
    assert boundary_f(top(53), top(50)) == 0.0
    # A step: the left half of the prediction's boundary lies on the GT row, the right half 10 rows
    # lower. Prediction boundary: row 49 cols 0..49 (50 px), col 49 rows 50..59 (10 px), row 59
    # cols 50..99 (50 px) = 110 px; within 2 px of GT row 49: 50 + rows 50, 51 of the step = 52.
    # GT pixels within 2 px of the prediction's boundary: cols 0..51 = 52 of 100.
    step = top(50)
    step[:, 50:] = top(60)[:, 50:]
    assert boundary_map(step).sum() == 110
    precision, recall = boundary_precision_recall(step, top(50))
    assert precision == pytest.approx(52 / 110)
    assert recall == pytest.approx(52 / 100)
    assert boundary_f(step, top(50)) == pytest.approx(2 * precision * recall / (precision + recall))


def test_f_empty_conventions() -> None:
    empty = np.zeros((20, 20), dtype=bool)
    full = square(20, 5, 5, 6)
    assert boundary_f(empty, empty) == 1.0
    assert boundary_precision_recall(empty, full) == (1.0, 0.0)
    assert boundary_precision_recall(full, empty) == (0.0, 1.0)
    assert boundary_f(empty, full) == 0.0


def test_score_sequence_and_occluded_summary() -> None:
    gt = [square(32, 5, 5, 10)] * 4
    predicted = [gt[0], gt[0], square(32, 10, 5, 10), np.zeros((32, 32), dtype=bool)]
    scores = score_mask_sequence(predicted, gt, partly_occluded_frames=[2], fully_occluded_frames=[])
    assert scores.j_per_frame.tolist() == pytest.approx([1.0, 1.0, 50 / 150, 0.0])
    summary = scores.summary()
    assert summary["J_partly_occluded"] == pytest.approx(1 / 3)
    assert summary["J_recall"] == pytest.approx(0.5)
    with pytest.raises(ValueError):
        score_mask_sequence(predicted[:2], gt)


def test_mask_box() -> None:
    assert mask_box(square(16, 3, 4, 5)) == (3, 4, 8, 9)
    assert mask_box(np.zeros((4, 4), dtype=bool)) is None
