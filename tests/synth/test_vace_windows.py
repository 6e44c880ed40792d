"""Temporal windows of the VACE backend: coverage, overlap, 4k+1 lengths, padding of short clips."""

from __future__ import annotations

import pytest

from insertanywhere.errors import UserError
from insertanywhere.synth.vace_windows import plan_windows, valid_frame_count


@pytest.mark.parametrize(("n_frames", "expected"), [(1, 1), (2, 5), (5, 5), (6, 9), (9, 9), (80, 81), (81, 81)])
def test_valid_frame_count_is_smallest_4k_plus_1(n_frames: int, expected: int) -> None:
    assert valid_frame_count(n_frames) == expected


def test_short_clip_is_one_padded_window() -> None:
    windows, padded = plan_windows(7, window=81, overlap=16)
    assert padded == 9
    assert [(w.start, w.stop, w.known) for w in windows] == [(0, 9, 0)]


def test_long_clip_windows_cover_it_with_full_length_and_overlap() -> None:
    windows, padded = plan_windows(200, window=81, overlap=16)
    assert padded == 200
    assert [(w.start, w.stop, w.known) for w in windows] == [(0, 81, 0), (65, 146, 16), (119, 200, 27)]
    covered = set()
    for window in windows:
        assert window.length == 81
        covered.update(range(window.start, window.stop))
    assert covered == set(range(200))


def test_clip_of_exactly_one_window_has_one_window() -> None:
    windows, _ = plan_windows(81, window=81, overlap=16)
    assert len(windows) == 1


@pytest.mark.parametrize(("window", "overlap"), [(80, 16), (3, 1), (81, 0), (81, 81)])
def test_bad_window_settings_are_user_errors(window: int, overlap: int) -> None:
    with pytest.raises(UserError):
        plan_windows(100, window=window, overlap=overlap)
