"""The dominant light from the shadows that objects already cast on the support (a geometric cue).

Shading is fooled by albedo and gloss; a cast shadow is not: it lies on the side away from the light,
and its length says how high the light is. With the scene's depth and the support plane:

1. every grid pixel is lifted to 3D and split by its height above the plane: on the support
   (``|h| < tol``), an object standing on it (``h > 4 tol``), or neither;
2. shadow = support pixels clearly darker than the support around them (luminance under 0.72 of a
   wide support-only average), opened morphologically so texture specks drop out;
3. for each object (a connected component of object pixels), the shadow pixels on the plane near its
   footprint give a direction: from the footprint's centre F (the object's points dropped onto the
   plane) to the shadow's centroid S (each shadow point going to the object whose reach it is deepest
   in). The light comes from ``-(S - F)`` in the plane; its elevation is
   ``atan(object height / distance to the shadow's far end)`` (the object's top casts the tip);
4. the objects' unit directions are averaged, weighted by their shadow pixel counts; scattered
   directions (resultant under 0.6) mean no answer.

Limits: the part of a shadow hidden behind its object is missed (the visible part biases the direction
toward the camera); dark texture next to an object reads as shadow; it needs depth good enough to tell
the support from the objects on it, and at least one object with a visible shadow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from insertanywhere.conventions import Camera

_LUMA = np.array([0.2126, 0.7152, 0.0722])


@dataclass(frozen=True)
class ShadowCueConfig:
    """Settings of ``light_from_cast_shadows``.

    Attributes:
        stride: grid step in pixels.
        plane_tolerance: support membership, as a fraction of the median scene depth.
        darkness: a support pixel darker than this fraction of its surroundings is shadow.
        min_object_fraction: smallest object component, as a fraction of the grid.
        min_shadow_pixels: fewest shadow grid pixels an object needs to vote.
        min_agreement: resultant length of the weighted unit directions needed to answer.
    """

    stride: int = 2
    plane_tolerance: float = 0.015
    darkness: float = 0.72
    min_object_fraction: float = 0.002
    min_shadow_pixels: int = 25
    min_agreement: float = 0.6


@dataclass(frozen=True)
class ShadowCue:
    """What the shadows say.

    Attributes:
        direction_world: (3,) unit vector toward the light.
        strength: share of the light the shadows block (1 - their relative brightness), in [0, 1].
        n_objects: how many objects voted.
        agreement: resultant length of their weighted unit directions, in [0, 1].
    """

    direction_world: np.ndarray
    strength: float
    n_objects: int
    agreement: float


def _wide_blur(image: np.ndarray, sigma: float, min_sigma_cells: float = 24.0) -> np.ndarray:
    """``cv2.GaussianBlur(image, (0, 0), sigma)`` of an (h, w) float32 image, for a sigma of many pixels: made on
    the image subsampled (area) by the largest whole factor that leaves ``min_sigma_cells`` of sigma there, then
    resized back (bilinear). A Gaussian that wide is smooth on that grid. A 4K frame's grid (1920 wide, sigma
    192) took 4.5 s a blur; an 832-wide frame's (sigma 42) is blurred as it is, unchanged."""
    import cv2

    factor = int(sigma // min_sigma_cells)
    if factor < 2:
        return cv2.GaussianBlur(image, (0, 0), sigma)
    height, width = image.shape
    small_size = (-(-width // factor), -(-height // factor))
    small = cv2.resize(image, small_size, interpolation=cv2.INTER_AREA)
    blurred = cv2.GaussianBlur(small, (0, 0), sigma * small_size[0] / width)
    return cv2.resize(blurred, (width, height), interpolation=cv2.INTER_LINEAR)


def light_from_cast_shadows(
    frame: np.ndarray,
    camera: Camera,
    depth: np.ndarray,
    support_normal_world: np.ndarray,
    support_point_world: np.ndarray,
    dynamic_mask: np.ndarray | None = None,
    config: ShadowCueConfig | None = None,
) -> ShadowCue | None:
    """The light's direction from existing cast shadows on the support plane, or None (see module doc).

    Args:
        frame: (H, W, 3) uint8 sRGB frame.
        camera: its camera.
        depth: (H, W) float32 z-depth in scene units, 0 = unknown.
        support_normal_world: (3,) unit normal of the support, pointing up.
        support_point_world: (3,) a point of the support plane.
        dynamic_mask: (H, W) bool movers (ignored as objects), or None.
        config: settings.
    """
    import cv2

    config = config or ShadowCueConfig()
    normal = np.asarray(support_normal_world, np.float64)
    normal = normal / np.linalg.norm(normal)
    s = config.stride
    grid_depth = np.asarray(depth, np.float64)[s // 2 :: s, s // 2 :: s]
    gh, gw = grid_depth.shape
    known = np.isfinite(grid_depth) & (grid_depth > 0)
    if known.sum() < 100:
        return None
    xs = (np.arange(gw) * s + s // 2 + 0.5)[None, :].repeat(gh, 0)
    ys = (np.arange(gh) * s + s // 2 + 0.5)[:, None].repeat(gw, 1)
    rays = np.stack([xs, ys, np.ones_like(xs)], -1) @ np.linalg.inv(camera.K).T
    points_cam = rays * np.where(known, grid_depth, 0.0)[..., None]
    points = points_cam @ camera.world_from_cam[:3, :3].T + camera.world_from_cam[:3, 3]
    height = (points - np.asarray(support_point_world, np.float64)) @ normal
    tolerance = config.plane_tolerance * float(np.median(grid_depth[known]))
    support = known & (np.abs(height) < tolerance)
    objects = known & (height > 4.0 * tolerance)
    if dynamic_mask is not None:
        objects &= ~np.asarray(dynamic_mask, bool)[s // 2 :: s, s // 2 :: s]
    if support.sum() < 200 or objects.sum() < 20:
        return None

    linear = np.asarray(frame, np.float32)[s // 2 :: s, s // 2 :: s] / 255.0
    linear = np.where(linear <= 0.04045, linear / 12.92, ((linear + 0.055) / 1.055) ** 2.4)
    luminance = cv2.GaussianBlur((linear @ _LUMA).astype(np.float32), (0, 0), 1.0)
    wide = max(gw, gh) / 10.0
    support_f = support.astype(np.float32)
    surroundings = _wide_blur(luminance * support_f, wide) / np.maximum(_wide_blur(support_f, wide), 1e-6)
    ratio = luminance / np.maximum(surroundings, 1e-6)
    shadow = support & (ratio < config.darkness)
    shadow = cv2.morphologyEx(shadow.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)) > 0
    if shadow.sum() < config.min_shadow_pixels:
        return None
    shadow_points = points[shadow]
    shadow_points = shadow_points - ((shadow_points - support_point_world) @ normal)[:, None] * normal

    n_labels, labels, stats, _ = cv2.connectedComponentsWithStats(objects.astype(np.uint8), connectivity=8)
    bodies = []  # (label, centre of the footprint (3,), footprint radius, height)
    for label in range(1, n_labels):
        if stats[label, cv2.CC_STAT_AREA] < config.min_object_fraction * gh * gw:
            continue
        member = labels == label
        feet = points[member] - height[member][:, None] * normal
        centre = feet.mean(axis=0)
        radius = float(np.percentile(np.linalg.norm(feet - centre, axis=1), 90))
        bodies.append((label, centre, radius, float(np.percentile(height[member], 95))))
    if not bodies:
        return None
    # Each shadow point belongs to the object whose reach (footprint + 3 heights) it is deepest inside.
    reach = np.array([radius + 3.0 * body_height for _, _, radius, body_height in bodies])
    centres = np.stack([centre for _, centre, _, _ in bodies])
    relative = np.linalg.norm(shadow_points[:, None, :] - centres[None], axis=2) / reach[None]
    owner = np.argmin(relative, axis=1)
    owned = relative[np.arange(len(owner)), owner] < 1.0
    shadow_ratio = ratio[shadow]

    votes: list[tuple[np.ndarray, float]] = []
    darkness: list[float] = []
    for index, (_, centre, radius, object_height) in enumerate(bodies):
        offsets = shadow_points - centre
        near = owned & (owner == index) & (np.linalg.norm(offsets, axis=1) > 0.5 * radius)
        if near.sum() < config.min_shadow_pixels:
            continue
        mean_offset = offsets[near].mean(axis=0)
        length = float(np.linalg.norm(mean_offset))
        if length < 0.25 * radius:
            continue  # shadow all around the object: no horizontal direction
        away = mean_offset / length
        # The top's shadow ends at the tip; the top stands somewhere between the footprint's centre (a
        # sphere) and its far edge (a box): measure from half-way.
        tip = float(np.percentile(offsets[near] @ away, 95)) - 0.5 * radius
        elevation = math.atan2(object_height, max(tip, 1e-9))
        toward_light = -math.cos(elevation) * away + math.sin(elevation) * normal
        votes.append((toward_light, float(near.sum())))
        darkness.append(float(np.median(shadow_ratio[near])))
    if not votes:
        return None
    weights = np.array([w for _, w in votes])
    directions = np.stack([d for d, _ in votes])
    resultant = (directions * weights[:, None]).sum(axis=0)
    agreement = float(np.linalg.norm(resultant) / weights.sum())
    if agreement < config.min_agreement:
        return None
    strength = float(np.clip(1.0 - np.average(darkness, weights=weights), 0.0, 1.0))
    return ShadowCue(resultant / np.linalg.norm(resultant), strength, len(votes), agreement)
