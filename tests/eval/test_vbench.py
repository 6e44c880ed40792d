"""VBench-style formulas on hand-made clips (the learned encoders are tested in test_learned.py)."""

from __future__ import annotations

import numpy as np
import pytest

from insertanywhere.eval.vbench import (
    consistency_from_features,
    imaging_quality_substitute,
    immerkaer_noise_sigma,
    interpolate_midpoint,
    motion_smoothness,
    sharpness_noise_index,
)


def textured_frame(height: int = 96, width: int = 128, seed: int = 0) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, size=(height // 8, width // 8, 3), dtype=np.uint8)
    return cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)


def test_consistency_formula() -> None:
    same = np.tile(np.array([[1.0, 0.0]]), (5, 1))
    assert consistency_from_features(same) == pytest.approx(1.0)
    # f0 = e1, f1 = e2, f2 = e2: t=1: (0 + 0)/2, t=2: (1 + 0)/2 -> mean 0.25
    features = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    assert consistency_from_features(features) == pytest.approx(0.25)
    # negative cosines are clipped at 0
    assert consistency_from_features(np.array([[1.0, 0.0], [-1.0, 0.0]])) == 0.0
    assert consistency_from_features(np.ones((1, 3))) is None


def test_motion_smoothness_static_and_linear_motion_near_one() -> None:
    frame = textured_frame()
    assert motion_smoothness([frame] * 5) == pytest.approx(1.0)
    moving = [np.roll(frame, shift=2 * t, axis=1) for t in range(5)]
    interpolated = interpolate_midpoint(moving[0], moving[2])
    inner = (slice(8, -8), slice(16, -16))
    assert np.mean(np.abs(interpolated[inner].astype(int) - moving[1][inner])) < 4.0
    jerky = [moving[0], np.roll(frame, 40, axis=1), moving[2], np.roll(frame, -40, axis=1), moving[4]]
    assert motion_smoothness(moving) > motion_smoothness(jerky) + 0.02
    assert motion_smoothness([frame, frame]) is None


def test_immerkaer_noise_sigma_recovers_added_noise() -> None:
    rng = np.random.default_rng(0)
    flat = np.full((128, 128), 100.0)
    assert immerkaer_noise_sigma(flat) == pytest.approx(0.0)
    noisy = flat + rng.normal(0, 8.0, flat.shape)
    assert immerkaer_noise_sigma(noisy) == pytest.approx(8.0, rel=0.1)


def test_sharpness_noise_index_prefers_sharp_clean_frames() -> None:
    import cv2

    sharp = textured_frame(seed=2)
    blurry = cv2.GaussianBlur(sharp, (0, 0), 3)
    rng = np.random.default_rng(1)
    noisy = np.clip(sharp + rng.normal(0, 20, sharp.shape), 0, 255).astype(np.uint8)
    assert sharpness_noise_index(sharp)["index"] > sharpness_noise_index(blurry)["index"]
    assert sharpness_noise_index(sharp)["index"] > sharpness_noise_index(noisy)["index"]
    summary = imaging_quality_substitute([sharp, sharp])
    assert summary["imaging_quality_sharpness_noise"] == pytest.approx(sharpness_noise_index(sharp)["index"])
