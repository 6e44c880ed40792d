"""Occlusion-aware masks: which of the object's pixels are visible in each frame (paper Sec. 3.2).

Visible = object coverage where the object is nearer than the scene. Three cues, in order:

1. static scene depth: a pixel whose scene depth is clearly nearer than the object's
   surface hides it, unless that pixel lies on the support plane (the surface the
   object stands on is behind it by construction, and its depth is noisy at the contact);
2. movers with depth (a depth prior): the same test per pixel;
3. movers without depth (the classical default leaves them unknown): ground-contact
   reasoning. A mover's contact with the support is its lowest image point; the ray
   through it meets the support plane at the mover's depth; a mover whose contact is
   nearer the camera than the object's contact is in front. The connected component
   that carries the object's own support (a moving tray) never hides it.

The occluder mask's edges are then refined against the image with a guided filter
(He et al., "Guided Image Filtering", PAMI 2013), so the cut follows the occluder's
real outline instead of the blocky flow-based mask.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from insertanywhere.conventions import Camera, transform_points
from insertanywhere.geometry.planes import Plane
from insertanywhere.scene.depth import guided_filter

DEPTH_TOLERANCE = 0.03
"""Relative depth margin: the scene must be this much nearer than the object to hide it."""
SEGMENT_SCALE = 60.0
SEGMENT_MIN_SIZE = 30
SNAP_MIN_SHARE = 0.02
"""Image segmentation repairs static depth only when static pixels claiming to be in front cover this share of
the surface tested: a support whose interpolated depth sits a hair nearer than the object's bottom row (a
moving cart with no depth of its own, stop 17) made 0.5-1 % of its pixels "in front" in 67 of 81 frames."""
MAX_MOVER_COVERAGE = 0.9
MOVER_EDGE_BAND = 16 / 832
"""Half-width of the band where a mover's edge is re-decided by colour, as a fraction of the image width."""
BACKGROUND_SEED_PX = 5
"""Unchanged regions narrower than this (pixels) do not count as background for a mover's edge."""
CONTACT_MARGIN_OBJECTS = 0.3
"""Mover masks covering more of the frame than this are taken as failed and not used for ordering."""
CHANGE_LEVELS = 12.0
"""Levels (of 255, in some colour channel) by which a pixel must differ from the warped placement frame to count
as changed."""
MIN_EXPOSURE_SHARE = 0.1
"""The exposure match uses the pixels outside movers when they are at least this share of the crop."""
MIN_CHANGED_SHARE = 0.25
"""A mover without depth hides the object only if at least this share of its pixels there changed."""
PLANE_TOLERANCE = 0.02
"""Relative distance (of the camera distance) within which a scene point counts as on the support plane."""


@dataclass
class FrameGeometry:
    """What the occlusion test needs to know about one frame.

    Attributes:
        camera: the frame's camera.
        scene_depth: (H, W) float32 z-depth, 0 = unknown.
        dynamic_mask: (H, W) bool, independently moving pixels.
        support_plane: the object's support plane in the world frame at this frame.
        contact_world: (3,) the object's contact point in the world at this frame.
        image: (H, W, 3) uint8 the frame (guide for edge refinement).
        support_moves: the support is itself a mover (a tray): the moving region under the
            contact point is the support and never hides the object.
        support_region: (H, W) bool the support's patch around the object in this frame (the projected
            support disk); with ``support_moves``, movers there are the support itself.
        confirm_static: given (N, 3) world points a frame's depth says stand in front of the object, (N,)
            bool: whether other frames' depth sees them there too (``multi_view_confirmation``). A static
            occluder is seen from several views; a per-frame depth glitch is not. None trusts every frame.
        object_size: the object's largest extent, scene units: a mover must stand at least
            CONTACT_MARGIN_OBJECTS of it nearer than the object to be in front (one right beside the object
            cannot be ordered by its contact).
        reference: the placement frame's (H, W, 3) float32 RGB image, its Camera, the support's plane there (world)
            and the support's (4, 4) world motion from the placement frame to this frame, or None: a mover
            without depth hides the object only where it changes the picture against that frame
            (``changes_the_picture``).
    """

    camera: Camera
    scene_depth: np.ndarray
    dynamic_mask: np.ndarray
    support_plane: Plane
    contact_world: np.ndarray
    image: np.ndarray
    support_moves: bool = False
    support_region: np.ndarray | None = None
    object_size: float = 0.0
    confirm_static: Callable[[np.ndarray], np.ndarray] | None = None
    reference: tuple[np.ndarray, Camera, Plane, np.ndarray] | None = None
    cache: dict = field(default_factory=dict, repr=False, compare=False)
    """Per-frame work shared by the object's and the shadow's tests (the movers' components, their order):
    clear it after changing ``dynamic_mask`` or ``support_region`` in place."""


def plane_depth(camera: Camera, plane: Plane, width: int, height: int, window: tuple[int, int, int, int]) -> np.ndarray:
    """Camera z-depth of ``plane`` (world) at the pixel centres of ``window`` (x0, y0, x1, y1); inf where missed."""
    x0, y0, x1, y1 = window
    plane_cam = plane.transformed(camera.cam_from_world)
    # n . K^-1 (x, y, 1) is affine in the pixel: one broadcast sum instead of a ray per pixel.
    a, b, c = np.linalg.inv(camera.K).T @ plane_cam.normal
    xs = (np.arange(x0, x1) + 0.5)[None, :]
    ys = (np.arange(y0, y1) + 0.5)[:, None]
    denom = a * xs + b * ys + c
    with np.errstate(divide="ignore", invalid="ignore"):
        z = -plane_cam.offset / denom
    return np.where((z > 0) & np.isfinite(z), z, np.inf).astype(np.float32)


def _contact_depth(camera: Camera, plane: Plane, pixel: np.ndarray) -> float:
    """Camera z of the point where the ray through ``pixel`` (2,) meets ``plane``; inf if it misses."""
    x, y = pixel
    window = (int(np.floor(x)), int(np.floor(y)), int(np.floor(x)) + 1, int(np.floor(y)) + 1)
    return float(plane_depth(camera, plane, 0, 0, window)[0, 0])


def dynamic_occluders(
    geometry: FrameGeometry, object_contact_z: float, window: tuple[int, int, int, int]
) -> np.ndarray:
    """(h, w) bool over ``window``: mover pixels in front of the object.

    Movers with known depth are left to the per-pixel depth test (returns False there);
    movers without depth are ordered by ground contact (module doc).
    """
    x0, y0, x1, y1 = window
    dynamic = np.asarray(geometry.dynamic_mask, dtype=bool)
    out = np.zeros((y1 - y0, x1 - x0), dtype=bool)
    if not dynamic[y0:y1, x0:x1].any():
        return out
    if dynamic.mean() > MAX_MOVER_COVERAGE:
        # Movers over most of the frame means the motion segmentation failed there (a camera motion it
        # could not explain), not that the whole scene moves: ordering by it would hide the object at random.
        return out
    if geometry.support_moves and geometry.support_region is not None:
        # The moving support is not an occluder: pixels that move as the support does (its flow) or lie on
        # its patch around the object; the rest of a mover is judged by its contact.
        dynamic = dynamic & ~geometry.support_region
    if "movers" not in geometry.cache:
        _, labels, stats, _ = cv2.connectedComponentsWithStats(dynamic.astype(np.uint8), connectivity=8)
        geometry.cache["movers"] = (labels, stats, {})
    labels, stats, in_front = geometry.cache["movers"]
    contact_px, _ = geometry.camera.project(geometry.contact_world[None])
    cx, cy = np.clip(contact_px[0], 0, [dynamic.shape[1] - 1, dynamic.shape[0] - 1]).astype(int)
    support_label = 0
    if geometry.support_moves and geometry.support_region is None and dynamic[cy, cx]:
        support_label = labels[cy, cx]
    depth = np.asarray(geometry.scene_depth)
    for label in np.unique(labels[y0:y1, x0:x1]):
        if label == 0 or label == support_label:
            continue
        key = (int(label), object_contact_z)
        if key not in in_front:
            in_front[key] = _mover_in_front(geometry, labels, stats, int(label), depth, object_contact_z)
            if in_front[key] and geometry.reference is not None:
                seen = ("changes", int(label))
                if seen not in in_front:
                    in_front[seen] = changes_the_picture(geometry, labels[y0:y1, x0:x1] == label, window)
                in_front[key] = bool(in_front[seen])
        if in_front[key]:
            out |= labels[y0:y1, x0:x1] == label
    return out


def changed_pixels(geometry: FrameGeometry, window: tuple[int, int, int, int]) -> np.ndarray:
    """(h, w) bool over ``window``: pixels that look different from the placement frame, seen from this frame.

    The placement frame is warped into this frame by the support plane's homography, once with the plane held
    still and once carried by the support's motion, and compared after matching the crops' exposure by their
    medians and a light blur; a pixel has changed when it differs from both warps by more than CHANGE_LEVELS
    levels in some colour channel (or neither warp reaches it). Colour, not grey: a navy panel in front of a
    dark brown wall differs by 40 levels in blue and 12 in grey. Off the plane (parallax) or under a change of
    light the picture differs, so "unchanged" is the safe verdict: it says the pixel shows what it showed at placement.
    Cached per window in ``geometry.cache``; ``geometry.reference`` must be set.
    """
    assert geometry.reference is not None
    key = ("changed", window)
    if key in geometry.cache:
        return geometry.cache[key]
    rgb, camera, plane, motion = geometry.reference
    x0, y0, x1, y1 = window
    changed = np.ones((y1 - y0, x1 - x0), bool)
    plane_a = plane.transformed(camera.cam_from_world)
    if abs(plane_a.offset) < 1e-12 or changed.size == 0:
        geometry.cache[key] = changed
        return changed
    current = cv2.GaussianBlur(geometry.image[y0:y1, x0:x1].astype(np.float32), (0, 0), 1.0)
    movers = np.asarray(geometry.dynamic_mask[y0:y1, x0:x1], bool)
    # Pixel-corner intrinsics to OpenCV's pixel centres, then into the window's crop.
    to_crop = np.array([[1.0, 0.0, -0.5 - x0], [0.0, 1.0, -0.5 - y0], [0.0, 0.0, 1.0]])
    from_centres = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    motions = [np.eye(4)] if np.allclose(motion, np.eye(4)) else [np.eye(4), motion]
    for support_motion in motions:
        b_from_a = geometry.camera.cam_from_world @ support_motion @ camera.world_from_cam
        rotation, translation = b_from_a[:3, :3], b_from_a[:3, 3]
        homography = geometry.camera.K @ (rotation - np.outer(translation, plane_a.normal) / plane_a.offset)
        homography = to_crop @ homography @ np.linalg.inv(camera.K) @ from_centres
        warped = cv2.warpPerspective(rgb, homography, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                                     borderValue=(-1.0, -1.0, -1.0))  # fmt: skip
        valid = warped[..., 0] >= 0
        if not valid.any():
            continue
        # Exposure from the pixels no mover covers: a dark occluder filling the crop would otherwise darken
        # the placement frame to its own level and pass for unchanged.
        still = valid & ~movers
        still = still if still.sum() >= MIN_EXPOSURE_SHARE * still.size else valid
        # Medians over every third row and column: the exposure is a crop-wide level.
        sparse = (slice(None, None, 3), slice(None, None, 3))
        now, then, picked = (
            (current[sparse], warped[sparse], still[sparse]) if still[sparse].any() else (current, warped, still)
        )
        gain = float(np.median(now[picked])) / max(float(np.median(then[picked])), 1.0)
        difference = cv2.absdiff(current, gain * cv2.GaussianBlur(warped, (0, 0), 1.0))
        # The largest channel difference (numpy's max over a 3-long last axis is ten times slower).
        difference = np.maximum(np.maximum(difference[..., 0], difference[..., 1]), difference[..., 2])
        changed &= ~valid | (difference > CHANGE_LEVELS)
    geometry.cache[key] = changed
    return changed


def changes_the_picture(geometry: FrameGeometry, mover: np.ndarray, window: tuple[int, int, int, int]) -> bool:
    """Whether a mover's pixels in ``window`` look different from the placement frame (``changed_pixels``).

    Something standing in front of the object hides what was behind it: the picture there changes. A mover
    mask where the picture has not changed is a mask error, not an occluder:

    - on a white table, DIS carries moving hands' flow into the textureless surface and the residual masks
      cover it (the real cups and coffee clips hid an object nothing passed in front of);
    - a moving cart's own body, when the mask takes it in whole, matches the placement frame carried by the
      cart's motion (the synthetic moving_support's bottle was cut in half by its own cart).

    Args:
        geometry: the frame; ``geometry.reference`` must be set.
        mover: (h, w) bool the mover's pixels in ``window`` (x0, y0, x1, y1).

    Returns:
        True when at least MIN_CHANGED_SHARE of those pixels changed.
    """
    if not mover.any():
        return False
    return bool(np.mean(changed_pixels(geometry, window)[mover]) >= MIN_CHANGED_SHARE)


def _mover_in_front(
    geometry: FrameGeometry,
    labels: np.ndarray,
    stats: np.ndarray,
    label: int,
    depth: np.ndarray,
    object_contact_z: float,
) -> bool:
    """Whether mover component ``label`` (of ``labels``, its box in ``stats``) stands in front of the object by
    its contact with the support; False when its depth is known (the per-pixel test decides)."""
    left, top, box_w, box_h = stats[label, :4]
    component = labels[top : top + box_h, left : left + box_w] == label
    if np.count_nonzero(depth[top : top + box_h, left : left + box_w][component] > 0) > 0.5 * stats[label, 4]:
        return False
    # The 98th percentile of the component's rows (linear interpolation, as np.percentile) from its row counts:
    # a frame-filling panel has hundreds of thousands of pixels, its rows a few hundred.
    cumulative = np.cumsum(np.count_nonzero(component, axis=1))
    position = 0.98 * (cumulative[-1] - 1)
    below = int(np.searchsorted(cumulative, int(position), side="right"))
    above = int(np.searchsorted(cumulative, min(int(position) + 1, cumulative[-1] - 1), side="right"))
    bottom = top + below + (position - int(position)) * (above - below)
    low_rows = component[max(int(np.ceil(bottom - 1)) - top, 0) :]
    xs = np.nonzero(low_rows)[1] + left
    contact_pixel = np.array([np.median(xs) + 0.5, bottom + 0.5])
    mover_z = _contact_depth(geometry.camera, geometry.support_plane, contact_pixel)
    return bool(mover_z < object_contact_z - CONTACT_MARGIN_OBJECTS * geometry.object_size)


def snap_depth_to_segments(image: np.ndarray, depth: np.ndarray, known: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Depth made constant-per-segment over an image crop: each Felzenszwalb segment takes its median known depth.

    Densified depth bleeds across occlusion edges (the near box's depth spills above its top); image
    segments do not cross strong edges, so the per-segment median puts each side of the edge back at its
    own depth. Segments without known depth stay unknown.

    Args:
        image: (h, w, 3) uint8 crop; depth: (h, w) float32; known: (h, w) bool.

    Returns:
        (h, w) float32 snapped depth and (h, w) bool known.
    """
    from skimage.segmentation import felzenszwalb

    segments = felzenszwalb(image, scale=SEGMENT_SCALE, sigma=0.6, min_size=SEGMENT_MIN_SIZE)
    from scipy import ndimage

    count = int(segments.max()) + 1
    has_depth = np.bincount(segments[known], minlength=count) > 0
    medians = np.zeros(count, np.float32)
    with_depth = np.nonzero(has_depth)[0]
    medians[with_depth] = ndimage.median(np.where(known, depth, 0.0), np.where(known, segments, -1), with_depth)
    return medians[segments], has_depth[segments]


def occluder_mask(
    geometry: FrameGeometry,
    surface_depth: np.ndarray,
    window: tuple[int, int, int, int],
    object_contact_z: float,
    exempt_support: bool = True,
    segment_snap: bool = True,
    snap_movers: bool = True,
) -> np.ndarray:
    """(h, w) bool over ``window``: scene pixels that hide a surface at ``surface_depth``.

    Args:
        geometry: the frame.
        surface_depth: (h, w) float32 camera z of the surface being tested (the object, or the
            support plane for the shadow), inf where there is none.
        window: (x0, y0, x1, y1) pixel window.
        object_contact_z: camera z of the object's contact point (ground-contact ordering).
        exempt_support: scene points on the support plane never hide (the object's own support).
        segment_snap: replace the depth by its median over image segments first (see snap_depth_to_segments).
        snap_movers: re-decide the edges of movers in front by colour (see snap_mover_edges).
    """
    x0, y0, x1, y1 = window
    height, width = geometry.scene_depth.shape
    scene_z = np.asarray(geometry.scene_depth[y0:y1, x0:x1], dtype=np.float32)
    known = np.isfinite(scene_z) & (scene_z > 0)
    support_z = plane_depth(geometry.camera, geometry.support_plane, width, height, window) if exempt_support else None
    movers = np.asarray(geometry.dynamic_mask[y0:y1, x0:x1], bool)
    in_front = known & ~movers & (scene_z < surface_depth * (1.0 - DEPTH_TOLERANCE))
    surface_pixels = max(int(np.count_nonzero(np.isfinite(surface_depth))), 1)
    if segment_snap and np.count_nonzero(in_front) > SNAP_MIN_SHARE * surface_pixels:
        # Only worth segmenting when static pixels claim to be in front (most frames: none does). Snapping
        # repairs densified *static* depth: movers keep their own depth and take no part (a segment that
        # spans a moving cart's side and the wall behind it would give the wall the cart's depth).
        snapped_z, snapped_known = snap_depth_to_segments(geometry.image[y0:y1, x0:x1], scene_z, known & ~movers)
        scene_z = np.where(movers, scene_z, snapped_z)
        known = np.where(movers, known, snapped_known)
    nearer = known & (scene_z < surface_depth * (1.0 - DEPTH_TOLERANCE))
    if support_z is not None:
        # The support never hides its object: pixels on its plane by their measured or their snapped depth.
        raw_z = np.asarray(geometry.scene_depth[y0:y1, x0:x1], dtype=np.float32)
        for z in (raw_z, scene_z):
            nearer &= ~(np.abs(z - support_z) < PLANE_TOLERANCE * support_z)
    if geometry.confirm_static is not None and nearer.any():
        ys, xs = np.nonzero(nearer)
        pixels = np.stack([xs + x0 + 0.5, ys + y0 + 0.5], axis=1)
        confirmed = geometry.confirm_static(geometry.camera.unproject(pixels, scene_z[ys, xs]))
        nearer[ys[~confirmed], xs[~confirmed]] = False
    if not snap_movers:
        return nearer | dynamic_occluders(geometry, object_contact_z, window)
    # Colour models need both sides of the edge: the crop reaches a band beyond the window (an occluder
    # covering the whole window but for a sliver has the sliver's side only outside it).
    band = max(2, round(MOVER_EDGE_BAND * geometry.image.shape[1]))
    wx0, wy0, wx1, wy1 = expand_window(window, width, height, 2 * band)
    wide = dynamic_occluders(geometry, object_contact_z, (wx0, wy0, wx1, wy1))
    inside = (slice(y0 - wy0, y1 - wy0), slice(x0 - wx0, x1 - wx0))
    if wide[inside].any() and not wide.all():
        background = None
        if geometry.reference is not None:
            background = ~changed_pixels(geometry, (wx0, wy0, wx1, wy1))
        wide = snap_mover_edges(geometry.image[wy0:wy1, wx0:wx1], wide, band, background)
    return nearer | wide[inside]


def snap_mover_edges(
    image: np.ndarray, mask: np.ndarray, band: int, background: np.ndarray | None = None
) -> np.ndarray:
    """(h, w) bool: a mover mask's edges re-decided by colour (OpenCV's GrabCut) within a band around them.

    The residual-flow masks run ahead of a moving occluder and trail behind it by about a frame's motion
    (a pixel about to be covered already has inconsistent flow), 10-20 px at 832 px on the synthetic
    moving_occluder; the guided filter that follows moves edges by a few pixels only. Inside a band of
    ``band`` pixels around the edge, GrabCut's colour models of the mover and of the
    rest of the crop decide; outside it the mask stands. A result that loses or gains more than half the
    mask is not trusted (the mask is kept).

    Colour alone confuses a dark occluder with a dark wall behind it. ``background`` says where the picture
    is what it was at placement (``changed_pixels``): there nothing stands in front, whatever the flow said.
    Its regions of at least BACKGROUND_SEED_PX across that reach in from outside the mask are taken out of
    the mask and given to GrabCut as certain background (single pixels that happen to match are not, nor
    islands inside the mask: a textured occluder has some).

    Args:
        image: (h, w, 3) uint8 RGB crop; mask: (h, w) bool movers in front of the object;
        band: half-width of the band in pixels; background: (h, w) bool pixels unchanged since placement,
            or None.
    """
    height, width = mask.shape
    seeds = np.zeros_like(mask)
    if background is not None and background.any():
        opening = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (BACKGROUND_SEED_PX, BACKGROUND_SEED_PX))
        seeds = cv2.morphologyEx(background.astype(np.uint8), cv2.MORPH_OPEN, opening) > 0
        # Only background reaching in from outside the mask: the mask runs over its edges, while an
        # "unchanged" island inside it is the occluder's own texture matching what it covers.
        count, labels_ = cv2.connectedComponents(seeds.astype(np.uint8), connectivity=4)
        outside = np.zeros(count, bool)
        outside[np.unique(labels_[seeds & ~mask])] = True
        outside[0] = False
        seeds = outside[labels_]
        mask = mask & ~seeds
    if min(height, width) < 2 * band + 4 or not mask.any():
        return mask
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
    inner = cv2.erode(mask.astype(np.uint8), kernel, borderType=cv2.BORDER_REPLICATE) > 0
    outer = cv2.dilate(mask.astype(np.uint8), kernel, borderType=cv2.BORDER_REPLICATE) > 0
    if not inner.any() or outer.all():
        return mask
    labels = np.where(mask, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    labels[inner] = cv2.GC_FGD
    labels[~outer | seeds] = cv2.GC_BGD
    # GrabCut runs on the band's box grown by another band: its colour models come from either side of the
    # edge nearby, and a frame-filling mover whose edge crosses a corner costs a fraction of the crop.
    ys, xs = np.nonzero(outer & ~inner)
    y0, y1 = max(int(ys.min()) - band, 0), min(int(ys.max()) + band + 1, height)
    x0, x1 = max(int(xs.min()) - band, 0), min(int(xs.max()) + band + 1, width)
    box_labels = np.ascontiguousarray(labels[y0:y1, x0:x1])
    if not ((box_labels == cv2.GC_FGD) | (box_labels == cv2.GC_PR_FGD)).any() or (box_labels != cv2.GC_BGD).all():
        return mask
    background_model = np.zeros((1, 65), np.float64)
    foreground_model = np.zeros((1, 65), np.float64)
    bgr = np.ascontiguousarray(image[y0:y1, x0:x1, ::-1])
    try:
        cv2.grabCut(bgr, box_labels, None, background_model, foreground_model, 1, cv2.GC_INIT_WITH_MASK)
    except cv2.error:
        return mask
    snapped = mask.copy()
    snapped[y0:y1, x0:x1] = (box_labels == cv2.GC_FGD) | (box_labels == cv2.GC_PR_FGD)
    if not 0.5 * mask.sum() <= snapped.sum() <= 1.5 * mask.sum():
        return mask
    return snapped


def multi_view_confirmation(
    cameras: list[Camera], depth: np.ndarray, dynamic: np.ndarray, views: list[int], tolerance: float = 0.05
) -> Callable[[np.ndarray], np.ndarray]:
    """A ``confirm_static`` test: a world point is confirmed when, among the ``views`` that see it (in the
    image, in front, depth known there, not on a mover), at least half put a surface at its depth.

    Args:
        cameras: every frame's Camera; depth: (T, H, W) z-depth (0 = unknown); dynamic: (T, H, W) bool.
        views: frame indices to check against (e.g. the placement frame and frames around t).
        tolerance: relative depth agreement.
    """

    def confirm(points_world: np.ndarray) -> np.ndarray:
        agree = np.zeros(len(points_world), int)
        seen = np.zeros(len(points_world), int)
        for view in views:
            height, width = depth.shape[1:]
            pixels, z = cameras[view].project(points_world)
            col, row = np.floor(pixels[:, 0]).astype(int), np.floor(pixels[:, 1]).astype(int)
            inside = (z > 0) & (col >= 0) & (col < width) & (row >= 0) & (row < height)
            idx = np.nonzero(inside)[0]
            view_z = np.asarray(depth[view])[row[idx], col[idx]]
            usable = (view_z > 0) & ~np.asarray(dynamic[view])[row[idx], col[idx]]
            idx, view_z = idx[usable], view_z[usable]
            seen[idx] += 1
            agree[idx] += np.abs(view_z - z[idx]) < tolerance * z[idx]
        return (seen == 0) | (2 * agree >= seen)

    return confirm


def refine_against_image(image: np.ndarray, mask: np.ndarray, radius: int = 4, eps: float = 2e-3) -> np.ndarray:
    """(h, w) float32 in [0, 1]: a hard mask's edges snapped to the image's edges by a guided filter.

    Args:
        image: (h, w, 3) uint8 guide crop.
        mask: (h, w) bool.
    """
    if not mask.any():
        return np.zeros(mask.shape, np.float32)
    if mask.all():
        return np.ones(mask.shape, np.float32)
    guide = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    soft = guided_filter(guide, mask.astype(np.float32), radius, eps)
    return np.clip(soft, 0.0, 1.0)


def expand_window(
    bbox: tuple[int, int, int, int] | None, width: int, height: int, margin: int
) -> tuple[int, int, int, int] | None:
    """Grow a pixel box (x0, y0, x1, y1) by ``margin`` and clip it to the frame; None stays None."""
    if bbox is None:
        return None
    x0, y0, x1, y1 = bbox
    return max(0, x0 - margin), max(0, y0 - margin), min(width, x1 + margin), min(height, y1 + margin)


def visible_alpha(
    geometry: FrameGeometry,
    coverage: np.ndarray,
    object_depth: np.ndarray,
    bbox: tuple[int, int, int, int] | None,
    refine: bool = True,
    segment_snap: bool = True,
) -> np.ndarray:
    """(H, W) float32 in [0, 1]: the object's antialiased coverage after occlusion.

    Args:
        geometry: the frame.
        coverage: (H, W) float32 object alpha from the renderer.
        object_depth: (H, W) float32 camera z of the object surface, inf where uncovered.
        bbox: (x0, y0, x1, y1) the covered pixels' box, or None when the object is out of view.
        refine: snap occluder edges to the image.
        segment_snap: take the scene depth per image segment (see snap_depth_to_segments).
    """
    height, width = coverage.shape
    out = np.zeros((height, width), np.float32)
    window = expand_window(bbox, width, height, margin=6)
    if window is None:
        return out
    x0, y0, x1, y1 = window
    contact_cam = transform_points(geometry.camera.cam_from_world, geometry.contact_world)
    surface = np.asarray(object_depth[y0:y1, x0:x1], np.float32)
    # Where the object is not covered, test against its nearest depth so the refined edge is continuous.
    finite = np.isfinite(surface)
    if finite.any():
        surface = np.where(finite, surface, np.median(surface[finite]))
    hidden = occluder_mask(geometry, surface, window, float(contact_cam[2]), segment_snap=segment_snap)
    if refine:
        hidden_soft = refine_against_image(geometry.image[y0:y1, x0:x1], hidden)
    else:
        hidden_soft = hidden.astype(np.float32)
    out[y0:y1, x0:x1] = coverage[y0:y1, x0:x1] * (1.0 - hidden_soft)
    return out


def shadow_visibility(
    geometry: FrameGeometry, window: tuple[int, int, int, int] | None
) -> tuple[tuple[int, int, int, int] | None, np.ndarray | None]:
    """Where the support plane is seen (not hidden by an occluder) inside ``window``.

    Returns the window and an (h, w) float32 in [0, 1] (1 = the shadow may darken this pixel).
    """
    if window is None:
        return None, None
    height, width = geometry.scene_depth.shape
    support_z = plane_depth(geometry.camera, geometry.support_plane, width, height, window)
    contact_cam = transform_points(geometry.camera.cam_from_world, geometry.contact_world)
    # No segment or mover-edge snapping here: the shadow's window is wide and a shadow edge matters less than
    # the object's.
    hidden = occluder_mask(
        geometry, support_z, window, float(contact_cam[2]), exempt_support=False, segment_snap=False, snap_movers=False
    )
    x0, y0, x1, y1 = window
    return window, 1.0 - refine_against_image(geometry.image[y0:y1, x0:x1], hidden)
