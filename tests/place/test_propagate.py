"""Scene-flow propagation on analytic scenes: a tray sliding and turning on a floor."""

import numpy as np
import pytest

from insertanywhere.conventions import Placement, make_pose, transform_points
from insertanywhere.place.anchor import anchor_object, projected_box, upright_rotation
from insertanywhere.place.propagate import propagate

from .conftest import CARD, build_scene, orbit_cameras, tray_motion


def _setup(intrinsics, count, orbit_deg, speed, turn_deg):
    cameras = orbit_cameras(intrinsics, count, orbit_deg)
    motions = [tray_motion(t, speed, turn_deg) for t in range(count)]
    scene = build_scene(cameras, motions)
    contact = np.array([0.0, 0.0, 0.0])
    rotation = upright_rotation(np.array([0, 1.0, 0]), cameras[0].center_world - contact, 0.0)
    truth0 = make_pose(0.4 * rotation, contact)
    placement = Placement(frame=0, box=projected_box(cameras[0], truth0, CARD))
    anchor = anchor_object(scene, placement, CARD)
    return scene, motions, truth0, anchor


@pytest.mark.parametrize("orbit_deg", [0.0, 20.0])
def test_moving_tray_carries_the_object(intrinsics, orbit_deg):
    scene, motions, truth0, anchor = _setup(intrinsics, 12, orbit_deg, speed=0.03, turn_deg=2.0)
    result = propagate(scene, anchor, object_radius=0.2)
    assert result.support_moves
    for t in range(12):
        truth = motions[t] @ truth0
        contact_error = np.linalg.norm(result.world_from_object[t][:3, 3] - truth[:3, 3])
        assert contact_error < 0.01, (t, contact_error)
        corners_truth, _ = scene.cameras[t].project(transform_points(truth, CARD))
        corners, _ = scene.cameras[t].project(transform_points(result.world_from_object[t], CARD))
        assert np.abs(corners - corners_truth).max() < 0.6, t


def test_static_support_keeps_the_object_fixed(intrinsics):
    scene, _, _truth0, anchor = _setup(intrinsics, 10, 25.0, speed=0.0, turn_deg=0.0)
    result = propagate(scene, anchor, object_radius=0.2)
    assert not result.support_moves
    assert np.allclose(result.world_from_object, anchor.world_from_object)


def test_camera_only_baseline_ignores_the_tray(intrinsics):
    scene, _motions, _, anchor = _setup(intrinsics, 8, 0.0, speed=0.04, turn_deg=0.0)
    result = propagate(scene, anchor, object_radius=0.2, mode="camera-only")
    assert not result.support_moves
    assert np.allclose(result.world_from_object[-1], anchor.world_from_object)


def test_support_sampling_reads_any_dtype_without_casting_the_frame():
    """``_sample`` is bilinear in the pixel-corner convention, on float16 flows and bool masks alike."""
    from insertanywhere.place.propagate import _sample

    ramp = np.add.outer(np.arange(6.0), 10.0 * np.arange(8.0))  # value = row + 10 col
    pixels = np.array([[0.5, 0.5], [3.0, 2.0], [7.5, 5.5], [100.0, -4.0], [np.nan, 1.0]])
    for field in (ramp.astype(np.float32), ramp.astype(np.float16), np.dstack([ramp, -ramp]).astype(np.float16)):
        got = _sample(field, pixels)
        assert got.dtype == np.float32 and got.shape == (5, 1 if field.ndim == 2 else 2)
        np.testing.assert_allclose(got[:4, 0], [0.0, 1.5 + 25.0, 5.0 + 70.0, 0.0 + 70.0], atol=0.1)
        assert np.isnan(got[4]).all()
    mask = np.zeros((6, 8), bool)
    mask[:, 4:] = True
    np.testing.assert_allclose(_sample(mask, np.array([[4.0, 3.0], [6.0, 3.0], [2.0, 3.0]]))[:, 0], [0.5, 1.0, 0.0])
