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


def test_ba_track_selection_keeps_every_frame_and_the_budget():
    from insertanywhere.scene.cameras import select_ba_tracks
    from insertanywhere.scene.tracks import Tracks

    rng = np.random.default_rng(0)
    xy = rng.normal(size=(20, 500, 2)).astype(np.float32)
    visible = rng.random((20, 500)) < 0.3
    visible[19] = False
    visible[19, :40] = True  # the last frame is seen only by 40 short, low-quality tracks
    xy[~visible] = np.nan
    quality = rng.random(500).astype(np.float32)
    quality[:40] = 0.01
    tracks = Tracks(xy, quality, np.zeros(500, np.float32))
    for budget in (200, 400):
        chosen = select_ba_tracks(tracks, np.arange(500), np.arange(20), budget)
        assert len(chosen) <= budget
        assert len(chosen) > 0.8 * budget  # the budget is used, not a fixed per-frame quota
        assert tracks.visible[19, chosen].sum() >= 30  # the starved frame keeps support
    assert len(select_ba_tracks(tracks, np.arange(100), np.arange(20), 400)) == 100


def test_rotation_survives_a_mover_that_wins_one_pair():
    """A coherent mover (300 tracks) fills the view while most background tracks are occluded for one frame
    pair: that pair's RANSAC locks onto the mover; the rotation must still follow the background."""
    from insertanywhere.scene.tracks import Tracks

    poses = look_poses(20, "rotation")
    background = project_tracks(poses, scene_points(400))
    xy = background.xy.copy()
    occluded = np.arange(400) >= 60
    xy[10, occluded] = np.nan  # frames 9 -> 10: only 60 background tracks remain
    rng = np.random.default_rng(5)
    start = rng.uniform([60, 60], [260, 180], (300, 2))
    mover = start[None] + np.arange(20)[:, None, None] * np.array([9.0, 2.0])  # 9 px / frame to the right
    mover = mover + rng.normal(0, 0.1, mover.shape)
    inside = (mover[..., 0] >= 0) & (mover[..., 0] < 320) & (mover[..., 1] >= 0) & (mover[..., 1] < 240)
    mover[~inside] = np.nan
    tracks = Tracks(
        np.concatenate([xy, mover.astype(np.float32)], axis=1), np.ones(700, np.float32), np.zeros(700, np.float32)
    )
    from insertanywhere.scene.cameras import estimate_rotation

    estimate, _ = estimate_rotation(tracks, K, optimize_focal=False, config=CameraConfig())
    assert relative_rotation_error_deg(estimate, poses) < 0.05  # true steps are 1.08 degrees
    # The initial chain itself (adjustment nearly off) must not take the mover's motion for that pair:
    # fitting all tracks gave 0.11-0.17 degrees here.
    chain, _ = estimate_rotation(
        tracks, K, optimize_focal=False, config=CameraConfig(rotation_ba_max_nfev=1, rotation_coarse_nfev=1)
    )
    assert relative_rotation_error_deg(chain, poses) < 0.03


def test_translation_in_front_of_a_plane_is_not_a_rotation():
    """A homography explains a camera sliding over a floor (two-view GRIC prefers H), but no rotation does.

    (A wall facing the camera would not do: sliding past it is a uniform image shift, which a pan with a long
    lens makes too.)"""
    rng = np.random.default_rng(3)
    floor = np.stack([rng.uniform(-3, 3, 500), np.full(500, 1.0), rng.uniform(2, 8, 500)], 1)
    poses = np.tile(np.eye(4), (30, 1, 1))
    poses[:, 0, 3] = -0.01 * np.arange(30)  # 0.29 units sideways over a floor 2-8 units away
    model, reason = select_motion_model(project_tracks(poses, floor), CameraConfig(), K=K)
    assert model == "general", reason
    assert reason["pairs_for_general"] >= 0.34 * reason["n_pairs"]


def test_lens_distortion_does_not_make_a_pan_translate():
    """A real pan's tracks carry radial distortion: both fits degrade alike, so it stays a rotation."""
    poses = look_poses(30, "rotation")
    tracks = project_tracks(poses, scene_points(600))
    centred = (tracks.xy - K[:2, 2]) / K[0, 0]
    r2 = np.sum(centred**2, axis=-1, keepdims=True)
    tracks.xy[:] = (centred * (1.0 - 0.4 * r2)) * K[0, 0] + K[:2, 2]  # strong barrel distortion (40 px at the corners)
    model, reason = select_motion_model(tracks, CameraConfig(), K=K)
    assert model == "rotation", reason
    # Distortion spoils the rotation fit a little more than the homography's: a bare "worse than H" rule fails.
    naive, _ = select_motion_model(tracks, CameraConfig(rotation_excess_ratio=1.2, rotation_excess_width=0.0), K=K)
    assert naive == "general"


def test_register_rejects_a_pose_that_explains_few_points(monkeypatch):
    """A PnP-RANSAC hit on a handful of points can be a degenerate pose (a real clip gave a camera 90 km away
    whose other 180 points were all 120 px off); it must not be kept, and the seeded retry must recover."""
    import cv2

    from insertanywhere.scene import cameras

    poses = look_poses(10, "general")
    points = scene_points(300)
    tracks = project_tracks(poses, points, noise_px=0.0)
    recon = cameras._Reconstruction(tracks, K, CameraConfig())
    recon.points[:] = points
    recon.poses[0] = poses[0]
    assert recon.register(5, None)
    np.testing.assert_allclose(recon.poses[5][:3, 3], poses[5][:3, 3], atol=1e-4)

    real_ransac = cv2.solvePnPRansac

    def degenerate_unless_seeded(object_points, image_points, camera, dist, *args, **kwargs):
        if kwargs.get("useExtrinsicGuess"):
            return real_ransac(object_points, image_points, camera, dist, *args, **kwargs)
        far = np.array([[3.0e3], [1.0e4], [-9.0e4]])
        return True, np.zeros((3, 1)), far, np.arange(12).reshape(-1, 1)

    monkeypatch.setattr(cv2, "solvePnPRansac", degenerate_unless_seeded)
    monkeypatch.setattr(cv2, "solvePnPRefineLM", lambda obj, img, camera, dist, rvec, tvec: (rvec, tvec))
    del recon.poses[5]
    assert not recon.register(5, None)
    assert 5 not in recon.poses
    assert recon.register(5, poses[4])
    np.testing.assert_allclose(recon.poses[5][:3, 3], poses[5][:3, 3], atol=1e-3)


def test_short_tracks_on_a_slow_mover_are_left_out_beside_its_long_ones():
    """A slow mover's short tracks are each explained by some static point; its long tracks are not, and
    the short ones living among them are flagged while the static scene's tracks are kept."""
    from insertanywhere.scene.cameras import tracks_among_movers
    from insertanywhere.scene.tracks import Tracks

    n_frames = 30
    poses = look_poses(n_frames, "general")
    static = project_tracks(poses, scene_points(600))
    rng = np.random.default_rng(3)
    # A box 3.5 units ahead of the first camera, right of the centre, sinking 0.01 units a frame (across the
    # epipolar lines: a motion along them would be a static point at another depth).
    box = np.stack([rng.uniform(0.2, 0.9, 120), rng.uniform(-0.4, 0.4, 120), rng.uniform(3.4, 3.6, 120)], 1)
    sinking = [box + np.array([0, 0.01 * t, 0]) for t in range(n_frames)]
    xy = np.stack([project_tracks(poses[t : t + 1], sinking[t], seed=t).xy[0] for t in range(n_frames)])
    short = np.arange(40, 120)  # tracks that live 6 frames each, staggered over the clip
    for j in short:
        start = (j * 7) % (n_frames - 6)
        xy[:start, j] = np.nan
        xy[start + 6 :, j] = np.nan
    moving = Tracks(xy.astype(np.float32), np.ones(120, np.float32), np.zeros(120, np.float32))
    tracks = Tracks(
        np.concatenate([static.xy, moving.xy], axis=1),
        np.concatenate([static.quality, moving.quality]),
        np.concatenate([static.fb_error, moving.fb_error]),
    )
    flagged = tracks_among_movers(tracks, poses, K, CameraConfig())
    on_mover = flagged[static.n_tracks :]
    assert on_mover[:40].all()  # the long ones: no static point explains them
    assert on_mover[short].mean() > 0.8  # the short ones beside them
    assert flagged[: static.n_tracks].mean() < 0.05
    assert not tracks_among_movers(static, poses, K, CameraConfig()).any()


def test_a_self_calibrated_focal_is_taken_only_when_it_lowers_the_cost():
    """With parallax the free focal finds the truth from a guess 10 % off; a focal that must save more cost than
    any change can is held at the guess (the low-parallax case, where the cost is flat)."""
    poses = look_poses(25, "general")
    tracks = project_tracks(poses, scene_points(600))
    guess = K.copy()
    guess[0, 0] = guess[1, 1] = 0.9 * K[0, 0]
    free = estimate_cameras(tracks, guess, K_is_known=False)
    assert abs(free.K[0, 0] / K[0, 0] - 1) < 0.01
    held = estimate_cameras(tracks, guess, K_is_known=False, config=CameraConfig(focal_min_gain=float("inf")))
    np.testing.assert_allclose(held.K, guess)


def test_robust_cost_is_ceres_objective():
    from insertanywhere.scene.bundle import robust_cost

    errors = np.array([0.0, 1.0, 3.0])
    assert robust_cost(errors, "linear", 1.0) == pytest.approx(0.5 * 10.0)
    assert robust_cost(errors, "cauchy", 1.0) == pytest.approx(0.5 * (np.log(2.0) + np.log(10.0)))
    assert robust_cost(errors, "huber", 2.0) == pytest.approx(0.5 * (1.0 + 2 * 2 * 3 - 4))
