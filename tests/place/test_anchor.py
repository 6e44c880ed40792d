"""Anchor: the placement box lifts to the pose that drew it."""

import numpy as np
import pytest

from insertanywhere.conventions import Placement, PlacementError, make_pose
from insertanywhere.place.anchor import anchor_object, projected_box, upright_rotation

from .conftest import CARD, build_scene, orbit_cameras


def _card_box(camera, pose):
    x0, y0, x1, y1 = projected_box(camera, pose, CARD)
    return (x0, y0, x1, y1)


@pytest.mark.parametrize("yaw", [0.0, 30.0])
def test_anchor_recovers_contact_scale_and_up(intrinsics, yaw):
    cameras = orbit_cameras(intrinsics, 3, 20.0)
    scene = build_scene(cameras, [np.eye(4)] * 3)
    contact = np.array([0.2, 0.0, 0.3])
    rotation = upright_rotation(np.array([0, 1.0, 0]), cameras[1].center_world - contact, yaw)
    truth = make_pose(0.5 * rotation, contact)
    placement = Placement(frame=1, box=_card_box(cameras[1], truth), yaw_deg=yaw)
    anchor = anchor_object(scene, placement, CARD)
    assert np.allclose(anchor.support_plane.normal, [0, 1, 0], atol=1e-4)
    assert np.linalg.norm(anchor.contact_world - contact) < 2e-3
    assert abs(anchor.scale - 0.5) < 2e-3
    assert np.allclose(anchor.world_from_object, truth, atol=3e-3)
    box = _card_box(cameras[1], anchor.world_from_object)
    assert np.allclose(box, placement.box, atol=0.05)


def test_anchor_refuses_a_box_on_the_sky(intrinsics):
    cameras = orbit_cameras(intrinsics, 2, 0.0)
    scene = build_scene(cameras, [np.eye(4)] * 2)
    scene.depth[:, :40] = 0.0  # nothing above the horizon band
    with pytest.raises(PlacementError, match="no scene surface"):
        anchor_object(scene, Placement(frame=0, box=(60, 2, 80, 20)), CARD)


def test_a_plane_seen_from_below_is_no_support(intrinsics):
    from insertanywhere.geometry.planes import Plane
    from insertanywhere.place.anchor import _upright_weight

    camera = orbit_cameras(intrinsics, 1, 0.0)[0]  # above the floor y = 0, looking down at the origin
    floor = Plane.from_point_normal(np.zeros(3), np.array([0.0, 1.0, 0.0]))
    assert _upright_weight(floor, camera) == 1.0
    assert _upright_weight(Plane.from_point_normal(np.zeros(3), np.array([0.0, -1.0, 0.0])), camera) == 1.0
    # The underside of a shelf above the camera: its camera-facing side looks down the image.
    shelf = Plane.from_point_normal(camera.center_world + np.array([0.0, 0.5, 0.0]), np.array([0.0, 1.0, 0.0]))
    assert _upright_weight(shelf, camera) == 0.0
