"""The compositor: bit-exact outside the object and shadow, shadow darkening, harmonisation over time, blur, grain."""

from __future__ import annotations

import numpy as np
import pytest

from insertanywhere.render.layer import ObjectLayer
from insertanywhere.synth.blur_grain import edge_blur_sigma, motion_blur, motion_kernel, noise_sigma
from insertanywhere.synth.composite import CompositeConfig, Compositor
from insertanywhere.synth.harmonize import OneEuroFilter, linear_to_srgb, srgb_to_linear

W, H = 96, 72
STILL = np.zeros(2, np.float32)


def textured_frame(seed: int = 0, level: float = 120.0, noise: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:H, 0:W]
    base = level + 30 * np.sin(xs / 5.0) * np.cos(ys / 7.0)
    frame = np.stack([base, base * 0.9, base * 0.8], axis=-1) + noise * rng.standard_normal((H, W, 3))
    return np.clip(np.rint(frame), 0, 255).astype(np.uint8)


def square_layer(x0: int = 30, y0: int = 20, size: int = 24, color=(0.8, 0.3, 0.2)) -> ObjectLayer:
    layer = ObjectLayer.empty(W, H)
    layer.alpha[y0 : y0 + size, x0 : x0 + size] = 1.0
    layer.color[y0 : y0 + size, x0 : x0 + size] = color
    layer.depth[y0 : y0 + size, x0 : x0 + size] = 2.0
    layer.bbox = (x0, y0, x0 + size, y0 + size)
    return layer


def shadow_band() -> np.ndarray:
    matte = np.zeros((H, W), np.float32)
    matte[44:52, 20:70] = 0.6
    return matte


@pytest.mark.parametrize("velocity", [STILL, np.array([6.0, 2.0], np.float32)])
def test_pixels_outside_alpha_and_shadow_are_bit_exact(velocity: np.ndarray) -> None:
    frame = textured_frame(noise=3.0)
    layer = square_layer()
    visible = layer.alpha.copy()
    visible[20:30, 30:40] = 0.0  # an occluder cuts a corner
    shadow = shadow_band()
    compositor = Compositor(CompositeConfig(), reference_frame=frame, reference_layer=layer)
    out = compositor.composite(frame, layer, visible, shadow, velocity)
    untouched = (visible == 0) & (shadow == 0)
    assert out.dtype == np.uint8 and out.shape == frame.shape
    np.testing.assert_array_equal(out[untouched], frame[untouched])
    assert np.abs(out[visible > 0].astype(int) - frame[visible > 0]).mean() > 10


def test_nothing_to_draw_returns_the_frame() -> None:
    frame = textured_frame()
    out = Compositor().composite(frame, ObjectLayer.empty(W, H), np.zeros((H, W), np.float32), np.zeros((H, W)), STILL)
    np.testing.assert_array_equal(out, frame)


def test_shadow_darkens_multiplicatively_and_keeps_texture() -> None:
    frame = textured_frame()
    config = CompositeConfig(shadow_strength=1.0, grain=False)
    out = Compositor(config).composite(
        frame, ObjectLayer.empty(W, H), np.zeros((H, W), np.float32), shadow_band(), STILL
    )
    band = shadow_band() > 0
    ratio = srgb_to_linear(out[band] / 255.0) / np.maximum(srgb_to_linear(frame[band] / 255.0), 1e-4)
    np.testing.assert_allclose(np.median(ratio), 0.4, atol=0.02)
    # The texture survives: shadowed pixels still vary like the input.
    assert np.corrcoef(out[band][:, 0].astype(float), frame[band][:, 0].astype(float))[0, 1] > 0.95


def test_harmonisation_follows_a_global_brightness_change() -> None:
    frame = textured_frame(level=140.0)
    layer = square_layer()
    config = CompositeConfig(grain=False, match_sharpness=False, motion_blur=False, feather_px=0.0)
    compositor = Compositor(config, reference_frame=frame, reference_layer=layer)
    inside = layer.alpha > 0
    first = compositor.composite(frame, layer, layer.alpha, np.zeros((H, W), np.float32), STILL)
    # The lights dim: the frame is 50 % darker in linear light from now on.
    dark = np.rint(linear_to_srgb(srgb_to_linear(frame / 255.0) * 0.5) * 255).astype(np.uint8)
    outputs = [compositor.composite(dark, layer, layer.alpha, np.zeros((H, W), np.float32), STILL) for _ in range(4)]
    ratio_after_one = srgb_to_linear(outputs[0][inside] / 255.0).mean() / srgb_to_linear(first[inside] / 255.0).mean()
    ratio_settled = srgb_to_linear(outputs[-1][inside] / 255.0).mean() / srgb_to_linear(first[inside] / 255.0).mean()
    assert ratio_after_one < 0.75  # follows the step at once (no long lag)
    assert abs(ratio_settled - 0.5) < 0.05
    # And a steady frame keeps a steady object (no flicker from the filter).
    again = compositor.composite(dark, layer, layer.alpha, np.zeros((H, W), np.float32), STILL)
    assert np.abs(again[inside].astype(int) - outputs[-1][inside]).max() <= 1


def test_placement_tint_moves_the_object_toward_the_scene_illuminant() -> None:
    frame = textured_frame()
    frame[..., 2] = frame[..., 2] // 3  # a warm (yellow-orange) scene
    layer = square_layer(color=(0.6, 0.6, 0.6))
    config = CompositeConfig(grain=False, match_sharpness=False, motion_blur=False, exposure_transfer=0.0)
    out = Compositor(config, frame, layer).composite(frame, layer, layer.alpha, np.zeros((H, W), np.float32), STILL)
    inside = layer.alpha > 0
    mean = out[inside].astype(float).mean(axis=0)
    assert mean[0] > mean[2] + 10  # grey turned warm


def test_motion_blur_widens_the_layer_along_the_velocity() -> None:
    rgba = np.zeros((40, 60, 4), np.float32)
    rgba[15:25, 25:35] = 1.0
    blurred = motion_blur(rgba, np.array([16.0, 0.0]), shutter=0.5)
    cols = np.flatnonzero(blurred[..., 3].max(axis=0) > 1e-3)
    rows = np.flatnonzero(blurred[..., 3].max(axis=1) > 1e-3)
    assert cols[-1] - cols[0] + 1 >= 10 + 7  # 16 px/frame * 0.5 shutter = 8 px smear
    assert rows[-1] - rows[0] + 1 <= 11  # not across it
    np.testing.assert_allclose(blurred[..., 3].sum(), rgba[..., 3].sum(), rtol=1e-4)
    assert motion_kernel(np.array([0.3, 0.0]), 0.5) is None


def test_compositor_smear_outside_extends_past_the_silhouette() -> None:
    frame = textured_frame()
    layer = square_layer()
    config = CompositeConfig(smear_outside=True, grain=False)
    compositor = Compositor(config, frame, layer)
    out = compositor.composite(frame, layer, layer.alpha, np.zeros((H, W), np.float32), np.array([12.0, 0.0]))
    assert compositor.last_alpha is not None
    outside = (compositor.last_alpha > 0.05) & (layer.alpha == 0)
    assert outside.any() and (out[outside] != frame[outside]).any()


def test_grain_matches_the_footage_noise() -> None:
    flat = np.full((H, W, 3), 128.0)
    rng = np.random.default_rng(1)
    noisy = np.clip(np.rint(flat + 6.0 * rng.standard_normal(flat.shape)), 0, 255).astype(np.uint8)
    np.testing.assert_allclose(noise_sigma(noisy), 6.0, rtol=0.15)
    layer = square_layer(x0=20, y0=16, size=36, color=(0.5, 0.5, 0.5))
    config = CompositeConfig(harmonize=False, match_sharpness=False, feather_px=0.0)
    out = Compositor(config, noisy, layer).composite(noisy, layer, layer.alpha, np.zeros((H, W), np.float32), STILL)
    inside = out[18:50, 22:54]
    measured = noise_sigma(inside)
    assert 3.5 < measured.mean() < 9.0


def test_edge_blur_sigma_recovers_a_gaussian_blur() -> None:
    import cv2

    image = np.zeros((80, 80), np.float32)
    image[:, 40:] = 1.0
    image[40:, :] = 1.0 - image[40:, :]
    for sigma in (1.0, 2.0):
        estimate = edge_blur_sigma(cv2.GaussianBlur(image, (0, 0), sigma))
        assert estimate is not None and abs(estimate - sigma) < 0.4 * sigma


def test_one_euro_filter_is_steady_and_follows_steps() -> None:
    smoother = OneEuroFilter()
    rng = np.random.default_rng(0)
    steady = [smoother(np.array([0.01 * rng.standard_normal()]))[0] for _ in range(30)]
    assert np.std(steady[10:]) < 0.005
    after_step = [smoother(np.array([1.0]))[0] for _ in range(3)]
    assert after_step[0] > 0.5 and after_step[-1] > 0.9


def test_light_wrap_tints_the_rim_not_the_core() -> None:
    frame = np.zeros((H, W, 3), np.uint8)
    frame[..., 2] = 230  # a blue background
    layer = square_layer(x0=30, y0=20, size=30, color=(0.9, 0.9, 0.1))
    config = CompositeConfig(harmonize=False, match_sharpness=False, grain=False, feather_px=0.0, light_wrap=0.5)
    plain = CompositeConfig(harmonize=False, match_sharpness=False, grain=False, feather_px=0.0, light_wrap=0.0)
    no_shadow = np.zeros((H, W), np.float32)
    wrapped = Compositor(config, frame, layer).composite(frame, layer, layer.alpha, no_shadow, STILL)
    clean = Compositor(plain, frame, layer).composite(frame, layer, layer.alpha, no_shadow, STILL)
    rim = (20, slice(35, 45))  # the object's top row
    core = (35, slice(40, 45))
    assert wrapped[rim][:, 2].mean() > clean[rim][:, 2].mean() + 20  # blue spills onto the rim
    np.testing.assert_array_equal(wrapped[core], clean[core])
