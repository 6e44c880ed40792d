"""VBench-style quality of the output video, implemented in the project.

Formulas follow VBench's public code (Huang et al., CVPR 2024; ``vbench/*.py``):

* subject consistency: DINO features ``d_t`` of every frame (shorter side resized to 224,
  ImageNet normalisation, no crop), ``S = 1/(T-1) sum_{t>=1} (max(0, <d_{t-1}, d_t>) + max(0, <d_0, d_t>)) / 2``.
* background consistency: the same formula on CLIP image features (shorter side 224,
  centre crop 224, CLIP normalisation).
* motion smoothness: interpolate every odd frame from its even neighbours and compare,
  ``S = (255 - mean_k mean|I_{2k+1} - Î_{2k+1}|) / 255``. VBench interpolates with AMT-S; no
  interpolation model is at hand here, so ``Î`` is a classical flow-based midpoint
  interpolation (OpenCV DIS flow both ways, Super SloMo's linear flow approximation at t = 1/2,
  backward warping of both neighbours, average). It measures the same thing but is not
  numerically VBench's; the report names it ``motion_smoothness_dis``.
* imaging quality: VBench scores MUSIQ (SPAQ weights) / 100. MUSIQ is not available here, so
  the report gives a *substitute*, ``imaging_quality_sharpness_noise``: a no-reference index
  from the blur effect of Crété-Roffet et al. (2007) and the noise level of Immerkær (1996),
  on frames whose longer side is brought to 512 as VBench does. Not comparable with MUSIQ.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import numpy as np

from insertanywhere.eval.gt_metrics import dis_flow, warp_by_flow
from insertanywhere.models.image_encoder import ImageEncoder, Resize

IMAGING_QUALITY_LONGER_SIDE = 512
NOISE_SCALE_LEVELS = 10.0
"""Immerkær noise sigma (8-bit levels) at which the substitute imaging index is divided by 2."""


# ----------------------------------------------------------------------------- consistency


def consistency_from_features(features: np.ndarray) -> float | None:
    """VBench's consistency of unit feature vectors, each frame against the previous and the first.

    Args:
        features: (T, D) float, unit-norm rows, in frame order.

    Returns:
        ``1/(T-1) sum_{t=1}^{T-1} (max(0, f_{t-1}.f_t) + max(0, f_0.f_t)) / 2``; None when T < 2.
    """
    if len(features) < 2:
        return None
    to_previous = np.maximum(0.0, np.sum(features[1:] * features[:-1], axis=1))
    to_first = np.maximum(0.0, features[1:] @ features[0])
    return float(np.mean((to_previous + to_first) / 2.0))


def _chunks(frames: Iterable[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    chunk: list[np.ndarray] = []
    for frame in frames:
        chunk.append(frame)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def embed_stream(
    frames: Iterable[np.ndarray], encoder: ImageEncoder, resize: Resize, batch_size: int = 8
) -> np.ndarray:
    """(T, D) float32 unit features of a frame stream, ``batch_size`` frames in memory at a time."""
    parts = [encoder.embed(chunk, resize=resize, batch_size=batch_size) for chunk in _chunks(frames, batch_size)]
    return np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)


def subject_consistency(frames: Iterable[np.ndarray], dino: ImageEncoder) -> float | None:
    """VBench subject consistency (DINO features; see the module doc). frames: (H, W, 3) uint8."""
    return consistency_from_features(embed_stream(frames, dino, resize="shorter"))


def background_consistency(frames: Iterable[np.ndarray], clip: ImageEncoder) -> float | None:
    """VBench background consistency (CLIP features; see the module doc). frames: (H, W, 3) uint8."""
    return consistency_from_features(embed_stream(frames, clip, resize="shorter_center_crop"))


# ----------------------------------------------------------------------------- motion smoothness


def interpolate_midpoint(frame_0: np.ndarray, frame_1: np.ndarray) -> np.ndarray:
    """Classical frame interpolation at t = 1/2 between two frames.

    Flows F01, F10 by DIS; intermediate flows by Super SloMo's linear approximation
    (Jiang et al., CVPR 2018, Eq. 4) at t = 1/2: ``F_t0 = -t(1-t) F01 + t^2 F10`` and
    ``F_t1 = (1-t)^2 F01 - t(1-t) F10``; both frames are backward-warped to t and averaged.

    Args:
        frame_0, frame_1: (H, W, 3) uint8 RGB.

    Returns:
        (H, W, 3) uint8 interpolated frame.
    """
    t = 0.5
    flow_01 = dis_flow(frame_0, frame_1)
    flow_10 = dis_flow(frame_1, frame_0)
    flow_t0 = -t * (1 - t) * flow_01 + t * t * flow_10
    flow_t1 = (1 - t) ** 2 * flow_01 - t * (1 - t) * flow_10
    warped_0 = warp_by_flow(frame_0, flow_t0).astype(np.float32)
    warped_1 = warp_by_flow(frame_1, flow_t1).astype(np.float32)
    return np.clip((1 - t) * warped_0 + t * warped_1 + 0.5, 0, 255).astype(np.uint8)


def motion_smoothness(frames: Iterable[np.ndarray]) -> float | None:
    """VBench's motion smoothness with the DIS midpoint interpolation (see the module doc).

    Args:
        frames: iterable of (H, W, 3) uint8, streamed (three frames in memory).

    Returns:
        ``(255 - mean absolute difference of interpolated vs real odd frames) / 255`` in [0, 1];
        None when the clip has fewer than 3 frames.
    """
    differences: list[float] = []
    window: list[np.ndarray] = []
    for frame in frames:
        window.append(frame)
        if len(window) == 3:
            predicted = interpolate_midpoint(window[0], window[2])
            differences.append(float(np.mean(np.abs(predicted.astype(np.int16) - window[1].astype(np.int16)))))
            window = [window[2]]
    if not differences:
        return None
    return (255.0 - float(np.mean(differences))) / 255.0


# ----------------------------------------------------------------------------- imaging quality substitute


def immerkaer_noise_sigma(gray: np.ndarray) -> float:
    """Noise standard deviation of a grey image (Immerkær, CVIU 1996, Eq. 4).

    ``sigma = sqrt(pi/2) / (6 (W-2)(H-2)) * sum |I * N|`` with N the 3x3 difference-of-Laplacians mask
    ``[[1, -2, 1], [-2, 4, -2], [1, -2, 1]]``, which cancels image structure up to second order.

    Args:
        gray: (H, W) float, intensities in 8-bit levels.

    Returns:
        sigma in the same units.
    """
    from scipy.signal import convolve2d

    height, width = gray.shape
    if height < 3 or width < 3:
        return 0.0
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64)
    response = convolve2d(gray.astype(np.float64), kernel, mode="valid")
    return float(math.sqrt(math.pi / 2.0) * np.sum(np.abs(response)) / (6.0 * (width - 2) * (height - 2)))


def _to_longer_side(frame: np.ndarray, longer_side: int) -> np.ndarray:
    import cv2

    height, width = frame.shape[:2]
    if max(height, width) <= longer_side:
        return frame
    scale = longer_side / max(height, width)
    return cv2.resize(frame, (int(width * scale), int(height * scale)), interpolation=cv2.INTER_AREA)


def sharpness_noise_index(frame: np.ndarray) -> dict[str, float]:
    """No-reference imaging index of one frame (the MUSIQ substitute; higher is better).

    ``index = (1 - blur_effect) / (1 + sigma / 10)``: ``blur_effect`` in [0, 1] (0 sharp) from
    ``skimage.measure.blur_effect`` (Crété-Roffet et al. 2007), ``sigma`` the Immerkær noise level
    in 8-bit grey levels.

    Args:
        frame: (H, W, 3) uint8 RGB; shrunk first so its longer side is at most 512 (VBench).
    """
    import cv2
    from skimage.measure import blur_effect

    small = _to_longer_side(frame, IMAGING_QUALITY_LONGER_SIDE)
    gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float64)
    blur = float(blur_effect(gray / 255.0))
    sigma = immerkaer_noise_sigma(gray)
    return {"blur_effect": blur, "noise_sigma": sigma, "index": (1.0 - blur) / (1.0 + sigma / NOISE_SCALE_LEVELS)}


def imaging_quality_substitute(frames: Iterable[np.ndarray]) -> dict[str, float | None]:
    """Mean sharpness-noise index and its parts over a frame stream (see ``sharpness_noise_index``)."""
    rows = [sharpness_noise_index(frame) for frame in frames]
    if not rows:
        return {"imaging_quality_sharpness_noise": None, "blur_effect": None, "noise_sigma": None}
    return {
        "imaging_quality_sharpness_noise": float(np.mean([r["index"] for r in rows])),
        "blur_effect": float(np.mean([r["blur_effect"] for r in rows])),
        "noise_sigma": float(np.mean([r["noise_sigma"] for r in rows])),
    }
