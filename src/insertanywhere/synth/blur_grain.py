"""Matching the footage's optics: motion blur, sharpness and sensor noise.

* Motion blur: a moving object is smeared along its image velocity during the exposure. The layer
  (premultiplied colour and alpha) is convolved with a line kernel of length ``|v| * shutter`` px
  along v, the shutter being the exposed fraction of the frame interval (0.5 = the 180-degree rule).
* Sharpness: the footage's blur is estimated as the sigma of a Gaussian edge by the re-blur gradient
  ratio (Zhuo & Sim, "Defocus map estimation from a single image", Pattern Recognition 2011): at an edge
  blurred by sigma, re-blurring by s0 lowers the gradient by ``R = sqrt(sigma^2 + s0^2) / sigma``, so
  ``sigma = s0 / sqrt(R^2 - 1)``. The same is measured on the rendered object; the object is blurred by
  ``sqrt(sigma_footage^2 - sigma_object^2)`` when the footage is softer.
* Noise: the footage's noise sigma per channel by Immerkaer's method ("Fast noise variance estimation",
  CVIU 1996): the response to the 3x3 Laplacian-difference mask ``[[1,-2,1],[-2,4,-2],[1,-2,1]]``, which
  cancels locally linear image content, gives ``sigma = sqrt(pi/2) / 6 * mean(|response|)``; edges are
  excluded by keeping the flatter half of the pixels (by Sobel gradient), as Tai & Yang (2008) suggest.
  Grain of the missing level ``sqrt(sigma_footage^2 - sigma_object^2)`` is added inside the object.
"""

from __future__ import annotations

import math

import numpy as np

_IMMERKAER_MASK = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)


# ----------------------------------------------------------------------------- motion blur


def motion_kernel(velocity_px: np.ndarray, shutter: float) -> np.ndarray | None:
    """A normalised line kernel for motion blur, antialiased by bilinear splatting of points along the line.

    Args:
        velocity_px: (2,) float ``(dx, dy)`` image motion in pixels per frame.
        shutter: exposed fraction of the frame interval, in [0, 1].

    Returns:
        (k, k) float32 kernel summing to 1 (k odd), or None when the smear is under half a pixel.
    """
    velocity = np.asarray(velocity_px, np.float64).reshape(2) * float(shutter)
    length = float(np.hypot(*velocity))
    if not np.isfinite(length) or length < 0.5:
        return None
    half = math.ceil(length / 2.0) + 1
    size = 2 * half + 1
    kernel = np.zeros((size, size), np.float64)
    n_points = max(math.ceil(4 * length), 2) + 1
    for t in np.linspace(-0.5, 0.5, n_points):
        x, y = half + t * velocity[0], half + t * velocity[1]
        ix, iy = math.floor(x), math.floor(y)
        fx, fy = x - ix, y - iy
        kernel[iy, ix] += (1 - fx) * (1 - fy)
        kernel[iy, ix + 1] += fx * (1 - fy)
        kernel[iy + 1, ix] += (1 - fx) * fy
        kernel[iy + 1, ix + 1] += fx * fy
    return (kernel / kernel.sum()).astype(np.float32)


def motion_blur(premultiplied_rgba: np.ndarray, velocity_px: np.ndarray, shutter: float) -> np.ndarray:
    """Smear a premultiplied RGBA patch along its velocity.

    Args:
        premultiplied_rgba: (h, w, 4) float32 premultiplied colour and alpha; pad it by the smear first.
        velocity_px: (2,) px/frame.
        shutter: exposed fraction of the frame interval.

    Returns:
        (h, w, 4) float32, the same patch when the smear is negligible.
    """
    import cv2

    kernel = motion_kernel(velocity_px, shutter)
    if kernel is None:
        return premultiplied_rgba
    return cv2.filter2D(premultiplied_rgba, -1, kernel, borderType=cv2.BORDER_CONSTANT)


def mean_velocity(screen_velocity: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """(2,) float64 velocity of the object: the given (2,) vector, or the coverage-weighted mean of a (H, W, 2) field.

    One kernel for the whole object: exact for translation, an approximation when it spins fast.
    """
    velocity = np.asarray(screen_velocity, np.float64)
    if velocity.shape == (2,):
        return velocity
    weight = float(alpha.sum())
    if weight <= 0:
        return np.zeros(2)
    return (velocity * alpha[..., None]).reshape(-1, 2).sum(axis=0) / weight


# ----------------------------------------------------------------------------- sharpness


def edge_blur_sigma(gray: np.ndarray, valid: np.ndarray | None = None, reblur_sigma: float = 1.0) -> float | None:
    """The Gaussian blur sigma (pixels) of an image's edges by the re-blur gradient ratio (Zhuo & Sim 2011).

    Args:
        gray: (h, w) float32 intensities in [0, 1].
        valid: (h, w) bool, where edges may be measured (None = everywhere).
        reblur_sigma: the re-blur s0 in pixels.

    Returns:
        The median sigma over strong edge pixels, or None when there are fewer than 40 of them.
    """
    import cv2

    gray = np.asarray(gray, np.float32)
    edges = cv2.Canny(np.clip(gray * 255, 0, 255).astype(np.uint8), 40, 100) > 0
    if valid is not None:
        edges &= valid
    if edges.sum() < 40:
        return None
    reblurred = cv2.GaussianBlur(gray, (0, 0), reblur_sigma)

    def gradient_magnitude(image: np.ndarray) -> np.ndarray:
        gx = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3)
        return np.hypot(gx, gy)

    ratio = gradient_magnitude(gray)[edges] / np.maximum(gradient_magnitude(reblurred)[edges], 1e-6)
    ratio = ratio[ratio > 1.01]
    if len(ratio) < 40:
        return None
    sigma = reblur_sigma / np.sqrt(ratio**2 - 1.0)
    return float(np.median(np.clip(sigma, 0.0, 10.0)))


def extra_blur_sigma(footage_sigma: float | None, object_sigma: float | None, max_sigma: float = 3.0) -> float:
    """Gaussian sigma to apply to the object so its edges are as soft as the footage's (0 if it is softer already)."""
    if footage_sigma is None:
        return 0.0
    object_sigma = object_sigma or 0.0
    return float(min(math.sqrt(max(footage_sigma**2 - object_sigma**2, 0.0)), max_sigma))


# ----------------------------------------------------------------------------- noise


def noise_sigma(image: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Per-channel noise standard deviation (Immerkaer 1996, on the flatter half of the pixels).

    Args:
        image: (h, w, 3) uint8 or float32 (in the units the result should have: 0..255 for uint8).
        valid: (h, w) bool, pixels to use (None = all).

    Returns:
        (3,) float64 sigma per channel, zeros when the patch is too small.
    """
    import cv2

    image = np.asarray(image, np.float32)
    if image.shape[0] < 8 or image.shape[1] < 8:
        return np.zeros(3)
    gray = image.mean(axis=2)
    gradient = np.abs(cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)) + np.abs(cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3))
    keep = np.ones(gray.shape, bool) if valid is None else valid.copy()
    keep[[0, -1], :] = False
    keep[:, [0, -1]] = False
    if keep.sum() < 50:
        return np.zeros(3)
    keep &= gradient <= np.percentile(gradient[keep], 50)
    sigmas = []
    for c in range(image.shape[2]):
        response = np.abs(cv2.filter2D(image[..., c], cv2.CV_32F, _IMMERKAER_MASK))
        sigmas.append(math.sqrt(math.pi / 2.0) / 6.0 * float(response[keep].mean()))
    return np.array(sigmas)


def grain(shape: tuple[int, int], sigma_per_channel: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(h, w, 3) float32 zero-mean Gaussian grain with the given per-channel sigma.

    The grain is shared by the channels in proportion (luma-like, as a sensor's demosaiced and
    compressed noise mostly is) plus an independent third, and slightly correlated in space
    (Gaussian, sigma 0.5 px, renormalised) like video noise after demosaicing and compression.
    """
    import cv2

    h, w = shape
    shared = cv2.GaussianBlur(rng.standard_normal((h, w), dtype=np.float32), (3, 3), 0.5)
    own = cv2.GaussianBlur(rng.standard_normal((h, w, 3), dtype=np.float32), (3, 3), 0.5)
    taps = cv2.getGaussianKernel(3, 0.5).ravel()
    normaliser = float(np.sum(taps**2))  # std of unit white noise after the separable 3x3 blur
    field = (math.sqrt(2.0 / 3.0) * shared[..., None] + math.sqrt(1.0 / 3.0) * own) / normaliser
    return (field * np.asarray(sigma_per_channel, np.float32)[None, None, :]).astype(np.float32)
