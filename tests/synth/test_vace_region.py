"""Generation region, feathered paste-back and sizes of the VACE backend (pure numpy)."""

from __future__ import annotations

import numpy as np
import pytest

from insertanywhere.synth.vace_region import (
    generation_region,
    generation_size,
    paste_alpha,
    paste_back,
    reference_on_white,
    resize_mask,
)


def _square_mask(size: int = 40, lo: int = 15, hi: int = 25) -> np.ndarray:
    mask = np.zeros((1, size, size), bool)
    mask[0, lo:hi, lo:hi] = True
    return mask


def test_region_is_the_mask_grown_by_the_band_plus_the_shadow() -> None:
    mask = _square_mask()
    shadow = np.zeros(mask.shape, np.float32)
    shadow[0, 30:33, 5:10] = 0.5
    region = generation_region(mask, shadow, band_px=3)
    assert region[0, 15:25, 15:25].all()
    assert region[0, 12, 20] and not region[0, 11, 20]  # band of 3 pixels above the square
    assert region[0, 30:33, 5:10].all()  # the shadow
    assert not region[0, 0, 0]


def test_alpha_is_zero_outside_one_on_object_and_ramps_inside_band() -> None:
    mask = _square_mask()
    region = generation_region(mask, np.zeros(mask.shape, np.float32), band_px=6)
    alpha = paste_alpha(region, mask, feather_px=4.0)
    assert np.all(alpha[~region] == 0.0)
    assert np.all(alpha[mask] == 1.0)
    ramp = alpha[0, 20, 9:16]  # from the region's left border (x=9) to the object (x=15)
    assert np.all(np.diff(ramp) >= 0) and 0.0 < ramp[0] < 0.5 and ramp[-1] == 1.0


def test_region_touching_the_frame_border_does_not_ramp_there() -> None:
    region = np.zeros((1, 20, 20), bool)
    region[0, :, :10] = True
    alpha = paste_alpha(region, np.zeros_like(region), feather_px=3.0)
    assert alpha[0, 10, 0] == 1.0 and alpha[0, 0, 5] == 1.0
    assert alpha[0, 10, 9] < 1.0


def test_paste_back_keeps_source_bits_where_alpha_is_zero() -> None:
    rng = np.random.default_rng(0)
    source = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    generated = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    alpha = np.zeros((16, 16), np.float32)
    alpha[4:8, 4:8] = 1.0
    alpha[8, 4:8] = 0.5
    out = paste_back(source, generated, alpha)
    assert np.array_equal(out[alpha == 0], source[alpha == 0])
    assert np.array_equal(out[alpha == 1], generated[alpha == 1])
    expected = np.rint(0.5 * source[8, 4:8].astype(float) + 0.5 * generated[8, 4:8]).astype(np.uint8)
    assert np.array_equal(out[8, 4:8], expected)


@pytest.mark.parametrize(
    ("height", "width", "max_area"), [(480, 832, 480 * 832), (1080, 1920, 480 * 832), (33, 47, 10**6)]
)
def test_generation_size_is_multiple_of_16_within_area_and_keeps_aspect(height: int, width: int, max_area: int) -> None:
    gen_height, gen_width = generation_size(height, width, max_area)
    assert gen_height % 16 == 0 and gen_width % 16 == 0
    assert gen_height * gen_width <= max_area
    assert abs(gen_width / gen_height - width / height) < 0.1
    assert gen_height <= max(height, 16) + 8 and gen_width <= max(width, 16) + 8


def test_generation_size_keeps_480p_as_is() -> None:
    assert generation_size(480, 832, 480 * 832) == (480, 832)
    assert generation_size(1080, 1920, 480 * 832) == (480, 832)


def test_resize_mask_is_conservative() -> None:
    mask = np.zeros((64, 64), bool)
    mask[10, 10] = True  # one pixel
    assert resize_mask(mask, 16, 16)[2, 2]


def test_reference_on_white_composites_and_crops_to_alpha() -> None:
    rgba = np.zeros((10, 12, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[2:6, 3:9, 3] = 255
    rgba[6, 3:9, 3] = 128
    rgb = reference_on_white(rgba)
    assert rgb.shape == (5, 6, 3)
    assert np.array_equal(rgb[0, 0], [200, 0, 0])
    assert np.array_equal(rgb[4, 0], np.rint([200 * 128 / 255 + 255 * 127 / 255, 255 * 127 / 255, 255 * 127 / 255]))
