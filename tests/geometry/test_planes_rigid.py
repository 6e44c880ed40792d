"""Pure geometry against hand-computed cases and round trips."""

import numpy as np
from scipy.spatial.transform import Rotation

from insertanywhere.conventions import invert_pose, make_pose, transform_points
from insertanywhere.geometry.planes import Plane, fit_plane_ransac, intersect_ray_plane
from insertanywhere.geometry.rigid import kabsch_ransac, rotation_about_axis, smooth_poses, umeyama


def test_plane_from_point_normal_and_distance():
    plane = Plane.from_point_normal(np.array([0.0, 0.0, 2.0]), np.array([0.0, 0.0, 3.0]))
    assert np.allclose(plane.normal, [0, 0, 1])
    assert np.isclose(plane.offset, -2.0)
    assert np.allclose(plane.signed_distance(np.array([[1.0, 5.0, 3.5], [0, 0, 0]])), [1.5, -2.0])


def test_plane_transform_round_trip():
    plane = Plane.from_point_normal(np.array([0.3, -1.0, 2.0]), np.array([0.2, -1.0, 0.1]))
    pose = make_pose(Rotation.from_rotvec([0.1, 0.4, -0.2]).as_matrix(), np.array([1.0, 2.0, -0.5]))
    back = plane.transformed(pose).transformed(invert_pose(pose))
    assert np.allclose(back.normal, plane.normal) and np.isclose(back.offset, plane.offset)
    point = plane.point()
    assert abs(plane.transformed(pose).signed_distance(transform_points(pose, point[None]))[0]) < 1e-12


def test_ransac_plane_ignores_outliers():
    rng = np.random.default_rng(0)
    xy = rng.uniform(-1, 1, size=(300, 2))
    floor = np.column_stack([xy, 0.01 * rng.standard_normal(300)])
    outliers = rng.uniform(-1, 1, size=(100, 3)) + np.array([0, 0, 2])
    plane, inliers = fit_plane_ransac(np.vstack([floor, outliers]), 0.05, rng)
    assert abs(abs(plane.normal[2]) - 1) < 1e-3
    assert inliers[:300].mean() > 0.95 and inliers[300:].mean() < 0.05


def test_ray_plane_intersection():
    plane = Plane.from_point_normal(np.array([0, 0, 5.0]), np.array([0, 0, 1.0]))
    hit = intersect_ray_plane(np.zeros(3), np.array([1.0, 0, 1.0]), plane)
    assert np.allclose(hit, [5, 0, 5])
    assert intersect_ray_plane(np.zeros(3), np.array([0, 0, -1.0]), plane) is None
    assert intersect_ray_plane(np.zeros(3), np.array([1.0, 0, 0]), plane) is None


def test_umeyama_recovers_similarity():
    rng = np.random.default_rng(1)
    source = rng.standard_normal((50, 3))
    rotation = Rotation.from_rotvec([0.3, -0.2, 0.5]).as_matrix()
    target = 2.5 * source @ rotation.T + [1, 2, 3]
    transform = umeyama(source, target)
    assert np.allclose(transform[:3, :3], 2.5 * rotation, atol=1e-9)
    assert np.allclose(transform[:3, 3], [1, 2, 3], atol=1e-9)
    rigid = umeyama(source, source @ rotation.T, with_scale=False)
    assert np.allclose(rigid[:3, :3], rotation, atol=1e-9)


def test_kabsch_ransac_rejects_outliers():
    rng = np.random.default_rng(2)
    source = rng.standard_normal((80, 3))
    pose = make_pose(rotation_about_axis(np.array([0, 1.0, 0]), 0.4), np.array([0.5, 0, 0]))
    target = transform_points(pose, source)
    target[:15] += rng.uniform(1, 3, size=(15, 3))
    found, inliers = kabsch_ransac(source, target, 0.05, rng)
    assert np.allclose(found, pose, atol=1e-9)
    assert not inliers[:15].any() and inliers[15:].all()


def test_rotation_about_axis_is_right_handed():
    rotation = rotation_about_axis(np.array([0, 0, 1.0]), np.pi / 2)
    assert np.allclose(rotation @ [1, 0, 0], [0, 1, 0])


def test_smooth_poses_has_no_lag_on_linear_motion():
    t = np.arange(20)
    poses = np.tile(np.eye(4), (20, 1, 1))
    poses[:, 0, 3] = 0.1 * t
    angles = 0.02 * t
    poses[:, :3, :3] = Rotation.from_rotvec(np.outer(angles, [0, 1, 0])).as_matrix()
    smoothed = smooth_poses(poses, 2.0)
    # A constant-velocity motion is unchanged everywhere, ends included (no lag).
    assert np.allclose(smoothed, poses, atol=1e-6)
    noisy = poses.copy()
    noisy[:, 0, 3] += np.random.default_rng(0).normal(0, 0.05, 20)
    assert (
        np.abs(smooth_poses(noisy, 2.0)[6:14, 0, 3] - poses[6:14, 0, 3]).mean()
        < np.abs(noisy[6:14, 0, 3] - poses[6:14, 0, 3]).mean()
    )


def test_keep_upright_keeps_the_twist_and_the_pivot():
    from insertanywhere.geometry.rigid import keep_upright

    up = np.array([0.0, -1.0, 0.0])
    pivot = np.array([0.3, 1.0, 4.0])
    yaw = Rotation.from_rotvec(up * np.radians(30)).as_matrix()
    tilt = Rotation.from_rotvec(np.array([1.0, 0.0, 0.0]) * np.radians(8)).as_matrix()
    motion = make_pose(tilt @ yaw, np.array([0.2, 0.05, -0.1]))
    upright = keep_upright(motion[None], up, pivot)[0]
    np.testing.assert_allclose(upright[:3, :3] @ up, up, atol=1e-9)  # the normal stays put
    np.testing.assert_allclose(transform_points(upright, pivot[None]), transform_points(motion, pivot[None]))
    turned = upright[:3, :3] @ np.array([1.0, 0.0, 0.0])
    assert abs(abs(np.degrees(np.arctan2(turned[2], turned[0]))) - 30) < 1.0  # the 30-degree turn survives the tilt
    pure_yaw = make_pose(yaw, np.array([0.1, 0.0, 0.2]))
    np.testing.assert_allclose(keep_upright(pure_yaw[None], up, pivot)[0], pure_yaw, atol=1e-9)
