"""Extended optics mask: hand-made frames, and recall of the synthetic scenes' GT shadow matte."""

from __future__ import annotations

import numpy as np
import pytest

from insertanywhere.data.dataset_optics import OpticsMaskConfig, extended_optics_mask, extended_optics_mask_frame


def _scene(shadow_gain: float = 0.6, ground: float = 120.0):
    """A flat ground, a box object, a shadow blob touching its right side, and an unrelated change far away."""
    height, width = 60, 90
    source = np.full((height, width, 3), ground, np.float32)
    target = source.copy()
    mask = np.zeros((height, width), bool)
    mask[20:40, 20:32] = True
    target[mask] = (200, 30, 30)
    shadow = np.zeros((height, width), bool)
    shadow[32:40, 32:50] = True
    target[shadow] *= shadow_gain
    far = np.zeros((height, width), bool)
    far[5:12, 75:85] = True
    target[far] = 250
    return source.astype(np.uint8), target.astype(np.uint8), mask, shadow, far


def test_keeps_the_shadow_touching_the_object_and_drops_far_changes():
    source, target, mask, shadow, far = _scene()
    extended = extended_optics_mask_frame(source, target, mask, OpticsMaskConfig())
    assert extended[mask].all(), "the extended mask is a superset of the object mask"
    assert extended[shadow].mean() > 0.95
    assert not extended[far].any()


def test_relative_cue_finds_a_shadow_on_dark_ground():
    # 35 % darker on ground of 30 grey levels: an absolute change of ~10, under the strong absolute threshold.
    source, target, mask, shadow, _ = _scene(shadow_gain=0.65, ground=30.0)
    assert np.abs(target.astype(int) - source.astype(int))[shadow].max() < OpticsMaskConfig().high_threshold
    extended = extended_optics_mask_frame(source, target, mask, OpticsMaskConfig())
    assert extended[shadow].mean() > 0.95


def test_noise_alone_adds_nothing_and_an_absent_object_gives_an_empty_mask():
    rng = np.random.default_rng(0)
    source, _, mask, _, _ = _scene()
    noisy = np.clip(source.astype(int) + rng.integers(-3, 4, source.shape), 0, 255).astype(np.uint8)
    extended = extended_optics_mask(source[None], noisy[None], mask[None])
    assert extended.shape == (1, *mask.shape)
    assert (extended[0] & ~mask).sum() < 0.02 * mask.sum()
    empty = np.zeros_like(mask)
    assert not extended_optics_mask_frame(source, noisy, empty, OpticsMaskConfig()).any()


@pytest.mark.parametrize("family", ["static", "low_light"])
def test_recall_of_synthetic_gt_shadow(family):
    """The low-sun scene has a long shadow on dark ground, the hardest case; the bar is recall > 0.8."""
    synthetic = pytest.importorskip("insertanywhere.data.synthetic")
    case = synthetic.load_synthetic_case(synthetic.render_case_cached(family, 0, small=True))
    inserted = case.inserted()
    extended = extended_optics_mask(case.background, inserted, case.masks)
    shadow = (case.shadow >= 0.1) & ~case.masks
    assert shadow.sum() > 50
    recall = (extended & shadow).sum() / shadow.sum()
    assert recall > 0.8, f"{family}: recall of GT shadow pixels {recall:.3f}"
    added = extended & ~case.masks
    assert added.sum() < 4 * shadow.sum() + 10 * case.masks.sum() ** 0.5 * len(case.masks)
