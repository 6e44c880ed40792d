import numpy as np
import pytest

from insertanywhere.scene.cameras import CameraConfig, estimate_cameras, gric, select_motion_model
from insertanywhere.scene.metrics import ate_percent, relative_rotation_error_deg

from .helpers import K, look_poses, project_tracks, scene_points


def test_gric_prefers_lower_residuals():
    small = np.full(100, 0.1)
    assert gric(small, 0.5, 2, 8) < gric(small, 0.5, 3, 7)  # equal fit: the simpler homography wins
    assert gric(np.full(100, 9.0), 0.5, 2, 8) > gric(small, 0.5, 3, 7)


@pytest.mark.parametrize("kind", ["static", "rotation", "general"])
def test_motion_model_selection(kind):
    tracks = project_tracks(look_poses(20, kind), scene_points(400))
    model, reason = select_motion_model(tracks, CameraConfig())
    assert model == kind, reason
    assert "reason" in reason


def test_rotation_poses():
    poses = look_poses(15, "rotation")
    tracks = project_tracks(poses, scene_points(400))
    estimate = estimate_cameras(tracks, K, K_is_known=True)
    assert estimate.camera_model == "rotation"
    assert relative_rotation_error_deg(estimate.cam_from_world, poses) < 0.02  # true steps are 1.08 degrees
    np.testing.assert_allclose(estimate.cam_from_world[:, :3, 3], 0.0)
    np.testing.assert_allclose(estimate.K, K)  # a given K stays fixed


def test_general_poses_match_truth():
    poses = look_poses(25, "general")
    tracks = project_tracks(poses, scene_points(600))
    estimate = estimate_cameras(tracks, K, K_is_known=True)
    assert estimate.camera_model == "general"
    np.testing.assert_allclose(estimate.cam_from_world[0], np.eye(4), atol=1e-9)
    assert ate_percent(estimate.cam_from_world, poses)["ate_percent"] < 1.0
    assert len(estimate.points_world) > 300
