"""Typed containers and pose helpers: round trips, hand-computed cases, the pinned JSON schemas."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest

from insertanywhere.conventions import (
    OBJECT_UP_AXIS,
    Camera,
    ClipInfo,
    ObjectTrack,
    Placement,
    PlacementError,
    SceneMeta,
    TrackFrame,
    intrinsics_from_fov,
    invert_pose,
    make_pose,
    pixel_centers,
    transform_points,
)
from insertanywhere.errors import InputError, UserError


def _rotation_z(degrees: float) -> np.ndarray:
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _camera() -> Camera:
    K = intrinsics_from_fov(640, 480, 90.0)
    return Camera(K, make_pose(_rotation_z(10.0), [0.1, -0.2, 2.0]))


# ----------------------------------------------------------------------------- poses and cameras


def test_invert_pose_rigid_and_similarity() -> None:
    a_from_b = make_pose(_rotation_z(30.0), [1.0, 2.0, 3.0])
    np.testing.assert_allclose(invert_pose(a_from_b) @ a_from_b, np.eye(4), atol=1e-12)
    similarity = a_from_b.copy()
    similarity[:3, :3] *= 2.5  # object units to scene units
    np.testing.assert_allclose(invert_pose(similarity) @ similarity, np.eye(4), atol=1e-12)


def test_transform_points_hand_case() -> None:
    a_from_b = make_pose(_rotation_z(90.0), [1.0, 0.0, 0.0])
    np.testing.assert_allclose(transform_points(a_from_b, [[1.0, 0.0, 0.0]]), [[1.0, 1.0, 0.0]], atol=1e-12)


def test_intrinsics_and_pixel_centres_follow_the_corner_origin() -> None:
    K = intrinsics_from_fov(640, 480, 90.0)
    np.testing.assert_allclose(K, [[320.0, 0, 320.0], [0, 320.0, 240.0], [0, 0, 1]])
    centres = pixel_centers(3, 2)
    assert centres.shape == (2, 3, 2)
    np.testing.assert_allclose(centres[0, 0], [0.5, 0.5])
    np.testing.assert_allclose(centres[1, 2], [2.5, 1.5])


def test_camera_projects_the_optical_axis_to_the_principal_point() -> None:
    camera = Camera(intrinsics_from_fov(640, 480, 90.0), np.eye(4))
    pixels, depth = camera.project(np.array([[0.0, 0.0, 4.0], [1.0, 0.5, 2.0]]))
    np.testing.assert_allclose(pixels[0], [320.0, 240.0])
    np.testing.assert_allclose(pixels[1], [320.0 + 320.0 * 0.5, 240.0 + 320.0 * 0.25])  # x right, y down
    np.testing.assert_allclose(depth, [4.0, 2.0])


def test_camera_project_unproject_round_trip() -> None:
    camera = _camera()
    rng = np.random.default_rng(0)
    points = rng.uniform(-1, 1, (50, 3)) + camera.center_world + camera.world_from_cam[:3, 2] * 3.0
    pixels, depth = camera.project(points)
    np.testing.assert_allclose(camera.unproject(pixels, depth), points, atol=1e-9)
    np.testing.assert_allclose(camera.world_from_cam @ camera.cam_from_world, np.eye(4), atol=1e-12)


def test_camera_dict_round_trip_and_errors() -> None:
    camera = _camera()
    back = Camera.from_dict(json.loads(json.dumps(camera.to_dict())))
    np.testing.assert_array_equal(back.K, camera.K)
    np.testing.assert_array_equal(back.cam_from_world, camera.cam_from_world)
    with pytest.raises(InputError, match="3x3"):
        Camera.from_dict({"K": [[1, 0], [0, 1]], "cam_from_world": np.eye(4).tolist()})
    with pytest.raises(InputError, match="cam_from_world"):
        Camera.from_dict({"K": np.eye(3).tolist()})
    with pytest.raises(InputError, match="non-finite"):
        Camera.from_dict({"K": np.eye(3).tolist(), "cam_from_world": np.full((4, 4), np.nan).tolist()})


def test_object_up_axis_is_y() -> None:
    assert OBJECT_UP_AXIS == 1


# ----------------------------------------------------------------------------- clip info


def test_clip_info_round_trip_keeps_exact_fps() -> None:
    info = ClipInfo(1280, 720, Fraction(30000, 1001), 100, 90)
    data = json.loads(json.dumps(info.to_dict()))
    assert data["fps"] == pytest.approx(29.97002997) and data["fps_fraction"] == [30000, 1001]
    assert ClipInfo.from_dict(data) == info


def test_clip_info_from_float_fps_snaps_ntsc() -> None:
    assert ClipInfo.from_dict({"width": 4, "height": 4, "fps": 29.97, "n_frames": 1}).fps == Fraction(30000, 1001)
    assert ClipInfo.from_dict({"width": 4, "height": 4, "fps": 25.0, "n_frames": 1}).fps == Fraction(25)
    with pytest.raises(InputError, match="n_frames"):
        ClipInfo.from_dict({"width": 4, "height": 4, "fps": 25.0})


# ----------------------------------------------------------------------------- placement


def test_placement_round_trip_and_contact_point() -> None:
    placement = Placement.from_dict({"frame": 3, "box": [10, 20, 50, 100], "yaw_deg": 15})
    assert placement.validate(640, 480, 10) is placement
    assert Placement.from_dict(json.loads(json.dumps(placement.to_dict()))) == placement
    np.testing.assert_allclose(placement.contact_pixel, [30.0, 100.0])
    assert placement.box_size == (40.0, 80.0)
    assert Placement.from_dict({"box": [0, 0, 640, 480]}).validate(640, 480, 1).frame == 0  # box may fill the frame


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"frame": 10, "box": [10, 20, 50, 100]}, "out of range"),
        ({"frame": -1, "box": [10, 20, 50, 100]}, "out of range"),
        ({"box": [50, 20, 10, 100]}, "empty"),
        ({"box": [10, 20, 10, 100]}, "empty"),
        ({"box": [-5, 20, 50, 100]}, "inside"),
        ({"box": [10, 20, 50, 481]}, "inside"),
        ({"box": [10, 20, 650, 100]}, "inside"),
        ({"box": [10, 20, float("nan"), 100]}, "non-finite"),
        ({"box": [10, 20, 50, 100], "yaw_deg": float("inf")}, "non-finite"),
        ({"box": [10, 20, 11, 100]}, "smaller than 2"),
    ],
)
def test_placement_validation(data: dict, message: str) -> None:
    with pytest.raises(PlacementError, match=message) as err:
        Placement.from_dict(data).validate(640, 480, 10)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([1, 2, 3, 4], "JSON object"),
        ({"frame": 0}, "box"),
        ({"box": [1, 2, 3]}, "four numbers"),
        ({"box": [1, 2, "x", 4]}, "not a number"),
        ({"frame": 1.5, "box": [1, 2, 3, 4]}, "whole number"),
    ],
)
def test_placement_parse_errors(data: object, message: str) -> None:
    with pytest.raises(PlacementError, match=message):
        Placement.from_dict(data)  # type: ignore[arg-type]


def test_placement_error_is_a_user_error() -> None:
    assert issubclass(PlacementError, UserError) and issubclass(PlacementError, ValueError)


# ----------------------------------------------------------------------------- scene meta, tracks


def test_scene_meta_pinned_keys_and_extras() -> None:
    meta = SceneMeta(832, 480, 30.0, 49, "metric", "rotation", {"flow": "dis"}, {"seconds": 1.5})
    data = json.loads(json.dumps(meta.to_dict()))
    assert set(data) == {"width", "height", "fps", "n_frames", "units", "camera_model", "backends", "seconds"}
    assert SceneMeta.from_dict(data) == meta


def test_scene_meta_errors() -> None:
    with pytest.raises(InputError, match="n_frames"):
        SceneMeta.from_dict({"width": 1, "height": 1, "fps": 30})
    with pytest.raises(InputError, match="units"):
        SceneMeta.from_dict({"width": 1, "height": 1, "fps": 30, "n_frames": 1, "units": "feet"})
    with pytest.raises(InputError, match="camera_model"):
        SceneMeta.from_dict({"width": 1, "height": 1, "fps": 30, "n_frames": 1, "camera_model": "drone"})


def _track() -> ObjectTrack:
    camera = _camera()
    world_from_object = make_pose(np.eye(3) * 0.3, [0.0, 1.0, 4.0])
    frames = [TrackFrame(0, camera, world_from_object, 1.0), TrackFrame(1, camera, world_from_object, 0.25)]
    return ObjectTrack(832, 480, frames)


def test_track_json_schema_is_exactly_the_pinned_one() -> None:
    data = json.loads(json.dumps(_track().to_dict()))
    assert list(data) == ["width", "height", "frames"]
    frame = data["frames"][1]
    assert set(frame) == {"index", "K", "cam_from_world", "world_from_object", "visible_fraction"}
    assert frame["index"] == 1 and frame["visible_fraction"] == 0.25
    assert np.array(frame["K"]).shape == (3, 3)
    assert np.array(frame["cam_from_world"]).shape == (4, 4) and frame["cam_from_world"][3] == [0, 0, 0, 1]
    assert np.array(frame["world_from_object"]).shape == (4, 4)


def test_track_round_trip() -> None:
    track = _track()
    back = ObjectTrack.from_dict(json.loads(json.dumps(track.to_dict())))
    assert (back.width, back.height, len(back.frames)) == (832, 480, 2)
    for original, loaded in zip(track.frames, back.frames, strict=True):
        assert loaded.index == original.index and loaded.visible_fraction == original.visible_fraction
        np.testing.assert_array_equal(loaded.world_from_object, original.world_from_object)
        np.testing.assert_array_equal(loaded.camera.cam_from_world, original.camera.cam_from_world)


def test_cameras_json_has_no_object_keys() -> None:
    cameras = [_camera(), _camera()]
    data = json.loads(json.dumps(ObjectTrack.from_cameras(832, 480, cameras).to_dict()))
    assert [set(f) for f in data["frames"]] == [{"index", "K", "cam_from_world"}] * 2
    back = ObjectTrack.from_dict(data)
    assert all(f.world_from_object is None for f in back.frames) and len(back.cameras) == 2


def test_track_extra_keys_survive_and_missing_keys_fail() -> None:
    data = _track().to_dict()
    data["object"] = "duck"
    assert ObjectTrack.from_dict(data).to_dict()["object"] == "duck"
    with pytest.raises(InputError, match="frames"):
        ObjectTrack.from_dict({"width": 1, "height": 1})
    with pytest.raises(InputError, match="cam_from_world"):
        TrackFrame.from_dict({"index": 0, "K": np.eye(3).tolist()})
