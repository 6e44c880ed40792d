"""Training conditioning frames (what VACE sees) and clip fitting, against hand-made arrays."""

from __future__ import annotations

import numpy as np
import pytest

from insertanywhere.errors import InputError
from insertanywhere.train.latent_cache import (
    MASK_GRAY,
    ClipGeometry,
    ConditioningConfig,
    conditioning_frames,
    fit_frame,
)


def _clips():
    source = np.full((3, 8, 8, 3), 50, np.uint8)
    target = source.copy()
    object_mask = np.zeros((3, 8, 8), bool)
    object_mask[:, 2:4, 2:4] = True
    target[object_mask] = 200
    target[:, 4:6, 2:4] = 30  # the shadow, outside the object mask
    extended = object_mask.copy()
    extended[:, 4:6, 2:4] = True
    return source, target, object_mask, extended


def test_paste_fill_shows_the_object_without_its_shadow_and_frame_zero_is_known():
    source, target, object_mask, extended = _clips()
    video, region = conditioning_frames(source, target, object_mask, extended, ConditioningConfig())
    np.testing.assert_array_equal(video[0], target[0])
    assert not region[0].any()
    assert (video[1:][object_mask[1:]] == 200).all()
    assert (video[1:, 4:6, 2:4] == 50).all(), "the shadow is for the model to draw"
    np.testing.assert_array_equal(region[1:], extended[1:])


def test_gray_fill_band_and_unknown_first_frame():
    source, target, object_mask, _ = _clips()
    config = ConditioningConfig(fill="gray", mask_band_px=1, first_frame_known=False)
    video, region = conditioning_frames(source, target, object_mask, object_mask, config)
    assert region.sum() > object_mask.sum() and (region | ~object_mask).all()
    assert (video[region] == MASK_GRAY).all() and (video[~region] == 50).all()
    source_video, _ = conditioning_frames(source, target, object_mask, object_mask, ConditioningConfig(fill="source"))
    np.testing.assert_array_equal(source_video[1:], source[1:])
    with pytest.raises(InputError):
        ConditioningConfig(fill="noise").validate()


def test_fit_frame_covers_and_crops_the_centre():
    image = np.zeros((40, 80), np.uint8)
    image[:, 20:60] = 255
    fitted = fit_frame(image, 16, 16, nearest=True)
    assert fitted.shape == (16, 16) and (fitted == 255).all()
    with pytest.raises(InputError):
        ClipGeometry(10, 32, 32).validate()
    with pytest.raises(InputError):
        ClipGeometry(9, 30, 32).validate()
