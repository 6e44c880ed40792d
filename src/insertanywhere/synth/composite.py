"""The compositing synthesis backend (``--synth composite``): lay the rendered object into each frame so it belongs.

Per frame, in this order (all in linear light, sRGB decoded exactly):

1. shadow: the frame is darkened multiplicatively, ``frame * (1 - shadow_strength * matte)``, so the
   support's texture shows through the shadow;
2. colour: the object is multiplied by a per-channel gain = the placement-time adaptation to the scene's
   illuminant and exposure times the surroundings' change since the placement frame, smoothed over time
   (``synth.harmonize``);
3. optics: the object is blurred to the footage's sharpness, smeared along its image velocity during the
   exposure, and given grain of the footage's noise level (``synth.blur_grain``);
4. edges: the visible alpha is feathered inwards (never grows), and the object is blended over the frame.

Contract: pixels where ``visible_alpha == 0`` and ``shadow_matte == 0`` are returned bit-exact (the motion
blur's smear beyond the silhouette is cut there unless ``CompositeConfig.smear_outside`` is set, and then
``Compositor.last_alpha`` says which pixels the object touched). Frames must be given in order: the
harmonisation's temporal filter keeps state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from insertanywhere.geometry.boxes import mask_box
from insertanywhere.render.layer import ObjectLayer
from insertanywhere.synth.blur_grain import (
    edge_blur_sigma,
    extra_blur_sigma,
    grain,
    mean_velocity,
    motion_blur,
    noise_sigma,
)
from insertanywhere.synth.harmonize import (
    REC709_LUMA,
    OneEuroFilter,
    linear_to_srgb,
    linear_to_srgb_uint8,
    placement_gain,
    ring_width_for,
    srgb_to_linear,
    srgb_uint8_to_linear,
    surroundings_linear,
)


@dataclass(frozen=True)
class CompositeConfig:
    """How the object is laid into the footage.

    Attributes:
        shadow_strength: scale of the shadow matte (1 = the matte's full darkening).
        harmonize: adapt the object's colour to the surroundings, per frame.
        tint_transfer: share of the scene's illuminant tint given to the object at placement (0..1).
        exposure_transfer: share of the surroundings/object luminance ratio applied at placement (0..1).
        max_gain: bound on any harmonisation gain (and 1 / bound).
        temporal_min_cutoff, temporal_beta: One Euro filter of the per-frame gain (cycles/frame, 1/log-gain).
        motion_blur: smear the object along its image velocity.
        shutter: exposed fraction of the frame interval (0.5 = 180-degree shutter).
        smear_outside: let the motion smear reach beyond ``visible_alpha`` (physically right; breaks the
            bit-exact contract there, see ``Compositor.last_alpha``).
        match_sharpness: blur the object when the footage is softer.
        grain: add noise of the footage's level to the object.
        feather_px: inward feather of the visible alpha (Gaussian sigma, px).
        light_wrap: how much of the blurred surroundings spills over the object's rim (0 = none).
        light_wrap_px: the rim's width (Gaussian sigma, px).
        seed: grain seed (same seed, same output).
    """

    shadow_strength: float = 0.85
    harmonize: bool = True
    tint_transfer: float = 0.35
    exposure_transfer: float = 0.2
    max_gain: float = 4.0
    temporal_min_cutoff: float = 0.05
    temporal_beta: float = 3.0
    motion_blur: bool = True
    shutter: float = 0.5
    smear_outside: bool = False
    match_sharpness: bool = True
    grain: bool = True
    feather_px: float = 0.6
    light_wrap: float = 0.3
    light_wrap_px: float = 2.0
    seed: int = 0


MIN_PROBE_PIXELS = 50
MAX_PROBE_SAMPLES = 4096
"""The probe's median is taken over at most this many of its pixels (an even stride: a median of 4096
samples moves by well under a grey level, and a large probe no longer costs tens of ms a frame)."""


def probe_linear(frame: np.ndarray, probe: np.ndarray) -> np.ndarray | None:
    """(3,) float32 median linear colour of a frame's unclipped probe pixels, or None when too few."""
    box = mask_box(probe)
    if box is None:
        return None
    left, top, right, bottom = box  # index arrays of the probe's box only
    ys, xs = np.nonzero(np.asarray(probe, bool)[top:bottom, left:right])
    ys, xs = ys + top, xs + left
    if len(ys) > MAX_PROBE_SAMPLES:
        step = -(-len(ys) // MAX_PROBE_SAMPLES)
        ys, xs = ys[::step], xs[::step]
    pixels = frame[ys, xs]
    pixels = pixels[pixels.max(axis=1) < 250]
    if len(pixels) < MIN_PROBE_PIXELS:
        return None
    return np.median(srgb_uint8_to_linear(pixels), axis=0).astype(np.float32)


class Compositor:
    """Composites one frame at a time; remembers the placement frame's surroundings and the gain's history.

    The footage's noise level is re-measured every ``NOISE_REFRESH_FRAMES`` frames (it changes slowly).

    Args:
        config: the look.
        reference_frame: (H, W, 3) uint8 the placement frame (None: the first composited frame).
        reference_layer: the object's layer in that frame (None: the first composited frame's layer).
    """

    NOISE_REFRESH_FRAMES = 5

    def __init__(
        self,
        config: CompositeConfig | None = None,
        reference_frame: np.ndarray | None = None,
        reference_layer: ObjectLayer | None = None,
        reference_probe: np.ndarray | None = None,
    ) -> None:
        self.config = config or CompositeConfig()
        self._rng = np.random.default_rng(self.config.seed)
        self._gain_filter = OneEuroFilter(self.config.temporal_min_cutoff, self.config.temporal_beta)
        self._reference_surroundings: np.ndarray | None = None
        self._placement_gain = np.ones(3, np.float32)
        self._extra_sigma = 0.0
        self._object_noise = np.zeros(3)
        self._referenced = False
        self._footage_noise: np.ndarray | None = None
        self._frames_since_noise = 0
        self.last_gain = np.ones(3, np.float32)
        self.last_alpha: np.ndarray | None = None
        self._reference_probe: np.ndarray | None = None
        if reference_frame is not None and reference_probe is not None:
            self._reference_probe = probe_linear(reference_frame, reference_probe)
        if reference_frame is not None and reference_layer is not None:
            self._set_reference(reference_frame, reference_layer)

    # ------------------------------------------------------------------------- reference

    def _set_reference(self, frame: np.ndarray, layer: ObjectLayer) -> None:
        """Measure, once, what does not change over the clip: surroundings, object colour, sharpness, object noise."""
        self._referenced = True
        if layer.bbox is None:
            return
        self._reference_surroundings = surroundings_linear(frame, layer.alpha, layer.bbox)
        x0, y0, x1, y1 = layer.bbox
        alpha = layer.alpha[y0:y1, x0:x1]
        color = layer.color[y0:y1, x0:x1]
        solid = alpha > 0.98
        if self.config.harmonize and self._reference_surroundings is not None and solid.sum() >= 10:
            object_mean = srgb_to_linear(color[solid]).mean(axis=0)
            gain = placement_gain(
                object_mean, self._reference_surroundings, self.config.tint_transfer, self.config.exposure_transfer
            )
            self._placement_gain = np.clip(gain, 1.0 / self.config.max_gain, self.config.max_gain).astype(np.float32)
        if self.config.match_sharpness:
            self._extra_sigma = extra_blur_sigma(_footage_sharpness(frame, layer), _object_sharpness(color, alpha))
        if self.config.grain:
            self._object_noise = noise_sigma(color * 255.0, _eroded(solid, 2))

    # ------------------------------------------------------------------------- per frame

    def composite(
        self,
        frame: np.ndarray,
        layer: ObjectLayer,
        visible_alpha: np.ndarray,
        shadow_matte: np.ndarray,
        screen_velocity: np.ndarray,
        lighting_probe: np.ndarray | None = None,
    ) -> np.ndarray:
        """Composite the object into frame t.

        Args:
            frame: (H, W, 3) uint8 sRGB input frame t.
            layer: the object's ObjectLayer at t (colour, full coverage, depth, bbox).
            visible_alpha: (H, W) float32 [0, 1], coverage after occlusion.
            shadow_matte: (H, W) float32 [0, 1], share of light the object removes (already masked by occluders).
            screen_velocity: (2,) or (H, W, 2) float32 px/frame of the object in this frame.
            lighting_probe: (H, W) bool pixels of the same physical surface as ``reference_probe`` (the
                support around the object, seen in this frame, minus object, shadow and movers). When both
                are given, the lighting change is measured there instead of on a screen-space ring, which
                a moving camera fills with different things over time (a change of view, not of light).

        Returns:
            (H, W, 3) uint8; bit-exact where visible_alpha == 0 and shadow_matte == 0.
        """
        if not self._referenced:
            self._set_reference(frame, layer)
        config = self.config
        height, width = frame.shape[:2]
        gain = self._frame_gain(frame, layer, lighting_probe)
        self.last_gain = gain

        alpha_in = np.asarray(visible_alpha, np.float32)
        shadow = np.asarray(shadow_matte, np.float32)
        touched = (alpha_in > 0) | (shadow > 0)
        self.last_alpha = np.zeros((height, width), np.float32)
        if not touched.any():
            return frame.copy()
        velocity = mean_velocity(screen_velocity, alpha_in) if config.motion_blur else np.zeros(2)
        smear = 0.5 * float(np.hypot(*velocity)) * config.shutter
        pad = math.ceil(smear + 3.0 * self._extra_sigma + 3.0 * config.feather_px) + 2
        x0, y0, x1, y1 = _box_of(touched, pad, width, height)

        out_lin = srgb_uint8_to_linear(frame[y0:y1, x0:x1])
        out_lin *= 1.0 - config.shadow_strength * shadow[y0:y1, x0:x1, None]

        alpha = alpha_in[y0:y1, x0:x1]
        obj_alpha = np.zeros_like(alpha)
        if alpha.max() > 0:
            obj_premul, obj_alpha = self._object_patch(
                frame[y0:y1, x0:x1], layer, alpha, (x0, y0, x1, y1), gain, velocity
            )
            if not config.smear_outside:
                obj_alpha = np.where(alpha > 0, obj_alpha, 0.0)
                obj_premul = np.where(alpha[..., None] > 0, obj_premul, 0.0)
            out_lin = out_lin * (1.0 - obj_alpha[..., None]) + obj_premul
        self.last_alpha[y0:y1, x0:x1] = obj_alpha

        encoded = linear_to_srgb_uint8(out_lin)
        result = frame.copy()
        changed = touched[y0:y1, x0:x1] | (obj_alpha > 0)
        result[y0:y1, x0:x1][changed] = encoded[changed]
        return result

    def _frame_gain(self, frame: np.ndarray, layer: ObjectLayer, probe: np.ndarray | None = None) -> np.ndarray:
        """(3,) float32 linear gain for frame t: placement adaptation x smoothed surroundings change."""
        if not self.config.harmonize:
            return np.ones(3, np.float32)
        log_change = self._gain_filter.value
        reference, surroundings = self._reference_surroundings, None
        if self._reference_probe is not None and probe is not None:
            reference, surroundings = self._reference_probe, probe_linear(frame, probe)
        elif self._reference_probe is None and layer.bbox is not None:
            surroundings = surroundings_linear(frame, layer.alpha, layer.bbox)
        if reference is not None and surroundings is not None:
            eps = 1e-4
            measured = np.log((surroundings + eps) / (reference + eps))
            # Follow exposure over time, not tint: a coloured mover crossing the measured region tints it far
            # more often than the light changes colour.
            measured = np.full(3, float(REC709_LUMA @ measured))
            log_change = self._gain_filter(
                np.clip(measured, -math.log(self.config.max_gain), math.log(self.config.max_gain))
            )
        change = np.ones(3) if log_change is None else np.exp(log_change)
        gain = self._placement_gain * change
        return np.clip(gain, 1.0 / self.config.max_gain, self.config.max_gain).astype(np.float32)

    def _object_patch(
        self,
        frame_patch: np.ndarray,
        layer: ObjectLayer,
        alpha: np.ndarray,
        box: tuple[int, int, int, int],
        gain: np.ndarray,
        velocity: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Premultiplied linear colour (h, w, 3) and alpha (h, w) of the object over the box, all effects applied."""
        import cv2

        config = self.config
        x0, y0, x1, y1 = box
        color = layer.color[y0:y1, x0:x1]
        # Sharpness: blur colour only (normalised by the blurred coverage), the silhouette keeps its own alpha.
        if self._extra_sigma > 0.05:
            premul = np.dstack([color * alpha[..., None], alpha])
            premul = cv2.GaussianBlur(premul, (0, 0), self._extra_sigma)
            color = np.where(premul[..., 3:] > 1e-4, premul[..., :3] / np.maximum(premul[..., 3:], 1e-4), color)
        linear = srgb_to_linear(color) * gain[None, None, :]
        if config.light_wrap > 0:
            linear = _light_wrap(
                linear, alpha, srgb_uint8_to_linear(frame_patch), config.light_wrap, config.light_wrap_px
            )
        if config.grain:
            # Grain goes on last, in the footage's own (sRGB-encoded) units, where its noise was measured,
            # and only over the object's own box (the patch may be much larger for a long shadow).
            if self._footage_noise is None or self._frames_since_noise >= self.NOISE_REFRESH_FRAMES:
                self._footage_noise = noise_sigma(frame_patch, alpha <= 0)
                self._frames_since_noise = 0
            self._frames_since_noise += 1
            missing = np.sqrt(np.maximum(self._footage_noise**2 - self._object_noise**2, 0.0)) / 255.0
            rows = np.flatnonzero(alpha.max(axis=1) > 0)
            cols = np.flatnonzero(alpha.max(axis=0) > 0)
            if missing.max() > 0.2 / 255.0 and len(rows):
                r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
                noisy = linear_to_srgb(linear[r0:r1, c0:c1]) + grain((r1 - r0, c1 - c0), missing, self._rng)
                linear[r0:r1, c0:c1] = srgb_to_linear(noisy)
        # Feather inwards: min(alpha, blur(alpha)) softens the edge without growing the silhouette.
        if config.feather_px > 0:
            alpha = np.minimum(alpha, cv2.GaussianBlur(alpha, (0, 0), config.feather_px))
        premul_rgba = np.dstack([linear * alpha[..., None], alpha]).astype(np.float32)
        if config.motion_blur:
            premul_rgba = motion_blur(premul_rgba, velocity, config.shutter)
        obj_alpha = np.clip(premul_rgba[..., 3], 0.0, 1.0)
        return premul_rgba[..., :3], obj_alpha


def _light_wrap(
    object_linear: np.ndarray, alpha: np.ndarray, frame_linear: np.ndarray, amount: float, radius_px: float
) -> np.ndarray:
    """Let the surroundings' light spill over the object's rim ("light wrap", a compositing staple).

    A real object's edge pixels mix in light from what is behind it (lens flare, the sensor's blur,
    bounce light); a pasted layer's edge stays clean and reads as cut out. The background, blurred
    without the object, is blended into the rim by ``amount * alpha * (1 - blur(alpha))``: about half
    of ``amount`` right at the edge, nothing deeper than ``radius_px`` inside.

    Args:
        object_linear: (h, w, 3) float32 the object's linear colour.
        alpha: (h, w) float32 its coverage.
        frame_linear: (h, w, 3) float32 the frame's linear colour over the same box.
        amount: strength in [0, 1].
        radius_px: Gaussian sigma of the rim and of the background blur, pixels.

    Returns:
        (h, w, 3) float32.
    """
    import cv2

    # Only the object's box (plus the blur's reach) matters: the patch may be much larger for a long shadow.
    rows = np.flatnonzero(alpha.max(axis=1) > 0)
    cols = np.flatnonzero(alpha.max(axis=0) > 0)
    if not len(rows):
        return object_linear
    margin = math.ceil(3.0 * radius_px)
    r0, r1 = max(rows[0] - margin, 0), min(rows[-1] + 1 + margin, alpha.shape[0])
    c0, c1 = max(cols[0] - margin, 0), min(cols[-1] + 1 + margin, alpha.shape[1])
    a = alpha[r0:r1, c0:c1].astype(np.float32)
    behind = np.float32(1.0) - a
    weight = cv2.GaussianBlur(behind, (0, 0), radius_px)
    background = cv2.GaussianBlur(frame_linear[r0:r1, c0:c1] * behind[..., None], (0, 0), radius_px)
    background /= np.maximum(weight[..., None], np.float32(1e-4))
    rim = np.float32(amount) * a * (np.float32(1.0) - cv2.GaussianBlur(a, (0, 0), radius_px))
    rim[weight <= 1e-3] = 0.0
    rim = rim[..., None]
    result = object_linear.astype(np.float32, copy=True)
    result[r0:r1, c0:c1] = result[r0:r1, c0:c1] * (np.float32(1.0) - rim) + background * rim
    return result


def _box_of(mask: np.ndarray, pad: int, width: int, height: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) box of a non-empty (H, W) bool mask, padded and clipped to the frame."""
    box = mask_box(mask)
    assert box is not None, "the mask is empty"
    left, top, right, bottom = box
    return max(left - pad, 0), max(top - pad, 0), min(right + pad, width), min(bottom + pad, height)


def _eroded(mask: np.ndarray, pixels: int) -> np.ndarray:
    import cv2

    kernel = np.ones((2 * pixels + 1, 2 * pixels + 1), np.uint8)
    return cv2.erode(mask.astype(np.uint8), kernel) > 0


def _footage_sharpness(frame: np.ndarray, layer: ObjectLayer) -> float | None:
    """Edge blur sigma of the footage around the object (a window three times the object's box, object excluded)."""
    assert layer.bbox is not None
    height, width = frame.shape[:2]
    x0, y0, x1, y1 = layer.bbox
    pad = int(max(x1 - x0, y1 - y0, 2 * ring_width_for(layer.bbox)))
    wx0, wy0, wx1, wy1 = max(x0 - pad, 0), max(y0 - pad, 0), min(x1 + pad, width), min(y1 + pad, height)
    gray = srgb_uint8_to_linear(frame[wy0:wy1, wx0:wx1]) @ REC709_LUMA
    outside = ~_dilated(layer.alpha[wy0:wy1, wx0:wx1] > 0, 3)
    return edge_blur_sigma(linear_to_srgb(gray), outside)


def _object_sharpness(color: np.ndarray, alpha: np.ndarray) -> float | None:
    """Edge blur sigma of the object's own texture (its silhouette excluded)."""
    gray = color @ REC709_LUMA
    return edge_blur_sigma(gray, _eroded(alpha > 0.98, 3))


def _dilated(mask: np.ndarray, pixels: int) -> np.ndarray:
    import cv2

    kernel = np.ones((2 * pixels + 1, 2 * pixels + 1), np.uint8)
    return cv2.dilate(mask.astype(np.uint8), kernel) > 0
