"""Anchor: lift the user's 2D placement into the 4D scene (paper Sec. 3.2, "4D-aware mask generation").

The box's bottom-centre gives a contact ray; the support surface under it is a
robust local plane fitted to the scene's depth; the object stands upright on it
(object +Y along the support normal, see ``conventions``), faces the placement
camera, is turned by ``yaw_deg`` about the normal, and is scaled so that the
projection of its actual geometry fills the box (solved, not guessed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import brentq

from insertanywhere.conventions import Camera, Placement, PlacementError, Scene4D, make_pose
from insertanywhere.geometry.planes import Plane, fit_plane_lstsq, intersect_ray_plane
from insertanywhere.geometry.rigid import rotation_about_axis
from insertanywhere.place.vertical import vertical_from_lines

LEVEL_MIN_DEG = 10.0
LEVEL_MAX_DEG = 25.0
"""A fitted support between LEVEL_MIN_DEG and LEVEL_MAX_DEG from the scene's vertical (from its lines) is taken as
level: closer, the fit agrees with the reconstruction's own geometry, which its cameras project (on the dolly the
fit is 0.6 degrees from the truth and the lines' vertical, seen through self-calibrated intrinsics, 0.7: levelling
cost 0.014 of mask J); further, it is a ramp, or the vertical is wrong."""
MIN_SUPPORT_PIXELS = 30
STEEP_SUPPORT_DEG = 80.0
UPRIGHT_SUPPORT_DEG = 45.0
"""Supports tilted less than this from the image's up direction are fully plausible; at STEEP_SUPPORT_DEG not."""
CONTACT_REFINEMENT_STEPS = 8
MIN_SPARSE_POINTS = 20
SPARSE_DEPTH_AGREEMENT = 0.15
"""Triangulated points used for the support must lie within 15% of the distance the dense depth sees there."""
LEVEL_SNAP_DEG = 15.0
"""A support within this of the scene's dominant level plane is taken as level (see fit_support_plane)."""
LEVEL_PREFERENCE = 0.7
"""A level support is chosen when it scores at least 70% of the best free plane (see fit_support_plane)."""
HIDDEN_CONTACT_WEIGHT = 0.5
"""Score factor of a support whose contact would lie behind the surface seen at the contact pixel."""
ABOVE_CONTACT_WEIGHT = 0.3
"""Weight of support samples above the box's bottom edge (seen behind the object's base, not under it)."""
MIN_DEPTH_COVERAGE = 0.01
"""Below this share of pixels with depth, the scene is taken to have no depth at all."""


@dataclass
class Anchor:
    """The object's pose in the placement frame.

    Attributes:
        frame: the placement frame index.
        world_from_object: (4, 4) float64 = [scale * R | contact], object units to scene units.
        scale: scene units per object unit.
        rotation: (3, 3) world_from_object rotation (columns: object x, up, front in world).
        contact_world: (3,) contact point, world frame, scene units.
        support_plane: the support plane in the world frame, normal pointing up (away from the support).
        support_pixels: number of depth samples the plane was fitted to.
        warnings: things the user should know (e.g. a steep support).
    """

    frame: int
    world_from_object: np.ndarray
    scale: float
    rotation: np.ndarray
    contact_world: np.ndarray
    support_plane: Plane
    support_pixels: int
    warnings: list[str] = field(default_factory=list)


def _support_window(placement: Placement, width: int, height: int, grow: float) -> tuple[int, int, int, int]:
    """Pixel window (x0, y0, x1, y1) around the contact: a band across the box's bottom edge."""
    x0, y0, x1, y1 = placement.box
    box_w, box_h = x1 - x0, y1 - y0
    band = max(0.35 * box_h, 4.0) * grow
    wx0 = int(np.floor(max(0.0, x0 - 0.5 * box_w * grow)))
    wx1 = int(np.ceil(min(width, x1 + 0.5 * box_w * grow)))
    wy0 = int(np.floor(max(0.0, y1 - band)))
    wy1 = int(np.ceil(min(height, y1 + band)))
    return wx0, wy0, wx1, wy1


def support_samples(
    depth: np.ndarray,
    camera: Camera,
    placement: Placement,
    mover_mask: np.ndarray | None = None,
    max_samples: int = 4000,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Depth samples around the contact point, lifted to the world.

    Args:
        depth: (H, W) float32 z-depth of the placement frame, 0 or nan = unknown.
        camera: the placement frame's camera.
        placement: the user's placement.
        mover_mask: (H, W) bool movers of the placement frame, or None.

    Returns:
        (N, 3) world points, (N, 2) their pixel coordinates, and whether the support is a mover
        without depth whose surroundings stand in for it. The window grows until enough samples
        have depth.
    """
    height, width = depth.shape
    for grow in (1.0, 2.0, 4.0):
        wx0, wy0, wx1, wy1 = _support_window(placement, width, height, grow)
        patch = np.asarray(depth[wy0:wy1, wx0:wx1], dtype=np.float64)
        ys, xs = np.nonzero(np.isfinite(patch) & (patch > 0))
        if len(ys) >= MIN_SUPPORT_PIXELS:
            break
    else:
        raise PlacementError(
            f"there is no scene surface under the box's bottom edge {placement.contact_pixel.tolist()} in frame "
            f"{placement.frame} (no depth there: sky or empty space?); put the box's bottom on a floor or table"
        )
    pixels = np.stack([xs + wx0 + 0.5, ys + wy0 + 0.5], axis=1)
    box_h = placement.box_size[1]
    on_mover = False
    if mover_mask is not None:
        # The support is a mover when most of the box's bottom band is (one stray pixel is not enough).
        bx0, by0, bx1, by1 = _support_window(placement, width, height, 0.5)
        on_mover = bool(np.mean(np.asarray(mover_mask)[by0:by1, bx0:bx1]) > 0.5)
    if np.min(np.linalg.norm(pixels - placement.contact_pixel, axis=1)) > max(0.6 * box_h, 8.0) and not on_mover:
        # Depth exists only far from the contact: the box's bottom stands on nothing (sky, a window).
        raise PlacementError(
            f"there is no scene surface under the box's bottom edge {placement.contact_pixel.tolist()} in frame "
            f"{placement.frame} (no depth near it: sky or empty space?); put the box's bottom on a floor or table"
        )
    if len(ys) > max_samples:
        keep = np.linspace(0, len(ys) - 1, max_samples).astype(int)
        ys, xs = ys[keep], xs[keep]
    pixels = np.stack([xs + wx0 + 0.5, ys + wy0 + 0.5], axis=1)
    z = patch[ys, xs]
    near_contact = np.min(np.linalg.norm(pixels - placement.contact_pixel, axis=1)) <= max(0.6 * box_h, 8.0)
    return camera.unproject(pixels, z), pixels, on_mover and not near_contact


def assumed_ground_plane(camera: Camera, placement: Placement, up_cam: np.ndarray | None = None) -> Plane:
    """The support when the scene has no depth: a floor one unit below the camera, in the world frame,
    perpendicular to ``up_cam`` (3,) (the scene's up in the camera frame, ``place.vertical``) or, without it, to
    the image's up direction (a level camera). Raises PlacementError when the box's bottom is above that
    floor's horizon."""
    world_from_cam = camera.world_from_cam
    up_cam = np.array([0.0, -1.0, 0.0]) if up_cam is None else np.asarray(up_cam, np.float64)
    up = world_from_cam[:3, :3] @ (up_cam / np.linalg.norm(up_cam))
    plane = Plane.from_point_normal(camera.center_world - up, up)
    ray = world_from_cam[:3, :3] @ camera.pixel_rays_cam(placement.contact_pixel[None])[0]
    # The contact ray must go down toward the floor, at least a pixel's angle below the horizon.
    if ray @ up >= -np.linalg.norm(ray) / camera.K[1, 1]:
        level = "a level floor" if np.allclose(up_cam, [0.0, -1.0, 0.0]) else "the floor (by the scene's verticals)"
        raise PlacementError(
            f"the scene has no depth and the box's bottom (y = {placement.contact_pixel[1]:.0f}) is above the "
            f"horizon of {level} one unit below the camera; draw the box's bottom lower, or give the "
            "reconstruction a depth prior (--depth depth-anything-v2)"
        )
    return plane


def _upright_weight(plane: Plane, camera: Camera) -> float:
    """1 for a support whose seen side faces the image's up direction, falling to 0 at STEEP_SUPPORT_DEG (a
    wall). The side the camera sees is the one that counts: a plane whose camera-facing normal points down
    the image is the underside of something (or a bad fit), never a support the object can stand on."""
    return float(_upright_weights(plane.normal[None], np.array([plane.offset]), camera)[0])


def _upright_weights(normals: np.ndarray, offsets: np.ndarray, camera: Camera) -> np.ndarray:
    """``_upright_weight`` of many planes at once: (M, 3) unit normals and (M,) offsets -> (M,) weights."""
    facing = np.sign(normals @ camera.center_world + offsets)  # orient each normal toward the camera
    facing[facing == 0] = 1.0
    camera_up = -camera.world_from_cam[:3, 1]
    tilt = np.degrees(np.arccos(np.clip(facing * (normals @ camera_up), -1.0, 1.0)))
    return np.clip((STEEP_SUPPORT_DEG - tilt) / (STEEP_SUPPORT_DEG - UPRIGHT_SUPPORT_DEG), 0.0, 1.0)


def _plane_hypotheses(points: np.ndarray, draws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Planes through the point triples ``draws`` (M, 3) of ``points`` (N, 3), collinear triples left out:
    (M', 3) unit normals and (M',) offsets."""
    a, b, c = points[draws[:, 0]], points[draws[:, 1]], points[draws[:, 2]]
    normals = np.cross(b - a, c - a)
    norms = np.linalg.norm(normals, axis=1)
    proper = norms >= 1e-12
    normals = normals[proper] / norms[proper, None]
    return normals, -np.einsum("mi,mi->m", normals, a[proper])


def fit_support_plane(
    depth: np.ndarray,
    camera: Camera,
    placement: Placement,
    rng: np.random.Generator,
    mover_mask: np.ndarray | None = None,
    iterations: int = 400,
    sparse_points: np.ndarray | None = None,
    up_prior: np.ndarray | None = None,
) -> tuple[Plane, int, bool]:
    """The support plane under the contact point, in the world frame, normal toward the camera's side,
    the number of samples it was fitted to, and whether it stands in for a mover without depth.

    RANSAC over the depth samples around the box's bottom edge, each hypothesis scored by its inliers
    weighted by their closeness to the contact pixel, times a prior that supports face up (a table top,
    not the wall behind it or the side of a box in front), and refused when it would put the contact in
    front of what the camera sees there (a support floating before a visible surface).
    """
    points, pixels, stand_in = support_samples(depth, camera, placement, mover_mask)
    contact = placement.contact_pixel
    box_w, box_h = placement.box_size
    # What the camera sees at the contact, from the dense depth: the support cannot float in front of it.
    # Only pixels at or below the box's bottom edge count: above it the object stands in front of whatever is
    # seen there (a box drawn at a cart top's back edge has the floor behind the cart just above its bottom).
    below = pixels[:, 1] >= contact[1] - 1.0
    candidates = np.flatnonzero(below) if below.sum() >= 8 else np.arange(len(pixels))
    order = np.argsort(np.linalg.norm(pixels[candidates] - contact, axis=1))
    nearest = candidates[order[: max(8, len(candidates) // 20)]]
    seen_at_contact = float(np.median(np.linalg.norm(points[nearest] - camera.center_world, axis=1)))
    if sparse_points is not None and not stand_in:
        # Triangulated points are exact where the densified depth is smooth guesswork: use them when enough
        # of them lie around the box's bottom edge at about the depth seen there (a moving support has no
        # triangulated points, and those of the wall behind it are no support).
        sparse_pixels, z = camera.project(sparse_points)
        distance = np.linalg.norm(np.asarray(sparse_points) - camera.center_world, axis=1)
        x0, _, x1, y1 = placement.box
        band = (
            (z > 0)
            & (sparse_pixels[:, 0] > x0 - box_w)
            & (sparse_pixels[:, 0] < x1 + box_w)
            & (np.abs(sparse_pixels[:, 1] - y1) < max(0.6 * box_h, 8.0))
            & (np.abs(distance - seen_at_contact) < SPARSE_DEPTH_AGREEMENT * seen_at_contact)
        )
        if band.sum() >= MIN_SPARSE_POINTS:
            points, pixels = np.asarray(sparse_points)[band], sparse_pixels[band]
    pixel_distance = np.linalg.norm(pixels - contact, axis=1)
    closeness = np.exp(-0.5 * (pixel_distance / max(box_w, box_h, 8.0)) ** 2)
    # Samples above the box's bottom edge are behind the object's base as often as under it: they count less.
    closeness = np.where(pixels[:, 1] < contact[1] - 1.0, ABOVE_CONTACT_WEIGHT * closeness, closeness)
    threshold = 0.015 * seen_at_contact
    ray = camera.world_from_cam[:3, :3] @ camera.pixel_rays_cam(contact[None])[0]
    ray_length = float(np.linalg.norm(ray))

    def scores_of(normals: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scores (M,) of the planes with unit (M, 3) ``normals`` and (M,) offsets (-1: refused), and their
        (M, N) inlier masks; all hypotheses at once (one matrix product instead of a loop)."""
        denom = normals @ ray
        with np.errstate(divide="ignore", invalid="ignore"):
            along = -(normals @ camera.center_world + offsets) / denom
        hits = (np.abs(denom) >= 1e-12) & (along > 0)
        reach = np.where(hits, along, 0.0) * ray_length
        inliers = np.abs(normals @ points.T + offsets[:, None]) < threshold
        # A contact hidden behind what the camera sees there is possible (feet behind a kerb) but less likely
        # than one on the surface seen at the contact pixel (a box drawn on a cart top, not behind the cart).
        seen = np.where(reach <= 1.05 * seen_at_contact, 1.0, HIDDEN_CONTACT_WEIGHT)
        scores = (inliers @ closeness) * _upright_weights(normals, offsets, camera) * seen
        return np.where(hits & (reach >= 0.97 * seen_at_contact), scores, -1.0), inliers

    def best_of(scores: np.ndarray, inliers: np.ndarray) -> tuple[float, np.ndarray | None]:
        """The first best-scoring hypothesis (the loop this replaced kept the first of equal scores)."""
        if not len(scores) or scores.max() <= -1.0:
            return -1.0, None
        k = int(np.argmax(scores))
        return float(scores[k]), inliers[k]

    draws = rng.integers(0, len(points), size=(iterations, 3))
    normals, offsets = _plane_hypotheses(points, draws)
    best_score, best_inliers = best_of(*scores_of(normals, offsets))
    level_score, level_inliers = -1.0, None
    if up_prior is not None:
        # One-point hypotheses of a level support (the scene's dominant plane's normal) through each sample.
        up = np.asarray(up_prior, np.float64) / np.linalg.norm(up_prior)
        level_score, level_inliers = best_of(*scores_of(np.tile(up, (iterations, 1)), -points[draws[:, 0]] @ up))
    if level_inliers is not None and level_score >= LEVEL_PREFERENCE * best_score and level_inliers.sum() >= 3:
        # A level plane explains the samples about as well as the best free one: a few dozen noisy samples
        # tilt a free fit by 5-25 degrees, and supports are level far more often than tilted.
        return (
            _level_plane(points[level_inliers], closeness[level_inliers], up_prior),
            int(level_inliers.sum()),
            stand_in,
        )
    if best_inliers is None or best_inliers.sum() < 3 or best_score <= 0:
        raise PlacementError(
            f"no surface an object could stand on was found under the box's bottom edge {contact.tolist()} in "
            f"frame {placement.frame}; put the box's bottom on a floor or table"
        )
    plane = fit_plane_lstsq(points[best_inliers], closeness[best_inliers])
    plane = plane.oriented_toward(camera.center_world)
    if up_prior is not None and np.degrees(np.arccos(np.clip(plane.normal @ up_prior, -1, 1))) < LEVEL_SNAP_DEG:
        # The local fit is a few dozen noisy samples; the scene's dominant level plane fixes "up" far better,
        # and supports are level far more often than they are tilted by a few degrees.
        plane = _level_plane(points[best_inliers], closeness[best_inliers], up_prior)
    return plane, int(best_inliers.sum()), stand_in


def _level_plane(points: np.ndarray, weights: np.ndarray, up: np.ndarray) -> Plane:
    """The plane with normal ``up`` (3,) through the weighted centroid of (N, 3) world points."""
    centroid = (points * weights[:, None]).sum(0) / weights.sum()
    return Plane.from_point_normal(centroid, up)


def estimate_up(scene: Scene4D, frame: int, rng: np.random.Generator) -> np.ndarray | None:
    """(3,) world "up": the normal of the scene's dominant level plane (floor or table top), or None.

    RANSAC over the static triangulated points (or the frame's depth when there are few), with the
    same prior as the support fit: a plane facing the image's up direction.
    """
    camera = scene.cameras[frame]
    points = scene.points_world
    if points is None or len(points) < 50:
        depth = np.asarray(scene.depth[frame], np.float32)
        ys, xs = np.nonzero(np.isfinite(depth) & (depth > 0))
        if len(ys) < 50:
            return None
        keep = np.linspace(0, len(ys) - 1, min(len(ys), 3000)).astype(int)
        pixels = np.stack([xs[keep] + 0.5, ys[keep] + 0.5], axis=1)
        points = camera.unproject(pixels, depth[ys[keep], xs[keep]])
    points = np.asarray(points, np.float64)
    distances = np.linalg.norm(points - camera.center_world, axis=1)
    threshold = 0.01 * float(np.median(distances))
    camera_up = -camera.world_from_cam[:3, 1]
    normals, offsets = _plane_hypotheses(points, rng.integers(0, len(points), size=(300, 3)))
    best = None
    if len(normals):
        inliers = np.abs(normals @ points.T + offsets[:, None]) < threshold
        scores = inliers.sum(axis=1) * _upright_weights(normals, offsets, camera)
        k = int(np.argmax(scores))
        best = inliers[k] if scores[k] > 0 else None
    if best is None or best.mean() < 0.15:
        return None
    normal = fit_plane_lstsq(points[best]).normal
    return normal if normal @ camera_up > 0 else -normal


def upright_rotation(up: np.ndarray, toward_camera: np.ndarray, yaw_deg: float) -> np.ndarray:
    """(3, 3) world_from_object rotation: object +Y = ``up``, +Z = ``toward_camera`` made
    perpendicular to ``up``, then turned by ``yaw_deg`` about ``up`` (counter-clockwise seen from above)."""
    up = up / np.linalg.norm(up)
    front = toward_camera - (toward_camera @ up) * up
    if np.linalg.norm(front) < 1e-6:  # camera looks straight down the normal: any front will do
        helper = np.array([0.0, 0.0, 1.0]) if abs(up[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
        front = helper - (helper @ up) * up
    front = front / np.linalg.norm(front)
    right = np.cross(up, front)
    rotation = np.stack([right, up, front], axis=1)
    return rotation_about_axis(up, np.radians(yaw_deg)) @ rotation


def projected_box(
    camera: Camera, world_from_object: np.ndarray, object_points: np.ndarray
) -> tuple[float, float, float, float] | None:
    """Pixel bounding box (x0, y0, x1, y1) of (N, 3) object-frame points, or None if any is behind the camera."""
    world = object_points @ world_from_object[:3, :3].T + world_from_object[:3, 3]
    pixels, z = camera.project(world)
    if np.any(z <= 1e-9):
        return None
    return float(pixels[:, 0].min()), float(pixels[:, 1].min()), float(pixels[:, 0].max()), float(pixels[:, 1].max())


def solve_scale(
    camera: Camera,
    rotation: np.ndarray,
    contact_world: np.ndarray,
    object_points: np.ndarray,
    box_size: tuple[float, float],
) -> float:
    """The scale s at which the projection of ``s * object_points`` just fills the box.

    "Fills" means the projected silhouette's bounding box touches the box in one
    dimension and fits inside it in the other: f(s) = max(w(s)/W, h(s)/H) = 1,
    monotone in s, solved by Brent's method.
    """
    box_w, box_h = box_size

    def excess(scale: float) -> float:
        pose = make_pose(scale * rotation, contact_world)
        box = projected_box(camera, pose, object_points)
        if box is None:
            return 1e6
        return max((box[2] - box[0]) / box_w, (box[3] - box[1]) / box_h) - 1.0

    distance = float(np.linalg.norm(contact_world - camera.center_world))
    extent = float(np.max(np.ptp(object_points, axis=0)))
    guess = box_h * distance / camera.K[1, 1] / max(extent, 1e-9)
    lo, hi = guess / 64.0, guess * 8.0
    while excess(hi) < 0 and hi < guess * 1e4:
        hi *= 4.0
    if excess(lo) > 0 or excess(hi) < 0:
        raise PlacementError("cannot size the object to the box (it would reach behind the camera); draw a smaller box")
    return float(brentq(excess, lo, hi, xtol=guess * 1e-6, rtol=1e-9))


def pixel_on_plane(camera: Camera, plane: Plane, pixel: np.ndarray) -> np.ndarray | None:
    """(3,) world point where the ray through ``pixel`` (2,) meets ``plane``, or None (parallel, behind)."""
    ray = camera.world_from_cam[:3, :3] @ camera.pixel_rays_cam(pixel[None])[0]
    return intersect_ray_plane(camera.center_world, ray, plane)


def contact_on_plane(camera: Camera, plane: Plane, pixel: np.ndarray) -> np.ndarray:
    """(3,) world point where the ray through ``pixel`` (2,) meets the support plane."""
    contact = pixel_on_plane(camera, plane, pixel)
    if contact is None:
        raise PlacementError(
            "the box's bottom edge does not meet the surface found there (it faces away from the camera); "
            "move the box so that its bottom rests on a floor or table"
        )
    return contact


def find_support(
    scene: Scene4D, placement: Placement, rng: np.random.Generator, image: np.ndarray | None = None
) -> tuple[Plane, int, list[str]]:
    """The support plane under the placement's contact ray (world frame, normal up).

    Args:
        image: (H, W, 3) uint8 placement frame: its vertical lines level a support whose fitted plane is far
            from level (``_level_support``) and, where the scene has no depth and the focal length is measured,
            tilt the assumed floor; None keeps the fit and a level assumed floor.

    Returns:
        the plane, the number of depth samples it was fitted to (0 for an assumed floor), and warnings
        for the user (no depth, a moving support without depth, a steep support). Raises PlacementError
        when the box's bottom stands on nothing.
    """
    camera = scene.cameras[placement.frame]
    depth = np.asarray(scene.depth[placement.frame], dtype=np.float32)
    movers = np.asarray(scene.dynamic_mask[placement.frame], bool)
    warnings: list[str] = []
    if np.mean(np.isfinite(depth) & (depth > 0)) < MIN_DEPTH_COVERAGE:
        # A static or rotating camera sees no parallax: the classical reconstruction has no depth at all.
        # The lines' vertical is seen through K: with a guessed focal (a static camera; the static family's true
        # one is 56.5 degrees against the 60 guessed) it tilted the card and cost 0.012 of mask J.
        focal_measured = scene.meta.extra.get("intrinsics", "guessed") != "guessed"
        up_cam = vertical_from_lines(image, camera.K) if image is not None and focal_measured else None
        plane, n_samples, stand_in = assumed_ground_plane(camera, placement, up_cam), 0, False
        tilt = "tilted by the scene's vertical lines" if up_cam is not None else "below a level camera"
        warnings.append(
            "the scene has no depth (static or rotating camera, classical reconstruction): the object stands on "
            f"an assumed floor one unit away, {tilt}; its image placement is right, its 3D height and its "
            "shadow's perspective are approximate (a depth prior, --depth depth-anything-v2, fixes that)"
        )
    else:
        up = estimate_up(scene, placement.frame, rng)
        plane, n_samples, stand_in = fit_support_plane(
            depth, camera, placement, rng, movers, sparse_points=scene.points_world, up_prior=up
        )
        if scene.meta.backends.get("depth", "classical") == "classical" and image is not None:
            plane = _level_support(plane, camera, placement, image, up)
    if stand_in:
        warnings.append(
            "the object stands on something that moves and has no depth (classical reconstruction); its support "
            "is taken at the level of the surface around it, so the object is carried right in the picture but "
            "sits too far away in 3D; a depth prior (--depth depth-anything-v2) gives the support's real height"
        )
    camera_up = -camera.world_from_cam[:3, 1]  # image up (-y) in the world
    tilt = np.degrees(np.arccos(np.clip(plane.normal @ camera_up, -1.0, 1.0)))
    if tilt > STEEP_SUPPORT_DEG:
        warnings.append(
            f"the support under the box is steep ({tilt:.0f} degrees from the image's up direction); "
            "the object stands perpendicular to it"
        )
    return plane, n_samples, warnings


def _level_support(
    plane: Plane, camera: Camera, placement: Placement, image: np.ndarray, scene_up: np.ndarray | None = None
) -> Plane:
    """The support's plane turned level: through the same point under the contact, normal to the scene's
    vertical from the image's vertical lines (``place.vertical``), when that vertical is found and the fitted
    normal is between LEVEL_MIN_DEG and LEVEL_MAX_DEG from it. Where the image has too few lines (a small
    frame), ``scene_up`` (world, the reconstruction's dominant level plane: ``estimate_up``) stands in for the
    lines' vertical; ``fit_support_plane`` has already levelled fits within LEVEL_SNAP_DEG of it, so this takes
    those between LEVEL_SNAP_DEG and LEVEL_MAX_DEG (the demo's cart top: a rough textureless fit 20 degrees off,
    which leaned the card sideways and let it trail the cart).

    Classical depth fits a plane to noisy or, on a mover, wrong points: tracks on a cart are triangulated as
    if it stood still, and on the synthetic moving_support the cart top's fitted normal is 22 degrees off. The
    cart's tracked turn then reads as a roll about the viewing direction, and keeping the object upright on that
    plane throws the turn away (1 degree of 32). Tables, floors, carts and trays are level, and the vertical
    is measured on the scene's static lines (0.5 degrees off there).
    """
    up_cam = vertical_from_lines(image, camera.K)
    if up_cam is not None:
        vertical, lowest = camera.world_from_cam[:3, :3] @ up_cam, LEVEL_MIN_DEG
    elif scene_up is not None:
        vertical, lowest = np.asarray(scene_up, np.float64) / np.linalg.norm(scene_up), LEVEL_SNAP_DEG
    else:
        return plane
    if vertical @ plane.normal < 0:
        vertical = -vertical
    if not lowest < np.degrees(np.arccos(np.clip(vertical @ plane.normal, -1.0, 1.0))) <= LEVEL_MAX_DEG:
        return plane
    contact = pixel_on_plane(camera, plane, placement.contact_pixel)
    if contact is None:
        return plane
    level = Plane.from_point_normal(contact, vertical)
    return level if pixel_on_plane(camera, level, placement.contact_pixel) is not None else plane


def anchor_object(
    scene: Scene4D,
    placement: Placement,
    object_points: np.ndarray,
    rng: np.random.Generator | None = None,
    image: np.ndarray | None = None,
) -> Anchor:
    """Pose the object in the placement frame.

    Args:
        scene: the reconstruction.
        placement: validated against the clip.
        object_points: (N, 3) float64 object-frame geometry (vertices), object units.
        rng: for RANSAC (default: seeded, so the result is deterministic).
        image: (H, W, 3) uint8 placement frame (see ``find_support``), or None.

    Returns:
        The Anchor; raises PlacementError with a fix when the box does not stand on a surface.
    """
    rng = rng or np.random.default_rng(0)
    camera = scene.cameras[placement.frame]
    plane, n_samples, warnings = find_support(scene, placement, rng, image)
    # Under perspective the silhouette's box is not centred on the contact's projection, so the contact
    # pixel is refined until the projected box's bottom centre lands on the box's bottom centre.
    target = placement.contact_pixel
    contact_pixel = target.copy()
    object_points = np.asarray(object_points, np.float64)
    for _ in range(CONTACT_REFINEMENT_STEPS):
        contact = contact_on_plane(camera, plane, contact_pixel)
        rotation = upright_rotation(plane.normal, camera.center_world - contact, placement.yaw_deg)
        scale = solve_scale(camera, rotation, contact, object_points, placement.box_size)
        box = projected_box(camera, make_pose(scale * rotation, contact), object_points)
        assert box is not None  # solve_scale guarantees the object is in front of the camera
        offset = target - np.array([(box[0] + box[2]) / 2.0, box[3]])
        if np.max(np.abs(offset)) < 1e-3:
            break
        contact_pixel = contact_pixel + offset
    pose = make_pose(scale * rotation, contact)
    return Anchor(placement.frame, pose, scale, rotation, contact, plane, n_samples, warnings)
