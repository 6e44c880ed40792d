"""Stacks kept at the working resolution and upsampled frame by frame (insertanywhere.upsampled)."""

import threading

import cv2
import numpy as np
import pytest

from insertanywhere.upsampled import (
    UpsampledStack,
    fill_caches,
    resize_flow,
    to_float16,
    upsample_frame,
    upsampled_or_array,
)


def _depth_work(rng: np.random.Generator) -> np.ndarray:
    """(3, 12, 16) float32 depth in [1, 3] with an unknown (0) block in every frame."""
    depth = rng.uniform(1.0, 3.0, (3, 12, 16)).astype(np.float32)
    depth[:, 4:8, 5:11] = 0.0
    return depth


def test_flow_frames_are_the_stored_float16_flow_resized():
    rng = np.random.default_rng(0)
    work = rng.normal(0, 2, (5, 12, 16, 2)).astype(np.float32)
    stack = UpsampledStack(work, "flow", (32, 24))
    assert stack.shape == (5, 24, 32, 2) and stack.dtype == np.float32 and len(stack) == 5 and stack.ndim == 4
    stored = to_float16(work)
    for t in range(5):
        expected = resize_flow(stored[t].astype(np.float32), 32, 24)
        np.testing.assert_array_equal(stack[t], expected)
    # Vectors are scaled with the frame: a uniform 1 px flow at 16 px wide is 2 px at 32.
    uniform = UpsampledStack(np.ones((1, 12, 16, 2), np.float32), "flow", (32, 24))
    np.testing.assert_allclose(uniform[0], 2.0)


def test_depth_is_not_dragged_towards_unknown():
    rng = np.random.default_rng(1)
    work = _depth_work(rng)
    stack = UpsampledStack(work, "depth", (64, 48))
    frame = stack[0]
    assert frame.shape == (48, 64) and frame.dtype == np.float32
    nearest = np.kron(work[0], np.ones((4, 4), np.float32))
    # Where the nearest working pixel is unknown the result is unknown; elsewhere the bilinear value is kept
    # unless the unknown 0s beside it pull it half-way down, then the nearest value is.
    assert (frame[nearest == 0] == 0).all()
    known = nearest > 0
    assert (frame[known] > 0.5 * nearest[known] - 1e-5).all() and frame[known].max() <= 3.0 + 1e-5
    np.testing.assert_array_equal(frame, upsample_frame(work[0], "depth", 64, 48))


def test_depth_rule_matches_its_numpy_statement():
    """The OpenCV implementation is the rule ``linear where |linear - nearest| < 0.5 nearest + 1e-6``, exactly."""
    rng = np.random.default_rng(6)
    work = rng.uniform(0.2, 9.0, (37, 53)).astype(np.float32)
    work[rng.uniform(0, 1, work.shape) < 0.2] = 0.0
    nearest = cv2.resize(work, (211, 149), interpolation=cv2.INTER_NEAREST)
    linear = cv2.resize(work, (211, 149), interpolation=cv2.INTER_LINEAR)
    expected = np.where(np.abs(linear - nearest) < 0.5 * nearest + 1e-6, linear, nearest)
    np.testing.assert_array_equal(upsample_frame(work, "depth", 211, 149), expected)


def test_masks_and_confidence_keep_their_types_and_ranges():
    rng = np.random.default_rng(2)
    mask = UpsampledStack(rng.uniform(0, 1, (2, 12, 16)) > 0.5, "mask", (48, 36))
    assert mask[1].dtype == bool and mask[1].shape == (36, 48)
    confidence = UpsampledStack(rng.uniform(-0.5, 1.5, (2, 12, 16)).astype(np.float32), "confidence", (48, 36))
    assert confidence.work.dtype == np.float16  # as scene/ stores it
    assert confidence[0].dtype == np.float32 and confidence[0].min() >= 0.0 and confidence[0].max() <= 1.0


def test_frames_are_cached_read_only_and_bounded():
    stack = UpsampledStack(_depth_work(np.random.default_rng(3)), "depth", (32, 24), cache_frames=2)
    first = stack[0]
    assert stack[0] is first and not first.flags.writeable
    with pytest.raises(ValueError):
        first[0, 0] = 1.0
    stack.frame(1), stack.frame(2)  # reading fills the cache
    assert stack[0] is not first  # evicted after two more frames
    np.testing.assert_array_equal(stack[0], first)
    assert stack[-1] is stack[2]
    with pytest.raises(IndexError):
        stack.frame(3)


def test_whole_stack_operations_materialise_it():
    work = _depth_work(np.random.default_rng(4))
    stack = UpsampledStack(work, "depth", (32, 24))
    full = np.asarray(stack)
    assert full.shape == (3, 24, 32) and full.dtype == np.float32
    np.testing.assert_array_equal(full[1], stack[1])
    np.testing.assert_array_equal(stack[1:3], full[1:3])
    np.testing.assert_array_equal(stack[2, 3:9, 4], full[2, 3:9, 4])
    np.testing.assert_array_equal(stack > 0, full > 0)
    assert float(np.max(stack)) == float(full.max())
    np.testing.assert_array_equal(stack.astype(np.float64), full.astype(np.float64))
    assert [f.shape for f in stack] == [(24, 32)] * 3


def test_full_size_arrays_are_used_as_they_are():
    array = np.zeros((2, 24, 32), np.float32)
    assert upsampled_or_array(array, "depth", (32, 24)) is array
    assert isinstance(upsampled_or_array(array, "depth", (64, 48)), UpsampledStack)


def test_wrong_shapes_are_refused():
    with pytest.raises(ValueError):
        UpsampledStack(np.zeros((2, 12, 16), np.float32), "flow", (32, 24))
    with pytest.raises(ValueError):
        UpsampledStack(np.zeros((2, 12, 16), np.float32), "normals", (32, 24))  # type: ignore[arg-type]


def test_threads_reading_the_same_frames_agree():
    work = np.random.default_rng(5).normal(0, 1, (6, 12, 16, 2)).astype(np.float32)
    stack = UpsampledStack(work, "flow", (64, 48), cache_frames=2)
    expected = [np.array(stack[t]) for t in range(6)]
    failures = []

    def read() -> None:
        for _ in range(20):
            for t in range(6):
                if not np.array_equal(stack[t], expected[t]):
                    failures.append(t)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures


def test_fill_caches_makes_short_clips_up_front_and_leaves_long_ones_lazy():
    rng = np.random.default_rng(7)
    short = UpsampledStack(rng.uniform(1, 2, (3, 12, 16)).astype(np.float32), "depth", (32, 24), cache_frames=4)
    long = UpsampledStack(rng.uniform(1, 2, (6, 12, 16)).astype(np.float32), "depth", (32, 24), cache_frames=4)
    plain = np.zeros((3, 24, 32), np.float32)
    assert short.fits_cache and not long.fits_cache
    assert fill_caches([short, long, plain, None]) == 3
    made = [short[t] for t in range(3)]
    assert all(frame is short[t] for t, frame in enumerate(made))  # kept, not made again
    for t in range(3):
        np.testing.assert_array_equal(made[t], upsample_frame(short.work[t], "depth", 32, 24))
    first = long[0]
    long.frame(1), long.frame(2), long.frame(3), long.frame(4)  # a long stack keeps only its last 4
    assert long[0] is not first
