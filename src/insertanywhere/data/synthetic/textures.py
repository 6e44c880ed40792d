"""Textures for the synthetic scenes: photos shipped inside scikit-image, as mip-mapped linear images.

Only images stored in the scikit-image wheel itself are used (``skimage/data/*.png|jpg``); the
ones fetched by pooch on first use are never touched, so rendering works offline.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

SRGB_GAMMA = 2.2
"""Textures are stored sRGB; shading happens on linear values (``srgb ** 2.2``) and is encoded back."""

# name -> (skimage.data function, tint for grey images as linear RGB multipliers or None for colour photos)
_SKIMAGE_TEXTURES: dict[str, tuple[str, tuple[float, float, float] | None]] = {
    "brick": ("brick", (1.0, 0.62, 0.48)),
    "grass": ("grass", (0.55, 0.85, 0.45)),
    "gravel": ("gravel", (0.95, 0.9, 0.8)),
    "concrete": ("gravel", (0.8, 0.82, 0.85)),
    "camera": ("camera", (0.95, 0.95, 1.0)),
    "moon": ("moon", (1.0, 0.95, 0.85)),
    "page": ("page", (1.0, 0.97, 0.9)),
    "text": ("text", (0.9, 0.95, 1.0)),
    "coins": ("coins", (0.95, 0.85, 0.6)),
    "clock": ("clock", (0.9, 0.9, 0.95)),
    "cell": ("cell", (0.85, 0.95, 0.9)),
    "astronaut": ("astronaut", None),
    "coffee": ("coffee", None),
    "chelsea": ("chelsea", None),
    "rocket": ("rocket", None),
    "hubble_deep_field": ("hubble_deep_field", None),
    "immunohistochemistry": ("immunohistochemistry", None),
    "retina": ("retina", None),
    "colorwheel": ("colorwheel", None),
}

FLOOR_TEXTURES = ("gravel", "grass", "brick", "concrete")
WALL_TEXTURES = ("brick", "concrete", "moon", "camera", "coins")
POSTER_TEXTURES = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "retina")
CRATE_TEXTURES = ("brick", "gravel", "coins", "clock", "cell", "text", "page")
OBJECT_PHOTOS = ("coffee", "chelsea", "astronaut", "rocket", "colorwheel", "immunohistochemistry")


@dataclass(frozen=True)
class MipTexture:
    """A texture as a mip pyramid of linear values.

    Attributes:
        name: the source image's name (recorded in meta.json).
        levels: list of (h_l, w_l, C) float32 arrays in [0, 1], linear (not sRGB), level 0 the finest,
            each next level half the size; C = 3 (RGB) or 4 (RGB + straight alpha, alpha not linearised).
    """

    name: str
    levels: tuple[np.ndarray, ...]

    @property
    def channels(self) -> int:
        return self.levels[0].shape[2]

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of level 0 in texels."""
        return self.levels[0].shape[1], self.levels[0].shape[0]


def build_mip_texture(name: str, image_srgb: np.ndarray) -> MipTexture:
    """Make a MipTexture from an (H, W, 3) RGB or (H, W, 4) RGBA uint8 sRGB image (straight alpha)."""
    import cv2

    image = image_srgb.astype(np.float32) / 255.0
    image[..., :3] = image[..., :3] ** SRGB_GAMMA
    if image.shape[2] == 4:
        # Filter premultiplied colour so transparent texels do not bleed into smaller levels.
        image[..., :3] *= image[..., 3:4]
    levels = [image]
    while min(levels[-1].shape[:2]) >= 8:
        levels.append(cv2.pyrDown(levels[-1]))
    if image.shape[2] == 4:
        for level in levels:
            alpha = level[..., 3:4]
            level[..., :3] = np.where(alpha > 1e-4, level[..., :3] / np.maximum(alpha, 1e-4), 0.0)
    for level in levels:
        np.clip(level, 0.0, 1.0, out=level)
    return MipTexture(name, tuple(np.ascontiguousarray(level, dtype=np.float32) for level in levels))


def skimage_photo(name: str) -> np.ndarray:
    """(H, W, 3) uint8 sRGB photo ``name`` from scikit-image's bundled data (grey images tinted)."""
    import skimage.data

    function_name, tint = _SKIMAGE_TEXTURES[name]
    image = np.asarray(getattr(skimage.data, function_name)())
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.ndim == 2:
        grey = image.astype(np.float32)[..., None]
        image = np.clip(grey * np.asarray(tint or (1.0, 1.0, 1.0), np.float32), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(image[..., :3])


@functools.lru_cache(maxsize=32)
def photo_texture(name: str) -> MipTexture:
    """A cached MipTexture of the bundled photo ``name`` (see ``_SKIMAGE_TEXTURES``)."""
    if name not in _SKIMAGE_TEXTURES:
        raise KeyError(f"unknown texture {name!r}; known: {', '.join(sorted(_SKIMAGE_TEXTURES))}")
    return build_mip_texture(name, skimage_photo(name))


def sample_texture(texture: MipTexture, u: np.ndarray, v: np.ndarray, lod: np.ndarray | None, wrap: bool) -> np.ndarray:
    """Trilinear texture lookup.

    Args:
        texture: the mip pyramid.
        u, v: (N,) float texture coordinates; u = 0 at the left edge, 1 at the right; v = 0 at the
            top edge, 1 at the bottom (one tile).
        lod: (N,) float mip level (0 = finest), or None for level 0 only.
        wrap: repeat the texture (tiled surfaces) or clamp at its edges (stretched pictures).

    Returns:
        (N, C) float32 values (linear RGB [+ alpha]).
    """
    if lod is None:
        return _bilinear(texture.levels[0], u, v, wrap)
    n_levels = len(texture.levels)
    lod = np.clip(lod, 0.0, n_levels - 1.0)
    lower = np.floor(lod).astype(np.int32)
    weight_upper = (lod - lower).astype(np.float32)[:, None]
    out = np.empty((u.shape[0], texture.channels), np.float32)
    for level in np.flatnonzero(np.bincount(lower, minlength=n_levels)):
        sel = np.nonzero(lower == level)[0]
        fine = _bilinear(texture.levels[level], u[sel], v[sel], wrap)
        if level + 1 < n_levels:
            coarse = _bilinear(texture.levels[level + 1], u[sel], v[sel], wrap)
            w = weight_upper[sel]
            fine = fine * (1.0 - w) + coarse * w
        out[sel] = fine
    return out


_REMAP_COLUMNS = 16384
"""cv2.remap needs map sides below 32767; lookups are laid out in rows of this many samples."""


def _bilinear(image: np.ndarray, u: np.ndarray, v: np.ndarray, wrap: bool) -> np.ndarray:
    """Bilinear lookup of an (h, w, C) float32 image at (N,) u, v in [0, 1] units (texel centres at +0.5).

    Runs on cv2.remap (fixed-point weights of 1/32 texel, multi-threaded); tiled coordinates are first
    wrapped into [0, 1) so the map stays small.
    """
    import cv2

    h, w, c = image.shape
    n = u.shape[0]
    if n == 0:
        return np.zeros((0, c), np.float32)
    u = u.astype(np.float32)
    v = v.astype(np.float32)
    if wrap:
        u = u - np.floor(u)
        v = v - np.floor(v)
    rows = -(-n // _REMAP_COLUMNS)
    map_x = np.zeros(rows * _REMAP_COLUMNS, np.float32)
    map_y = np.zeros(rows * _REMAP_COLUMNS, np.float32)
    map_x[:n] = u * w - 0.5
    map_y[:n] = v * h - 0.5
    shape = (rows, _REMAP_COLUMNS) if rows > 1 else (1, n)
    map_x = map_x[: shape[0] * shape[1]].reshape(shape)
    map_y = map_y[: shape[0] * shape[1]].reshape(shape)
    border = cv2.BORDER_WRAP if wrap else cv2.BORDER_REPLICATE
    out = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=border)
    return out.reshape(-1, c)[:n]


def cutout_card_texture(rng: np.random.Generator, texels_wide: int = 192) -> tuple[np.ndarray, str, str, float]:
    """The inserted object's unlit picture: a vase / bottle / toy silhouette cut out of a bundled photo.

    The silhouette touches all four edges of the texture (its bounding box is the card), so the card's
    bottom edge is the contact line and the object box in frame 0 is the card's projection.

    Args:
        rng: the scene's random generator.
        texels_wide: texture width in texels.

    Returns:
        rgba: (h, w, 4) uint8 sRGB RGBA, straight alpha with a 1-texel antialiased edge;
        shape_name: "vase" | "bottle" | "horse";
        photo_name: the photo the picture was cut from;
        aspect: height / width of the card.
    """
    import cv2

    shape_name = str(rng.choice(["vase", "bottle", "horse"]))
    photo_name = str(rng.choice(OBJECT_PHOTOS))
    if shape_name == "horse":
        import skimage.data

        horse = ~np.asarray(skimage.data.horse(), dtype=bool)  # True on the horse
        ys, xs = np.nonzero(horse)
        horse = horse[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        aspect = horse.shape[0] / horse.shape[1]
        h = round(texels_wide * aspect)
        # Antialiased alpha: area-resample the binary silhouette (supersampled 4x), then blur a texel.
        alpha = cv2.resize(horse.astype(np.float32), (texels_wide, h), interpolation=cv2.INTER_AREA)
    else:
        aspect = float(rng.uniform(1.3, 1.8) if shape_name == "vase" else rng.uniform(2.0, 2.5))
        h = round(texels_wide * aspect)
        ys = (np.arange(h) + 0.5) / h  # 0 at the top, 1 at the bottom
        t = 1.0 - ys  # height fraction above the base
        if shape_name == "vase":
            belly = rng.uniform(0.3, 0.45)
            profile = 0.12 + 0.38 * np.exp(-(((t - belly) / 0.25) ** 2)) + 0.12 * np.exp(-(((t - 0.97) / 0.06) ** 2))
        else:
            shoulder = rng.uniform(0.55, 0.65)
            profile = np.where(t < shoulder, 0.5, 0.5 - 0.34 * np.clip((t - shoulder) / 0.15, 0.0, 1.0))
        profile = 0.5 * profile / profile.max()  # widest point touches the card's sides
        xs = (np.arange(texels_wide) + 0.5) / texels_wide - 0.5
        # Signed distance (in texels) to the profile edge -> coverage, a 1-texel antialiased edge.
        inside = (profile[:, None] - np.abs(xs)[None, :]) * texels_wide
        alpha = np.clip(inside + 0.5, 0.0, 1.0)
    photo = skimage_photo(photo_name)
    ph, pw = photo.shape[:2]
    crop_w = int(min(pw, ph / aspect) * rng.uniform(0.6, 0.95))
    crop_h = int(crop_w * aspect)
    x0 = int(rng.integers(0, pw - crop_w + 1))
    y0 = int(rng.integers(0, ph - crop_h + 1))
    crop = cv2.resize(photo[y0 : y0 + crop_h, x0 : x0 + crop_w], (texels_wide, h), interpolation=cv2.INTER_AREA)
    rgba = np.concatenate([crop, np.round(alpha * 255).astype(np.uint8)[..., None]], axis=2)
    return rgba, shape_name, photo_name, aspect
