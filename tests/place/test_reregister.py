"""Re-registration pulls a drifted support motion back onto the placement frame's view."""

import cv2
import numpy as np
import pytest

from insertanywhere.conventions import invert_pose, make_pose, transform_points
from insertanywhere.geometry.rigid import rotation_about_axis
from insertanywhere.place.reregister import register_frame, reregister

from .conftest import HEIGHT, UP, WIDTH, floor_points, orbit_cameras, tray_motion


def _texture(seed: int = 0, blur: float = 2.0) -> np.ndarray:
    """(512, 512) float32 smooth random texture covering the floor square [-2, 2]^2 (x, z), blurred by ``blur``
    texels (at 160x120 pixels the floor is minified 2-5 times: less blur aliases under sub-pixel motion)."""
    noise = np.random.default_rng(seed).random((512, 512)).astype(np.float32)
    texture = cv2.GaussianBlur(noise, (0, 0), blur)
    return (texture - texture.min()) / (texture.max() - texture.min()) * 255.0


def _image(camera, motion, texture) -> np.ndarray:
    """(H, W, 3) uint8: the floor, carried by ``motion`` (its texture moves with it), seen by ``camera``."""
    world = floor_points(camera).reshape(-1, 3)
    local = transform_points(invert_pose(motion), np.nan_to_num(world))
    u = ((local[:, 0] + 2.0) / 4.0 * 512).reshape(HEIGHT, WIDTH).astype(np.float32)
    v = ((local[:, 2] + 2.0) / 4.0 * 512).reshape(HEIGHT, WIDTH).astype(np.float32)
    gray = cv2.remap(texture, u, v, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return np.repeat(np.clip(gray, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def _grid() -> np.ndarray:
    a, b = np.meshgrid(np.linspace(-0.5, 0.5, 16), np.linspace(-0.5, 0.5, 16))
    return np.stack([a.ravel(), np.zeros(a.size), b.ravel()], axis=1)


def test_register_frame_removes_drift(intrinsics):
    cameras = orbit_cameras(intrinsics, 2, 20.0, distance=2.5, height=1.8)
    texture = _texture()
    truth = tray_motion(1, speed=0.15, turn_deg=8.0)
    anchor_image, image = _image(cameras[0], np.eye(4), texture), _image(cameras[1], truth, texture)
    drift = make_pose(rotation_about_axis(UP, np.radians(2.0)), np.array([0.05, 0.0, -0.04]))
    grid = _grid()
    estimate = drift @ truth
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    anchor_gray = cv2.cvtColor(anchor_image, cv2.COLOR_RGB2GRAY)
    corrected = register_frame(anchor_gray, cameras[0], gray, cameras[1], grid, estimate, np.ones(len(grid), bool))
    assert corrected is not None

    def image_error(motion):
        moved, _ = cameras[1].project(transform_points(motion, grid))
        true, _ = cameras[1].project(transform_points(truth, grid))
        return float(np.median(np.linalg.norm(moved - true, axis=1)))

    assert image_error(estimate) > 2.0
    assert image_error(corrected) < 0.2


def test_reregister_keeps_estimates_it_cannot_check(intrinsics):
    cameras = orbit_cameras(intrinsics, 3, 20.0, distance=2.5, height=1.8)
    texture = _texture()
    motions = np.stack([tray_motion(t, speed=0.1, turn_deg=5.0) for t in range(3)])
    frames = [_image(c, m, texture) for c, m in zip(cameras, motions, strict=True)]
    frames[2] = np.zeros_like(frames[2])  # a black frame: nothing to align to
    estimate = motions.copy()
    estimate[1] = make_pose(np.eye(3), np.array([0.02, 0.0, 0.0])) @ motions[1]
    grays = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    corrected, registered = reregister(iter(grays), grays[0], cameras, 0, _grid(), np.ones(256, bool), estimate)
    assert registered.tolist() == [True, True, False]
    assert np.allclose(corrected[2], estimate[2])
    grid = _grid()
    errors = [
        np.median(np.linalg.norm(transform_points(m, grid) - transform_points(motions[1], grid), axis=1))
        for m in (estimate[1], corrected[1])
    ]
    assert errors[1] < 0.3 * errors[0]  # scene units on the support, from 2 cm


@pytest.mark.parametrize("anchor", [0, 12])
def test_follow_drift_follows_a_slow_slide_beyond_one_alignment(intrinsics, anchor):
    """The camera model misses a slow slide of the support (the parallax a rotation camera cannot see): each
    frame starts from its neighbour's correction, outward from the placement frame in both directions, so
    the slide is followed past MAX_CORRECTION_PX."""
    from insertanywhere.place.reregister import MAX_CORRECTION_PX, follow_drift

    camera = orbit_cameras(intrinsics, 1, 0.0, distance=2.5, height=1.8)[0]
    texture = _texture()
    truth = [make_pose(np.eye(3), np.array([0.02 * (t - anchor), 0.0, 0.0])) for t in range(25)]
    grays = [cv2.cvtColor(_image(camera, m, texture), cv2.COLOR_RGB2GRAY) for m in truth]
    contact = np.zeros(3)
    motion, aligned = follow_drift(iter(grays), [camera] * 25, anchor, _grid(), contact)
    assert aligned.all()
    farthest = truth[0] if anchor else truth[-1]
    far_px = np.linalg.norm(camera.project(farthest[:3, 3][None])[0] - camera.project(contact[None])[0])
    if anchor == 0:
        assert far_px > MAX_CORRECTION_PX  # one alignment from the placement frame could not reach it
    np.testing.assert_allclose(motion[:, :3, 3], np.stack([m[:3, 3] for m in truth]), atol=0.01)
    # A sliding floor patch's image does turn a little under perspective (a fifth of a degree here).
    np.testing.assert_allclose(motion[:, :3, :3], np.tile(np.eye(3), (25, 1, 1)), atol=5e-3)


def test_follow_drift_turns_with_the_supports_image(intrinsics):
    """A rotation model fitted to the background can leave a nearer support's image turning slowly against
    the estimated cameras (the camera's translation seen as parallax). Here the footage's camera rolls by
    0.5 degrees a frame and the estimate does not know: the drift follows the turn, not only a shift."""
    from insertanywhere.conventions import Camera
    from insertanywhere.place.reregister import follow_drift

    camera = orbit_cameras(intrinsics, 1, 0.0, distance=2.5, height=1.8)[0]
    texture = _texture(blur=6.0)
    contact = np.zeros(3)  # seen at the image centre
    truth, grays = [], []
    for t in range(12):
        roll = np.eye(4)
        roll[:3, :3] = rotation_about_axis(np.array([0.0, 0.0, 1.0]), np.radians(0.5 * t))
        filmed = Camera(K=camera.K, cam_from_world=roll @ camera.cam_from_world)
        grays.append(cv2.cvtColor(_image(filmed, np.eye(4), texture), cv2.COLOR_RGB2GRAY))
        truth.append(camera.world_from_cam @ roll @ camera.cam_from_world)  # the same picture, unrolled camera
    motion, aligned = follow_drift(iter(grays), [camera] * 12, 0, _grid(), contact)
    assert aligned.all()
    foot_and_top = np.array([contact, contact + 0.4 * UP])  # an object 0.4 units tall on the contact
    for estimate, true in zip(motion, truth, strict=True):
        turn = np.degrees(np.arccos(np.clip((np.trace(estimate[:3, :3] @ true[:3, :3].T) - 1) / 2, -1, 1)))
        assert turn < 0.3
        pixel_error = (
            camera.project(transform_points(estimate, foot_and_top))[0]
            - camera.project(transform_points(true, foot_and_top))[0]
        )
        assert np.abs(pixel_error).max() < 0.3
    # A shift alone would leave the object's top off by the turn's arc.
    top_arc = np.linalg.norm(np.diff(camera.project(foot_and_top)[0], axis=0)) * np.radians(0.5 * 11)
    assert top_arc > 1.0


def test_shift_and_roll_reads_the_contacts_own_displacement_under_parallax(intrinsics):
    """The floor around the contact shows a depth-dependent parallax (a shear and a vertical stretch across the
    disk) and a passing occluder hides its left part: the correction is the contact's own displacement with no
    turn. A rigid fit gave the surviving points' mean displacement and read half the shear as a turn."""
    from insertanywhere.place.reregister import _image_shift_and_roll

    camera = orbit_cameras(intrinsics, 1, 0.0, distance=2.5, height=1.8)[0]
    contact = np.zeros(3)
    centre = camera.project(contact[None])[0][0]
    rng = np.random.default_rng(0)
    offsets = np.c_[rng.uniform(-20.0, 70.0, 120), rng.uniform(0.0, 14.0, 120)]  # the disk's right, nearer part
    predicted = centre + offsets
    shift = np.array([0.6, -0.4])
    displacement = shift + np.c_[0.06 * offsets[:, 1], 0.03 * offsets[:, 1]]  # shear and stretch with depth (y)
    found = predicted + displacement + rng.normal(0.0, 0.03, predicted.shape)
    correction = _image_shift_and_roll(camera, contact, predicted, found)
    assert correction is not None
    turn = np.degrees(np.arccos(np.clip((np.trace(correction[:3, :3]) - 1) / 2, -1, 1)))
    assert turn < 0.1
    moved = camera.project(transform_points(correction, contact[None]))[0][0]
    np.testing.assert_allclose(moved - centre, shift, atol=0.05)
