"""Depth accuracy measures (scene.metrics.depth_errors)."""

import numpy as np

from insertanywhere.scene.metrics import depth_errors


def test_depth_errors_are_scale_free():
    rng = np.random.default_rng(0)
    truth = rng.uniform(0.5, 4.0, (3, 20, 30)).astype(np.float32)
    errors = depth_errors(0.37 * truth, truth, np.ones(truth.shape, bool))
    assert errors["abs_rel"] < 1e-6 and errors["delta_1_25"] == 1.0
    assert errors["abs_rel_ratio_of_medians"] < 1e-6 and errors["abs_rel_per_frame"] < 1e-6


def test_clip_scale_is_the_median_of_pixel_ratios():
    """A band of mid-range pixels estimated 40% too near: the ratio of medians misscales every pixel, the
    median of the ratios keeps the right scale for the rest."""
    truth = np.tile(np.linspace(1.0, 3.0, 100, dtype=np.float32), (1, 10, 1))
    estimated = 2.0 * truth
    band = (truth > 1.6) & (truth < 2.2)  # 30% of the pixels, around the median
    estimated[band] *= 0.6
    errors = depth_errors(estimated, truth, np.ones(truth.shape, bool))
    expected = band.mean() * 0.4  # the band's pixels are 40% off, the rest exact
    assert abs(errors["abs_rel"] - expected) < 1e-3
    assert errors["abs_rel_ratio_of_medians"] > 1.5 * errors["abs_rel"]


def test_depth_errors_without_valid_pixels():
    empty = np.zeros((2, 4, 4), np.float32)
    errors = depth_errors(empty, empty, np.ones(empty.shape, bool))
    assert errors["coverage"] == 0.0 and np.isnan(errors["abs_rel"])
