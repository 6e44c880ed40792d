"""Anchor an image (a photo of the object) as a card that shows the photo exactly as drawn.

The user's picture is a view of the object from *some* camera; it already holds that view's
perspective. An upright quad with the picture pasted on it, seen from the placement camera (which
usually looks down on it), would apply perspective a second time: the projected silhouette shears
and shrinks against the box the user drew. So the card's texture is the picture projected from the
placement camera onto the card's plane (projective texturing, done once by a homography): in the
placement frame the card reproduces the picture in the box to the pixel; in every other frame it is
a rigid planar object moving with the scene.

The card plane stands upright on the support through the contact (the box's bottom-centre ray on
the support), facing the placement camera; ``yaw_deg`` then turns it about the support normal.
"""

from __future__ import annotations

import numpy as np

from insertanywhere.conventions import Camera, Placement, PlacementError, Scene4D, make_pose
from insertanywhere.errors import InputError
from insertanywhere.geometry.planes import Plane, intersect_ray_plane
from insertanywhere.geometry.rigid import rotation_about_axis
from insertanywhere.place.anchor import Anchor, contact_on_plane, find_support, upright_rotation
from insertanywhere.render.mesh import Facing, TexturedMesh

TEXTURE_OVERSAMPLE = 2.0
"""Texels per picture pixel (vertically): the one resampling into the card keeps thin details."""
MAX_TEXTURE_SIDE = 4096


def card_corners_on_plane(
    camera: Camera, placement: Placement, contact: np.ndarray, rotation: np.ndarray
) -> np.ndarray:
    """(4, 2) float64 object-plane coordinates (x right, y up; scene units, origin at the contact) of the
    box's corners (x0, y0), (x1, y0), (x1, y1), (x0, y1) back-projected onto the card's plane.

    Args:
        camera: the placement frame's camera.
        placement: the user's box (pixel edges, x right, y down).
        contact: (3,) world contact point on the support.
        rotation: (3, 3) world_from_object rotation of the card facing the camera (columns: right, up, front).
    """
    x0, y0, x1, y1 = placement.box
    pixels = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64)
    rays = camera.pixel_rays_cam(pixels) @ camera.world_from_cam[:3, :3].T
    plane = Plane.from_point_normal(contact, rotation[:, 2])
    corners = []
    for ray in rays:
        hit = intersect_ray_plane(camera.center_world, ray, plane)
        if hit is None:
            raise PlacementError("the box cannot be lifted onto an upright card there; move or redraw the box")
        local = rotation.T @ (hit - contact)
        corners.append(local[:2])
    return np.asarray(corners)


def bottom_outline_pixels(rgba: np.ndarray, placement: Placement) -> np.ndarray:
    """(M, 2) float64 image pixels (continuous, pixel-corner origin) of the picture's bottom outline: the
    lower edge of the lowest opaque (alpha >= 0.5) pixel of every column, mapped into the user's box."""
    opaque = rgba[..., 3] >= 128
    columns = np.flatnonzero(opaque.any(axis=0))
    if not len(columns):
        return np.array([[0.5 * (placement.box[0] + placement.box[2]), placement.box[3]]])
    h, w = opaque.shape
    lowest = h - np.argmax(opaque[::-1, columns], axis=0)  # one past the lowest opaque row
    x0, y0, x1, y1 = placement.box
    return np.stack([x0 + (columns + 0.5) * (x1 - x0) / w, y0 + lowest * (y1 - y0) / h], axis=1)


def resting_contact(camera: Camera, plane: Plane, placement: Placement, rgba: np.ndarray) -> np.ndarray:
    """(3,) world contact point at which the card stands with its lowest visible point on the support.

    The box's bottom-centre ray is where the object touches the support only when the card's base looks
    level in the image; seen off the optical axis it is tilted, and the bottom-centre pixel lies below
    the base line. So the contact pixel is raised along the box's vertical centre line until the bottom
    outline of the picture, lifted onto the card's plane, just touches the support (min height 0).
    """
    from scipy.optimize import brentq

    outline = bottom_outline_pixels(rgba, placement)
    rays = camera.pixel_rays_cam(outline) @ camera.world_from_cam[:3, :3].T
    x_centre, y_bottom = placement.contact_pixel

    def lowest_height(y: float) -> float:
        contact = contact_on_plane(camera, plane, np.array([x_centre, y]))
        card = Plane.from_point_normal(
            contact, upright_rotation(plane.normal, camera.center_world - contact, 0.0)[:, 2]
        )
        heights = []
        for ray in rays:
            hit = intersect_ray_plane(camera.center_world, ray, card)
            if hit is not None:
                heights.append(plane.normal @ (hit - contact))
        return float(min(heights)) if heights else 0.0

    box_h = placement.box_size[1]
    lo, hi = y_bottom - 0.25 * box_h, y_bottom + 0.25 * box_h
    try:
        f_lo, f_hi = lowest_height(lo), lowest_height(hi)
    except PlacementError:
        return contact_on_plane(camera, plane, placement.contact_pixel)
    if f_lo * f_hi > 0:
        return contact_on_plane(camera, plane, placement.contact_pixel)
    y = brentq(lowest_height, lo, hi, xtol=1e-3)
    return contact_on_plane(camera, plane, np.array([x_centre, y]))


def projective_card_texture(
    rgba: np.ndarray,
    camera: Camera,
    placement: Placement,
    contact: np.ndarray,
    rotation: np.ndarray,
    corners: np.ndarray,
) -> np.ndarray:
    """The card's texture: the picture as the placement camera projects it onto the card rectangle.

    Args:
        rgba: (h, w, 4) uint8 straight-alpha picture, mapped onto the user's box.
        camera, placement, contact, rotation: as in ``card_corners_on_plane``.
        corners: (4, 2) the box's corners on the card's plane (``card_corners_on_plane``); the card is
            their bounding rectangle.

    Returns:
        (th, tw, 4) uint8 straight-alpha texture; its top row is the card's top edge (y_max).
    """
    import cv2

    h, w = rgba.shape[:2]
    x_min, y_min = corners.min(axis=0)
    x_max, y_max = corners.max(axis=0)
    box_x0, box_y0, box_x1, box_y1 = placement.box
    # Texture height: the picture's height, oversampled by the card's height over the box's back-projected height.
    box_height = max(float(np.mean(corners[:2, 1] - corners[2:, 1][::-1])), 1e-12)
    th = int(np.clip(np.ceil(TEXTURE_OVERSAMPLE * h * (y_max - y_min) / box_height), 2, MAX_TEXTURE_SIDE))
    tw = int(np.clip(np.ceil(th * (x_max - x_min) / (y_max - y_min)), 2, MAX_TEXTURE_SIDE))
    # Texture corners (continuous, pixel-corner origin) and the picture coordinates they come from.
    texture_corners = np.array([[0, 0], [tw, 0], [tw, th], [0, th]], np.float64)
    plane_corners = np.array([[x_min, y_max], [x_max, y_max], [x_max, y_min], [x_min, y_min]])
    world = contact + np.column_stack([plane_corners, np.zeros(4)]) @ rotation.T
    image, _ = camera.project(world)
    picture = (image - [box_x0, box_y0]) * [w / (box_x1 - box_x0), h / (box_y1 - box_y0)]
    # Pixel centres sit at +0.5 in both continuous frames; warpPerspective works on centre indices.
    texture_from_picture = cv2.getPerspectiveTransform(
        (picture - 0.5).astype(np.float32), (texture_corners - 0.5).astype(np.float32)
    )
    premultiplied = rgba.astype(np.float32) / 255.0
    premultiplied[..., :3] *= premultiplied[..., 3:4]
    warped = cv2.warpPerspective(
        premultiplied, texture_from_picture, (tw, th), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT
    )
    warped = np.clip(warped, 0.0, 1.0)
    alpha = warped[..., 3:4]
    color = np.where(alpha > 1e-4, warped[..., :3] / np.maximum(alpha, 1e-4), 0.0)
    out = np.concatenate([np.clip(color, 0.0, 1.0), alpha], axis=-1)
    return np.round(out * 255.0).astype(np.uint8)


def anchor_card(
    scene: Scene4D,
    placement: Placement,
    rgba: np.ndarray,
    facing: Facing = "fixed",
    rng: np.random.Generator | None = None,
    image: np.ndarray | None = None,
) -> tuple[Anchor, TexturedMesh]:
    """Stand a picture on the support so that, in the placement frame, it fills the box exactly.

    Args:
        scene: the reconstruction.
        placement: validated against the clip.
        rgba: (h, w, 4) uint8 straight-alpha picture of the object.
        facing: "fixed", or "camera" to keep the card turned toward each frame's camera.
        rng: for the support's RANSAC (default: seeded).
        image: (H, W, 3) uint8 placement frame (see ``anchor.find_support``), or None.

    Returns:
        The Anchor (``scale`` = the card's height in scene units, so the card is one object unit tall)
        and the card mesh (object frame: x right, y up from the contact, picture facing +Z).
    """
    if facing not in ("fixed", "camera"):
        raise InputError(f"card facing {facing!r} is unknown; use 'fixed' or 'camera'")
    rng = rng or np.random.default_rng(0)
    camera = scene.cameras[placement.frame]
    plane, n_samples, warnings = find_support(scene, placement, rng, image)
    contact = resting_contact(camera, plane, placement, rgba)
    facing_camera = upright_rotation(plane.normal, camera.center_world - contact, 0.0)
    corners = card_corners_on_plane(camera, placement, contact, facing_camera)
    x_min, y_min = corners.min(axis=0)
    x_max, y_max = corners.max(axis=0)
    height = float(y_max - y_min)
    if not np.isfinite(height) or height <= 0 or x_max <= x_min:
        raise PlacementError("the box cannot be lifted onto an upright card there; move or redraw the box")
    texture = projective_card_texture(rgba, camera, placement, contact, facing_camera, corners)
    vertices = np.array([[x_min, y_min, 0.0], [x_max, y_min, 0.0], [x_max, y_max, 0.0], [x_min, y_max, 0.0]]) / height
    faces = np.array([[0, 1, 2], [0, 2, 3]], dtype=np.int64)  # counter-clockwise seen from +Z (the front)
    uv = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])  # v up: the texture's top row is v = 1
    mesh = TexturedMesh(vertices, faces, uv=uv, texture=texture, is_card=True, facing=facing)
    rotation = rotation_about_axis(plane.normal, np.radians(placement.yaw_deg)) @ facing_camera
    pose = make_pose(height * rotation, contact)
    return Anchor(placement.frame, pose, height, rotation, contact, plane, n_samples, warnings), mesh
