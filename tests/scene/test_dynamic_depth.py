import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from insertanywhere.scene.depth import align_prior, densify_frame, fit_planes_ransac, guided_filter, prior_to_depth
from insertanywhere.scene.dynamic import ResidualConfig, hysteresis_masks, rigid_flow

K = np.array([[100.0, 0, 40], [0, 100.0, 30], [0, 0, 1]])


def test_rigid_flow_identity_and_rotation_homography():
    depth = np.full((60, 80), 3.0, np.float32)
    np.testing.assert_allclose(rigid_flow(depth, K, np.eye(4), np.eye(4)), 0.0, atol=1e-4)
    pose_b = np.eye(4)
    pose_b[:3, :3] = Rotation.from_euler("y", 2.0, degrees=True).as_matrix()
    flow_near = rigid_flow(depth, K, np.eye(4), pose_b)
    flow_far = rigid_flow(np.zeros_like(depth), K, np.eye(4), pose_b)  # unknown depth = plane at infinity
    np.testing.assert_allclose(flow_near, flow_far, atol=1e-3)  # rotation: flow independent of depth
    H = K @ pose_b[:3, :3] @ np.linalg.inv(K)
    centre = np.array([[[40.5, 30.5]]])
    expected = cv2.perspectiveTransform(centre, H)[0, 0] - centre[0, 0]
    np.testing.assert_allclose(flow_near[30, 40], expected, atol=1e-3)


def test_rigid_flow_translation_scales_with_inverse_depth():
    pose_b = np.eye(4)
    pose_b[0, 3] = -0.1  # camera moves +x: static points move -x in the image by f * 0.1 / z
    flow = rigid_flow(np.full((60, 80), 2.0, np.float32), K, np.eye(4), pose_b)
    np.testing.assert_allclose(flow[..., 0], -5.0, atol=1e-4)


def test_hysteresis_grows_weak_evidence_connected_in_time():
    scores = np.zeros((3, 40, 40), np.float32)
    scores[0, 10:20, 10:20] = 5.0  # strong in frame 0
    scores[1, 10:20, 10:20] = 2.0  # weak but connected in time
    scores[2, 30:32, 30:32] = 2.0  # weak, isolated
    masks = hysteresis_masks(scores, ResidualConfig(min_area_fraction=0.0))
    assert masks[0, 15, 15] and masks[1, 15, 15] and not masks[2].any()


def test_guided_filter_keeps_constants_and_edges():
    guide = np.zeros((40, 40), np.float32)
    guide[:, 20:] = 1.0
    np.testing.assert_allclose(guided_filter(guide, np.full_like(guide, 2.0), 4, 1e-3), 2.0, atol=1e-4)
    filtered = guided_filter(guide, guide * 3.0, 4, 1e-4)
    assert abs(filtered[20, 5]) < 0.05 and abs(filtered[20, 35] - 3.0) < 0.05


def test_densify_slanted_plane_is_exact():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, [80, 60], (60, 2))
    # A floor y = 1 seen by the camera: z = f_y / (y_pixel - c_y) is not affine in the pixels, but 1/z is.
    plane = np.array([0.0, 1.0, 0.0, -1.0])  # n.X + d = 0 with n = +y, d = -1
    xy[:, 1] = rng.uniform(35, 60, 60)  # below the horizon (c_y = 30)
    z = K[1, 1] / (xy[:, 1] - K[1, 2])
    gray = np.zeros((60, 80), np.uint8)
    depth, confidence = densify_frame(xy, z, np.zeros(60, int), [plane], K, gray, guide_radius=1, guide_eps=1e-6)
    rows = np.arange(40, 55) + 0.5
    expected = K[1, 1] / (rows - K[1, 2])
    np.testing.assert_allclose(depth[40:55, 20:60], np.repeat(expected[:, None], 40, axis=1), rtol=2e-2)
    assert confidence.max() <= 1.0 and confidence.min() >= 0.0


def test_fit_planes_finds_floor():
    rng = np.random.default_rng(1)
    floor = np.stack([rng.uniform(-1, 1, 300), np.full(300, 0.5), rng.uniform(1, 3, 300)], 1)
    clutter = rng.uniform(-1, 1, (60, 3)) + np.array([0.0, 0.0, 2.0])
    planes = fit_planes_ransac(np.concatenate([floor, clutter]), threshold=0.01)
    plane, inliers = planes[0]
    assert abs(abs(plane[1]) - 1.0) < 1e-3 and len(inliers) >= 300


def test_align_prior_recovers_scale_and_shift():
    rng = np.random.default_rng(2)
    z_true = rng.uniform(1, 5, (30, 40)).astype(np.float32)
    disparity = (1.0 / z_true - 0.05) / 2.0  # prior = (1/z - b) / s with s = 2, b = 0.05
    xy = rng.uniform(0, [40, 30], (200, 2))
    z_points = z_true[xy[:, 1].astype(int), xy[:, 0].astype(int)]
    scale, shift = align_prior(disparity, "disparity", z_points, xy)
    assert abs(scale - 2.0) < 1e-3 and abs(shift - 0.05) < 1e-4
    np.testing.assert_allclose(prior_to_depth(disparity, "disparity", scale, shift), z_true, rtol=1e-3)
