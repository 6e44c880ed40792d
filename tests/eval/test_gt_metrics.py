"""PSNR / SSIM / warping error on hand-made clips with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from insertanywhere.errors import MissingDependencyError
from insertanywhere.eval.gt_metrics import (
    GtFrame,
    grow_box,
    iter_gt_frames,
    load_lpips,
    psnr,
    score_gt_frame,
    score_gt_sequence,
    ssim_in_box,
    ssim_in_region,
    warping_error,
)


def textured_frame(height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    import cv2

    noise = rng.integers(0, 256, size=(height // 4, width // 4, 3), dtype=np.uint8)
    return cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)


def test_psnr_identical_is_inf_and_known_value() -> None:
    a = textured_frame()
    assert psnr(a, a) == math.inf
    b = a.astype(np.int16)
    b = np.clip(b + 5, 0, 255).astype(np.uint8)
    mse = np.mean((b.astype(float) - a) ** 2)
    assert psnr(b, a) == pytest.approx(10 * math.log10(255**2 / mse))
    constant = np.zeros((4, 4, 3), np.uint8)
    assert psnr(constant + 10, constant) == pytest.approx(10 * math.log10(255**2 / 100))
    assert psnr(a, a, np.zeros(a.shape[:2], bool)) is None


def test_ssim_identical_is_one() -> None:
    a = textured_frame()
    assert ssim_in_box(a, a, (5, 5, 40, 30)) == pytest.approx(1.0)
    region = np.zeros(a.shape[:2], bool)
    region[10:20, 10:30] = True
    assert ssim_in_region(a, a, region) == pytest.approx(1.0)
    assert ssim_in_box(a, 255 - a, (5, 5, 40, 30)) < 0.5
    assert ssim_in_box(a, a, (5, 5, 6, 6)) is None


def test_grow_box_by_25_percent_and_clip() -> None:
    assert grow_box((40, 40, 60, 80), 0.25, 200, 200) == (35, 30, 65, 90)
    assert grow_box((0, 0, 20, 20), 0.25, 22, 22) == (0, 0, 22, 22)


def test_gt_frame_regions() -> None:
    gt = textured_frame(seed=1)
    mask = np.zeros(gt.shape[:2], bool)
    mask[10:30, 20:30] = True
    shadow = np.zeros(gt.shape[:2], np.float32)
    shadow[30:34, 15:40] = 0.5
    scores = score_gt_frame(GtFrame(output=gt, gt=gt, gt_mask=mask, gt_shadow=shadow, input_frame=gt))
    assert scores["psnr_object"] == math.inf
    assert scores["ssim_object"] == pytest.approx(1.0)
    assert scores["psnr_shadow"] == math.inf
    assert scores["psnr_background"] == math.inf
    # change only the far corner: object and shadow stay perfect, background drops
    output = gt.copy()
    output[:4, -4:] = 0
    scores = score_gt_frame(GtFrame(output=output, gt=gt, gt_mask=mask, gt_shadow=shadow, input_frame=gt))
    assert scores["psnr_object"] == math.inf
    assert math.isfinite(scores["psnr_background"])
    # no visible object: object metrics are undefined, not zero
    empty = score_gt_frame(GtFrame(output=gt, gt=gt, gt_mask=np.zeros_like(mask)))
    assert empty["psnr_object"] is None and empty["ssim_object"] is None


def test_score_gt_sequence_means_skip_infinite_frames() -> None:
    gt = [textured_frame(seed=s) for s in range(3)]
    masks = [np.ones(gt[0].shape[:2], bool)] * 3
    outputs = [gt[0], np.clip(gt[1].astype(int) + 10, 0, 255).astype(np.uint8), gt[2]]
    means, per_frame = score_gt_sequence(iter_gt_frames(outputs, gt, masks))
    assert per_frame.psnr_object[0] == math.inf
    assert means["psnr_object"] == pytest.approx(per_frame.psnr_object[1])
    means_same, _ = score_gt_sequence(iter_gt_frames(gt, gt, masks))
    assert means_same["psnr_object"] == math.inf
    assert means_same["ssim_object"] == pytest.approx(1.0)


def test_warping_error_static_clip_is_zero() -> None:
    frame = textured_frame(seed=3)
    clip = [frame] * 4
    result = warping_error(clip)
    assert result["n_pairs"] == 3
    assert result["warping_error"] == pytest.approx(0.0, abs=1e-9)


def test_warping_error_sees_flicker_but_not_motion() -> None:
    base = textured_frame(96, 128, seed=4)
    moving = [np.roll(base, shift=2 * t, axis=1) for t in range(4)]
    moving_error = warping_error(moving)["warping_error"]
    flicker = [np.clip(f.astype(int) + (25 if t % 2 else 0), 0, 255).astype(np.uint8) for t, f in enumerate(moving)]
    flicker_error = warping_error(flicker, flow_frames=moving)["warping_error"]
    assert moving_error < 0.002
    assert flicker_error > 10 * moving_error + 0.005


def test_lpips_missing_gives_one_line() -> None:
    try:
        distance = load_lpips()
    except MissingDependencyError as err:
        assert "\n" not in str(err) and "LPIPS" in str(err)
    else:  # pragma: no cover - only where lpips and its weights are installed
        frame = textured_frame()
        assert distance(frame, frame) == pytest.approx(0.0, abs=1e-4)
