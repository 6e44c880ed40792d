"""Reference metrics against ground truth: PSNR / SSIM in the object and shadow regions,
PSNR of the preserved background against the input, optional LPIPS, and the temporal
warping error.

Images are RGB ``uint8`` ``(H, W, 3)``; masks ``(H, W) bool``; shadow mattes ``(H, W)
float32`` in [0, 1]. Boxes are ``(x0, y0, x1, y1)`` pixel boxes with the pixel-corner origin,
x1 and y1 exclusive. Everything streams: the sequence functions read one frame of each
input at a time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from insertanywhere.errors import MissingDependencyError
from insertanywhere.geometry.boxes import mask_box

OBJECT_BOX_GROWTH = 0.25
"""The object region is the GT object's box grown by this fraction of its size on every side."""

SHADOW_THRESHOLD = 0.05
"""A pixel is in the shadow region when its GT shadow matte exceeds this (5 % darkening)."""

BACKGROUND_MARGIN = 0.02
"""Pixels within this fraction of the image diagonal of the object or its shadow are not background."""


# ----------------------------------------------------------------------------- regions


def grow_box(box: tuple[int, int, int, int], growth: float, width: int, height: int) -> tuple[int, int, int, int]:
    """Grow a pixel box by ``growth`` times its width/height on each side, clipped to the image.

    Args:
        box: (x0, y0, x1, y1) pixels, x1/y1 exclusive.
        growth: fraction of the box size added per side (0.25 = 25 %).
        width, height: image size in pixels.
    """
    x0, y0, x1, y1 = box
    dx = (x1 - x0) * growth
    dy = (y1 - y0) * growth
    return (
        max(0, math.floor(x0 - dx)),
        max(0, math.floor(y0 - dy)),
        min(width, math.ceil(x1 + dx)),
        min(height, math.ceil(y1 + dy)),
    )


def dilate_mask(mask: np.ndarray, radius_px: int) -> np.ndarray:
    """(H, W) bool mask dilated by a disk of ``radius_px`` pixels."""
    import cv2

    if radius_px <= 0:
        return np.asarray(mask, dtype=bool)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius_px + 1, 2 * radius_px + 1))
    return cv2.dilate(np.asarray(mask, dtype=np.uint8), kernel) > 0


# ----------------------------------------------------------------------------- pixel metrics


def psnr(image: np.ndarray, reference: np.ndarray, region: np.ndarray | None = None) -> float | None:
    """Peak signal-to-noise ratio in dB for 8-bit images, over all pixels or a region.

    PSNR = 10 log10(255^2 / MSE), the MSE taken over the region's pixels and all channels.

    Args:
        image: (H, W, 3) uint8.
        reference: (H, W, 3) uint8.
        region: (H, W) bool pixels to compare, or None for the whole image.

    Returns:
        dB; ``inf`` for identical pixels; None when the region is empty.
    """
    difference = image.astype(np.float64) - reference.astype(np.float64)
    if region is not None:
        if not np.any(region):
            return None
        difference = difference[region]
    mse = float(np.mean(difference * difference))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(255.0 * 255.0 / mse)


def _ssim_window(height: int, width: int) -> int | None:
    """Largest odd SSIM window <= 7 that fits, or None when the region is under 3 pixels."""
    side = min(height, width, 7)
    if side % 2 == 0:
        side -= 1
    return side if side >= 3 else None


def ssim_in_box(image: np.ndarray, reference: np.ndarray, box: tuple[int, int, int, int]) -> float | None:
    """Mean SSIM (scikit-image, Gaussian-free 7x7 window, data range 255) inside a pixel box.

    Args:
        image, reference: (H, W, 3) uint8.
        box: (x0, y0, x1, y1) pixels, exclusive ends.

    Returns:
        SSIM in [-1, 1], None when the box is smaller than 3 pixels.
    """
    from skimage.metrics import structural_similarity

    x0, y0, x1, y1 = box
    window = _ssim_window(y1 - y0, x1 - x0)
    if window is None:
        return None
    return float(
        structural_similarity(
            image[y0:y1, x0:x1], reference[y0:y1, x0:x1], channel_axis=-1, data_range=255, win_size=window
        )
    )


def ssim_in_region(image: np.ndarray, reference: np.ndarray, region: np.ndarray) -> float | None:
    """Mean of the SSIM map over a region's pixels (the map is computed on the region's box).

    Args:
        image, reference: (H, W, 3) uint8.
        region: (H, W) bool.

    Returns:
        SSIM in [-1, 1], None when the region is empty or under 3 pixels across.
    """
    from skimage.metrics import structural_similarity

    box = mask_box(region)
    if box is None:
        return None
    x0, y0, x1, y1 = box
    window = _ssim_window(y1 - y0, x1 - x0)
    if window is None:
        return None
    _, ssim_map = structural_similarity(
        image[y0:y1, x0:x1],
        reference[y0:y1, x0:x1],
        channel_axis=-1,
        data_range=255,
        win_size=window,
        full=True,
    )
    return float(np.mean(ssim_map.mean(axis=-1)[region[y0:y1, x0:x1]]))


# ----------------------------------------------------------------------------- LPIPS (optional)


def load_lpips(net: str = "alex") -> Callable[[np.ndarray, np.ndarray], float]:
    """An LPIPS distance (Zhang et al., CVPR 2018) on two (h, w, 3) uint8 crops, when the
    ``lpips`` package and its backbone weights are at hand.

    Raises:
        MissingDependencyError: one line, when lpips/torchvision or the backbone weights are missing.
    """
    try:
        import lpips  # type: ignore[import-not-found]
        import torch
    except ImportError as err:
        raise MissingDependencyError(
            f"LPIPS skipped: {err}; install it with: pip install lpips (needs torchvision and its backbone weights)"
        ) from None
    try:
        model = lpips.LPIPS(net=net, verbose=False).eval()
    except Exception as err:  # the backbone download fails offline: say so in one line
        raise MissingDependencyError(f"LPIPS skipped: the {net} backbone weights are not at hand ({err})") from None

    def distance(image: np.ndarray, reference: np.ndarray) -> float:
        def to_tensor(array: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(array).permute(2, 0, 1)[None].float() / 127.5 - 1.0

        with torch.no_grad():
            return float(model(to_tensor(image), to_tensor(reference)).item())

    return distance


# ----------------------------------------------------------------------------- flow and warping error


def dis_flow(frame_from: np.ndarray, frame_to: np.ndarray) -> np.ndarray:
    """Dense optical flow with OpenCV DIS (medium preset).

    Args:
        frame_from: (H, W, 3) uint8 RGB frame t.
        frame_to: (H, W, 3) uint8 RGB frame t+1.

    Returns:
        (H, W, 2) float32 displacement (dx, dy) in pixels from ``frame_from`` to ``frame_to``:
        ``frame_from(x) ~ frame_to(x + flow(x))``.
    """
    import cv2

    gray_from = cv2.cvtColor(frame_from, cv2.COLOR_RGB2GRAY)
    gray_to = cv2.cvtColor(frame_to, cv2.COLOR_RGB2GRAY)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(gray_from, gray_to, None)


def warp_by_flow(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Backward-warp: ``out(x) = image(x + flow(x))`` with bilinear sampling, edges replicated.

    Args:
        image: (H, W, C) or (H, W) array (uint8 or float).
        flow: (H, W, 2) float32 pixel displacement (dx, dy).
    """
    import cv2

    height, width = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    map_x = grid_x + flow[..., 0]
    map_y = grid_y + flow[..., 1]
    return cv2.remap(image, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def flow_consistency_mask(flow_forward: np.ndarray, flow_backward: np.ndarray) -> np.ndarray:
    """Pixels whose forward flow is confirmed by the backward flow (not occluded, not out of view).

    Forward-backward test of Sundaram et al. (ECCV 2010), as used by Lai et al. (ECCV 2018):
    ``|w + w_b(x + w)|^2 < 0.01 (|w|^2 + |w_b(x + w)|^2) + 0.5``.

    Args:
        flow_forward: (H, W, 2) float32, t -> t+1.
        flow_backward: (H, W, 2) float32, t+1 -> t.

    Returns:
        (H, W) bool, True where the flow is trusted.
    """
    height, width = flow_forward.shape[:2]
    backward_at_target = warp_by_flow(flow_backward, flow_forward)
    loop = flow_forward + backward_at_target
    loop_sq = np.sum(loop * loop, axis=-1)
    magnitude_sq = np.sum(flow_forward**2, axis=-1) + np.sum(backward_at_target**2, axis=-1)
    consistent = loop_sq < 0.01 * magnitude_sq + 0.5
    grid_x, grid_y = np.meshgrid(np.arange(width), np.arange(height))
    target_x = grid_x + flow_forward[..., 0]
    target_y = grid_y + flow_forward[..., 1]
    inside = (target_x >= 0) & (target_x <= width - 1) & (target_y >= 0) & (target_y <= height - 1)
    return consistent & inside


def warping_error_pair(
    output_t: np.ndarray,
    output_next: np.ndarray,
    flow_forward: np.ndarray,
    valid: np.ndarray,
    region: np.ndarray | None = None,
) -> float | None:
    """Warping error of one frame pair (Lai et al., ECCV 2018, Eq. 8).

    ``E = sum_x M(x) |O_t(x) - O_{t+1}(x + w(x))|^2 / sum_x M(x)``, intensities in [0, 1],
    the squared norm over the three channels.

    Args:
        output_t, output_next: (H, W, 3) uint8 frames t and t+1 of the judged video.
        flow_forward: (H, W, 2) float32 flow t -> t+1 (computed on the input video when it exists).
        valid: (H, W) bool non-occluded pixels of that flow.
        region: optional (H, W) bool restriction (e.g. around the object).

    Returns:
        The error, or None when no pixel is valid.
    """
    mask = valid if region is None else valid & region
    if not np.any(mask):
        return None
    warped_next = warp_by_flow(output_next, flow_forward).astype(np.float64) / 255.0
    difference = output_t.astype(np.float64) / 255.0 - warped_next
    return float(np.mean(np.sum(difference * difference, axis=-1)[mask]))


def warping_error(
    output_frames: Iterable[np.ndarray],
    flow_frames: Iterable[np.ndarray] | None = None,
    regions: Iterable[np.ndarray] | None = None,
) -> dict[str, float | None]:
    """Temporal warping error of a video, averaged over frame pairs.

    Args:
        output_frames: iterable of (H, W, 3) uint8 frames of the judged video.
        flow_frames: iterable of (H, W, 3) uint8 frames to compute the flow on (the input
            video, so that the judged video's own flicker does not bend the flow); None uses
            ``output_frames`` itself.
        regions: optional iterable of (H, W) bool per frame; the error is also reported inside them.

    Returns:
        ``{"warping_error": mean over pairs, "warping_error_region": mean over pairs in the
        regions or None, "n_pairs": int}``.
    """
    return warping_errors({"video": output_frames}, flow_frames, regions)["video"]


def warping_errors(
    videos: dict[str, Iterable[np.ndarray]],
    flow_frames: Iterable[np.ndarray] | None = None,
    regions: Iterable[np.ndarray] | None = None,
) -> dict[str, dict[str, float | None]]:
    """Warping error of several videos of one clip with one shared flow (computed once per pair).

    Args:
        videos: name -> iterable of (H, W, 3) uint8 frames (same length and size).
        flow_frames: frames to compute the flow on; None uses the first video.
        regions: optional (H, W) bool per frame (see ``warping_error``).

    Returns:
        name -> the dict of ``warping_error``.
    """
    names = list(videos)
    iterators = {name: iter(frames) for name, frames in videos.items()}
    own_flow = flow_frames is None
    flow_iter = iterators[names[0]] if own_flow else iter(flow_frames)
    region_iter = iter(regions) if regions is not None else None
    errors: dict[str, list[float]] = {name: [] for name in names}
    region_errors: dict[str, list[float]] = {name: [] for name in names}
    previous = {name: next(it, None) for name, it in iterators.items()}
    previous_flow_frame = previous[names[0]] if own_flow else next(flow_iter, None)
    previous_region = next(region_iter, None) if region_iter is not None else None
    while previous[names[0]] is not None:
        current = {name: next(it, None) for name, it in iterators.items()}
        if current[names[0]] is None:
            break
        current_flow_frame = current[names[0]] if own_flow else next(flow_iter)
        current_region = next(region_iter, None) if region_iter is not None else None
        flow_forward = dis_flow(previous_flow_frame, current_flow_frame)
        flow_backward = dis_flow(current_flow_frame, previous_flow_frame)
        valid = flow_consistency_mask(flow_forward, flow_backward)
        for name in names:
            if previous[name] is None or current[name] is None:
                continue
            error = warping_error_pair(previous[name], current[name], flow_forward, valid)
            if error is not None:
                errors[name].append(error)
            if previous_region is not None:
                region_error = warping_error_pair(previous[name], current[name], flow_forward, valid, previous_region)
                if region_error is not None:
                    region_errors[name].append(region_error)
        previous, previous_flow_frame, previous_region = current, current_flow_frame, current_region
    return {
        name: {
            "warping_error": float(np.mean(errors[name])) if errors[name] else None,
            "warping_error_region": float(np.mean(region_errors[name])) if region_errors[name] else None,
            "n_pairs": len(errors[name]),
        }
        for name in names
    }


# ----------------------------------------------------------------------------- the GT sequence


@dataclass
class GtFrame:
    """One frame of everything the GT comparison reads.

    Attributes:
        output: (H, W, 3) uint8 frame of the inserted video.
        gt: (H, W, 3) uint8 frame of the GT video (object truly in the scene).
        gt_mask: (H, W) bool GT visible object mask.
        gt_shadow: (H, W) float32 GT shadow matte in [0, 1], or None.
        input_frame: (H, W, 3) uint8 frame of the input (object-free) video, or None.
        predicted_mask: (H, W) bool the output's visible mask, or None.
        predicted_shadow: (H, W) float32 the output's shadow matte in [0, 1], or None.
    """

    output: np.ndarray
    gt: np.ndarray
    gt_mask: np.ndarray
    gt_shadow: np.ndarray | None = None
    input_frame: np.ndarray | None = None
    predicted_mask: np.ndarray | None = None
    predicted_shadow: np.ndarray | None = None


@dataclass
class GtFrameScores:
    """Per-frame GT scores (None = not defined in that frame, e.g. no visible object)."""

    psnr_object: list[float | None] = field(default_factory=list)
    ssim_object: list[float | None] = field(default_factory=list)
    lpips_object: list[float | None] = field(default_factory=list)
    psnr_shadow: list[float | None] = field(default_factory=list)
    ssim_shadow: list[float | None] = field(default_factory=list)
    psnr_background: list[float | None] = field(default_factory=list)
    psnr_full: list[float | None] = field(default_factory=list)


def object_region_box(gt_mask: np.ndarray, growth: float = OBJECT_BOX_GROWTH) -> tuple[int, int, int, int] | None:
    """The GT object's box grown by ``growth`` per side; None when the object is not visible."""
    box = mask_box(gt_mask)
    if box is None:
        return None
    height, width = gt_mask.shape
    return grow_box(box, growth, width, height)


def background_region(frame: GtFrame) -> np.ndarray:
    """(H, W) bool pixels that should be untouched: away from the GT and predicted object and shadows."""
    touched = frame.gt_mask.copy()
    if frame.predicted_mask is not None:
        touched |= frame.predicted_mask
    if frame.gt_shadow is not None:
        touched |= frame.gt_shadow > SHADOW_THRESHOLD
    if frame.predicted_shadow is not None:
        touched |= frame.predicted_shadow > SHADOW_THRESHOLD
    height, width = touched.shape
    margin = math.ceil(BACKGROUND_MARGIN * math.hypot(height, width))
    return ~dilate_mask(touched, margin)


def score_gt_frame(
    frame: GtFrame, lpips_distance: Callable[[np.ndarray, np.ndarray], float] | None = None
) -> dict[str, float | None]:
    """PSNR/SSIM (and LPIPS) of one frame in the object region, the shadow region and the background."""
    scores: dict[str, float | None] = {
        "psnr_object": None,
        "ssim_object": None,
        "lpips_object": None,
        "psnr_shadow": None,
        "ssim_shadow": None,
        "psnr_background": None,
        "psnr_full": psnr(frame.output, frame.gt),
    }
    box = object_region_box(frame.gt_mask)
    if box is not None:
        x0, y0, x1, y1 = box
        region = np.zeros_like(frame.gt_mask)
        region[y0:y1, x0:x1] = True
        scores["psnr_object"] = psnr(frame.output, frame.gt, region)
        scores["ssim_object"] = ssim_in_box(frame.output, frame.gt, box)
        if lpips_distance is not None:
            scores["lpips_object"] = lpips_distance(frame.output[y0:y1, x0:x1], frame.gt[y0:y1, x0:x1])
    if frame.gt_shadow is not None:
        shadow_region = (frame.gt_shadow > SHADOW_THRESHOLD) & ~frame.gt_mask
        scores["psnr_shadow"] = psnr(frame.output, frame.gt, shadow_region)
        scores["ssim_shadow"] = ssim_in_region(frame.output, frame.gt, shadow_region)
    if frame.input_frame is not None:
        scores["psnr_background"] = psnr(frame.output, frame.input_frame, background_region(frame))
    return scores


def finite_mean(values: list[float | None]) -> float | None:
    """Mean of the defined values; inf when every defined value is inf (identical pixels)."""
    defined = [v for v in values if v is not None]
    if not defined:
        return None
    finite = [v for v in defined if math.isfinite(v)]
    if not finite:
        return math.inf
    return float(np.mean(finite))


def score_gt_sequence(
    frames: Iterable[GtFrame], lpips_distance: Callable[[np.ndarray, np.ndarray], float] | None = None
) -> tuple[dict[str, float | None], GtFrameScores]:
    """Score a stream of GtFrame; returns (means, per-frame scores).

    PSNR means skip frames where PSNR is infinite (identical pixels) unless all are, in which case
    the mean is ``inf``: an infinite frame says "perfect" and must not swamp the others.
    """
    per_frame = GtFrameScores()
    for frame in frames:
        scores = score_gt_frame(frame, lpips_distance)
        for name, value in scores.items():
            getattr(per_frame, name).append(value)
    means = {name: finite_mean(values) for name, values in vars(per_frame).items()}
    return means, per_frame


def iter_gt_frames(
    output_frames: Iterable[np.ndarray],
    gt_frames: Iterable[np.ndarray],
    gt_masks: Iterable[np.ndarray],
    gt_shadows: Iterable[np.ndarray | None] | None = None,
    input_frames: Iterable[np.ndarray] | None = None,
    predicted_masks: Iterable[np.ndarray] | None = None,
    predicted_shadows: Iterable[np.ndarray] | None = None,
) -> Iterator[GtFrame]:
    """Zip frame streams into GtFrame, stopping at the shortest mandatory stream."""

    def optional(stream: Iterable | None) -> Iterator:
        if stream is None:
            while True:
                yield None
        else:
            yield from stream
            while True:
                yield None

    for output, gt, gt_mask, gt_shadow, input_frame, predicted_mask, predicted_shadow in zip(
        output_frames,
        gt_frames,
        gt_masks,
        optional(gt_shadows),
        optional(input_frames),
        optional(predicted_masks),
        optional(predicted_shadows),
        strict=False,
    ):
        yield GtFrame(output, gt, gt_mask, gt_shadow, input_frame, predicted_mask, predicted_shadow)
