"""A picture anchored as a projective card reproduces the box in the placement frame and stays a
rigid planar object in the other frames (the photo's own perspective is not applied twice)."""

import numpy as np
import pytest

from insertanywhere.conventions import Placement, make_pose
from insertanywhere.eval.masks import jaccard
from insertanywhere.place.anchor import upright_rotation
from insertanywhere.place.card import anchor_card, bottom_outline_pixels
from insertanywhere.render import render_object
from insertanywhere.render.mesh import card_mesh

from .conftest import HEIGHT, WIDTH, build_scene, orbit_cameras


def _picture() -> np.ndarray:
    """(96, 128, 4) uint8: a flat-bottomed figure with a thin diagonal pole (fails when sheared)."""
    rgba = np.zeros((96, 128, 4), np.uint8)
    rgba[..., :3] = (200, 120, 40)
    rgba[40:96, 10:70, 3] = 255  # body on the ground
    for row in range(0, 96):
        col = 80 + row // 3
        rgba[row, col : col + 6, 3] = 255  # a slanted pole down to the ground
    return rgba


def _masks(mesh, cameras, pose):
    return [render_object(mesh, camera, pose, WIDTH, HEIGHT).alpha >= 0.5 for camera in cameras]


def _true_card_view(cameras, contact, yaw=0.0):
    """The true card (facing camera 1, turned by yaw) and the user's picture of it: camera 1's view
    cropped to its box."""
    rotation = upright_rotation(np.array([0.0, 1.0, 0.0]), cameras[1].center_world - contact, yaw)
    truth_mesh = card_mesh(_picture())
    truth_pose = make_pose(0.8 * rotation, contact)
    seen = render_object(truth_mesh, cameras[1], truth_pose, WIDTH, HEIGHT)
    x0, y0, x1, y1 = seen.bbox
    rgba = np.concatenate([seen.color, seen.alpha[..., None]], axis=-1)[y0:y1, x0:x1]
    picture = np.round(np.clip(rgba, 0, 1) * 255).astype(np.uint8)
    return truth_mesh, truth_pose, picture, Placement(frame=1, box=(x0, y0, x1, y1))


def test_card_reproduces_the_box_and_moves_rigidly(intrinsics):
    cameras = orbit_cameras(intrinsics, 3, 30.0, distance=2.2, height=1.5)
    scene = build_scene(cameras, [np.eye(4)] * 3)
    contact = np.array([0.6, 0.0, 0.2])  # off the optical axis: the card's base looks tilted
    truth_mesh, truth_pose, picture, placement = _true_card_view(cameras, contact)
    anchor, mesh = anchor_card(scene, placement, picture)
    ours = _masks(mesh, cameras, anchor.world_from_object)
    truth = _masks(truth_mesh, cameras, truth_pose)
    # The thin pole is 1-2 px wide at this size: resampling costs a few % of J everywhere.
    assert [jaccard(a, b) for a, b in zip(ours, truth, strict=True)] > [0.9] * 3
    # The card's plane is the true one (the contact may slide along the card, which changes nothing).
    normal = truth_pose[:3, 2] / np.linalg.norm(truth_pose[:3, 2])
    assert abs(normal @ (anchor.contact_world - contact)) < 0.03
    assert np.allclose(anchor.support_plane.normal, [0, 1, 0], atol=1e-3)
    assert np.allclose(anchor.rotation[:, 1], [0, 1, 0], atol=1e-3)
    # The picture's lowest point stands on the support (not below it, not floating).
    alpha = mesh.texture[..., 3] >= 128
    lowest_row = np.flatnonzero(alpha.any(axis=1)).max() + 1
    y_min, y_max = mesh.vertices[:, 1].min(), mesh.vertices[:, 1].max()
    assert abs(y_max - (y_max - y_min) * lowest_row / alpha.shape[0]) < 0.02


def test_card_yaw_turns_about_the_contact(intrinsics):
    cameras = orbit_cameras(intrinsics, 3, 30.0, distance=2.2, height=1.5)
    scene = build_scene(cameras, [np.eye(4)] * 3)
    _, _, picture, placement = _true_card_view(cameras, np.array([0.0, 0.0, 0.0]))
    straight, _ = anchor_card(scene, placement, picture)
    turned, _ = anchor_card(scene, Placement(placement.frame, placement.box, yaw_deg=30.0), picture)
    assert np.allclose(turned.contact_world, straight.contact_world)
    cos = straight.rotation[:, 2] @ turned.rotation[:, 2]
    assert cos == pytest.approx(np.cos(np.radians(30.0)), abs=1e-6)
    assert np.allclose(turned.rotation[:, 1], straight.rotation[:, 1])


def test_bottom_outline_maps_into_the_box():
    placement = Placement(frame=0, box=(100.0, 40.0, 132.0, 64.0))
    outline = bottom_outline_pixels(_picture(), placement)
    assert outline[:, 1].max() == pytest.approx(64.0)
    assert outline[:, 0].min() > 100.0 and outline[:, 0].max() < 132.0
