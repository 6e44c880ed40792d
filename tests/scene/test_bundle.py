import numpy as np

from insertanywhere.scene import bundle
from insertanywhere.scene.bundle import Observations, bundle_adjust, params_to_poses, poses_to_params


def _problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    poses = params_to_poses(np.concatenate([rng.normal(0, 0.1, (5, 3)), rng.normal(0, 0.3, (5, 3))], 1))
    poses[0] = np.eye(4)
    points = rng.normal(0, 1, (40, 3)) + np.array([0.0, 0.0, 6.0])
    K = np.array([[300.0, 0, 160], [0, 300.0, 120], [0, 0, 1]])
    frame, point = (a.ravel() for a in np.meshgrid(np.arange(5), np.arange(40), indexing="ij"))
    xy, _ = bundle.project(poses, K, points, frame, point)
    return poses, points, K, Observations(frame, point, xy + rng.normal(0, 0.2, xy.shape))


def test_pose_params_round_trip():
    poses, *_ = _problem()
    np.testing.assert_allclose(params_to_poses(poses_to_params(poses)), poses, atol=1e-12)


def test_bundle_adjust_recovers_noisy_start():
    poses, points, K, observations = _problem()
    rng = np.random.default_rng(3)
    noisy = poses.copy()
    noisy[1:, :3, 3] += rng.normal(0, 0.03, (4, 3))
    start_error = np.linalg.norm(
        bundle.project(noisy, K, points, observations.frame, observations.point)[0] - observations.xy, axis=1
    )
    result = bundle_adjust(noisy, points + rng.normal(0, 0.03, points.shape), K, observations, max_nfev=60)
    assert np.median(start_error) > 1.0
    assert np.median(result.residuals_px) < 0.4  # noise is 0.2 px per axis
    np.testing.assert_allclose(result.cam_from_world[0], np.eye(4))  # gauge: frame 0 fixed


def test_bundle_adjust_self_calibrates_focal():
    poses, points, K, observations = _problem(1)
    wrong = K.copy()
    wrong[0, 0] = wrong[1, 1] = 330.0
    result = bundle_adjust(poses, points, wrong, observations, optimize_focal=True, loss="linear", max_nfev=80)
    assert abs(result.K[0, 0] - 300.0) < 6.0


def test_colmap_bundle_adjust_recovers_noisy_start():
    poses, points, K, observations = _problem()
    rng = np.random.default_rng(3)
    noisy = poses.copy()
    noisy[1:, :3, 3] += rng.normal(0, 0.03, (4, 3))
    start_points = points + rng.normal(0, 0.03, points.shape)
    start_error = np.linalg.norm(
        bundle.project(noisy, K, start_points, observations.frame, observations.point)[0] - observations.xy, axis=1
    )
    result = bundle.colmap_bundle_adjust(noisy, start_points, K, observations, (320, 240), max_iterations=50)
    assert np.median(start_error) > 1.0
    assert np.median(result.residuals_px) < 0.4  # noise is 0.2 px per axis
    np.testing.assert_allclose(result.cam_from_world[0], np.eye(4), atol=1e-12)  # gauge: frame 0 fixed
    np.testing.assert_allclose(result.K, K)  # focal not refined unless asked


def test_colmap_bundle_adjust_self_calibrates_focal_and_ignores_an_outlier():
    poses, points, K, observations = _problem(1)
    observations.xy[5] += 40.0  # one gross outlier: the Cauchy loss must not let it pull the solution
    wrong = K.copy()
    wrong[0, 0] = wrong[1, 1] = 330.0
    result = bundle.colmap_bundle_adjust(
        poses, points, wrong, observations, (320, 240), optimize_focal=True, max_iterations=100
    )
    assert abs(result.K[0, 0] - 300.0) < 6.0
    assert result.residuals_px[5] > 20.0
    assert np.median(result.residuals_px) < 0.4
