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
from insertanywhere.geometry.planes import Plane, fit_plane_ransac, intersect_ray_plane
from insertanywhere.geometry.rigid import rotation_about_axis

MIN_SUPPORT_PIXELS = 30
STEEP_SUPPORT_DEG = 65.0
CONTACT_REFINEMENT_STEPS = 8


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
    depth: np.ndarray, camera: Camera, placement: Placement, max_samples: int = 4000
) -> tuple[np.ndarray, np.ndarray]:
    """Depth samples around the contact point, lifted to the world.

    Args:
        depth: (H, W) float32 z-depth of the placement frame, 0 or nan = unknown.
        camera: the placement frame's camera.
        placement: the user's placement.

    Returns:
        (N, 3) world points and (N, 2) their pixel coordinates; the window grows until
        enough samples have depth.
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
    if np.min(np.linalg.norm(pixels - placement.contact_pixel, axis=1)) > max(0.6 * box_h, 8.0):
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
    return camera.unproject(pixels, z), pixels


def fit_support_plane(
    depth: np.ndarray, camera: Camera, placement: Placement, rng: np.random.Generator
) -> tuple[Plane, int]:
    """The support plane under the contact point, in the world frame, normal toward the camera's side."""
    points, pixels = support_samples(depth, camera, placement)
    contact = placement.contact_pixel
    # The seed: the depth samples nearest the contact pixel say at what depth the support is there.
    nearest = np.argsort(np.linalg.norm(pixels - contact, axis=1))[: max(8, len(pixels) // 20)]
    seed_point = np.median(points[nearest], axis=0)
    distance_to_camera = np.linalg.norm(seed_point - camera.center_world)
    plane, inliers = fit_plane_ransac(points, 0.015 * distance_to_camera, rng, iterations=300, seed_point=seed_point)
    return plane.oriented_toward(camera.center_world), int(inliers.sum())


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


def _contact_on_plane(camera: Camera, plane: Plane, pixel: np.ndarray) -> np.ndarray:
    """(3,) world point where the ray through ``pixel`` (2,) meets the support plane."""
    ray = camera.world_from_cam[:3, :3] @ camera.pixel_rays_cam(pixel[None])[0]
    contact = intersect_ray_plane(camera.center_world, ray, plane)
    if contact is None:
        raise PlacementError(
            "the box's bottom edge does not meet the surface found there (it faces away from the camera); "
            "move the box so that its bottom rests on a floor or table"
        )
    return contact


def anchor_object(
    scene: Scene4D, placement: Placement, object_points: np.ndarray, rng: np.random.Generator | None = None
) -> Anchor:
    """Pose the object in the placement frame.

    Args:
        scene: the reconstruction.
        placement: validated against the clip.
        object_points: (N, 3) float64 object-frame geometry (vertices), object units.
        rng: for RANSAC (default: seeded, so the result is deterministic).

    Returns:
        The Anchor; raises PlacementError with a fix when the box does not stand on a surface.
    """
    rng = rng or np.random.default_rng(0)
    camera = scene.cameras[placement.frame]
    depth = np.asarray(scene.depth[placement.frame], dtype=np.float32)
    plane, n_samples = fit_support_plane(depth, camera, placement, rng)
    warnings: list[str] = []
    camera_up = -camera.world_from_cam[:3, 1]  # image up (-y) in the world
    tilt = np.degrees(np.arccos(np.clip(plane.normal @ camera_up, -1.0, 1.0)))
    if tilt > STEEP_SUPPORT_DEG:
        warnings.append(
            f"the support under the box is steep ({tilt:.0f} degrees from the image's up direction); "
            "the object stands perpendicular to it"
        )
    # Under perspective the silhouette's box is not centred on the contact's projection, so the contact
    # pixel is refined until the projected box's bottom centre lands on the box's bottom centre.
    target = placement.contact_pixel
    contact_pixel = target.copy()
    object_points = np.asarray(object_points, np.float64)
    for _ in range(CONTACT_REFINEMENT_STEPS):
        contact = _contact_on_plane(camera, plane, contact_pixel)
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
