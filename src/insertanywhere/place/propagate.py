"""Propagation by scene flow: carry the object with its support through time (paper Sec. 3.2).

The support around the contact point is sampled as a grid of 3D points on the
support plane. Frame by frame, the grid is projected with the current estimate,
advected by the optical flow (forward-backward checked), and the support's new
rigid pose is solved by PnP (RANSAC, seeded with the "support did not move"
hypothesis). This needs no depth on the support at later frames, so a moving
tray whose depth the classical reconstruction leaves unknown is still carried.

A test over the whole clip decides whether the support moves at all: if the
motion it implies never displaces the support's image by more than a few pixels
beyond the tracking noise, the object is kept fixed in the world (camera-only,
the most stable answer). Otherwise the per-frame motion is smoothed with a
two-sided (zero-lag) Gaussian. When the support leaves the view or is hidden,
its motion is extrapolated at constant velocity for a few frames, then held,
and tracking resumes when the grid is visible again.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np

from insertanywhere.conventions import Camera, Scene4D, transform_points
from insertanywhere.geometry.rigid import keep_upright, pnp_refined, smooth_poses
from insertanywhere.place.anchor import Anchor
from insertanywhere.place.reregister import follow_drift, reregister
from insertanywhere.progress import Progress, null_progress

PropagationMode = Literal["scene-flow", "camera-only"]
MIN_TRACKED_POINTS = 12
STATIC_INLIER_PX = 0.5
"""A support point "agrees with a static support" when its flow lands within this of the static prediction."""
STATIC_MAJORITY = 0.5
SUPPORT_DEPTH_TOLERANCE = 0.10
STATIC_PREFERENCE = 1.5
STATIC_SLACK_PX = 0.25
"""A frame's support is resting unless a motion explains its flow better than STATIC_PREFERENCE times the
static error plus this slack."""
MOVING_STREAK_TO_EXTRAPOLATE = 3
MIN_MOVING_FRAMES = 3
"""The support moves only if at least this many frames saw it move (one bad flow field is not a motion)."""
"""Consecutive moving frames needed before a lost support is extrapolated at constant velocity."""
EXTRAPOLATE_FRAMES = 12
MOVING_SUPPORT_MOVER_SHARE = 0.5
"""A support can move only if, in some frame, most of its visible grid lies on the reconstruction's movers."""
STILL_PHOTOMETRIC_SLACK = 0.5
"""Grey levels: a support whose appearance "no motion" explains within this of the estimated motion is still."""
MAX_CACHED_FRAME_BYTES = 512 * 1024 * 1024
"""Grey frames kept in memory for propagation's passes over the clip (above this they are decoded again)."""
DRIFT_MIN_PX = 1.5
"""A rotation camera's drift correction smaller than this (image px, max over frames) is not applied."""
DRIFT_MIN_REGISTERED = 0.3
"""Share of frames that must re-register for a drift correction to be trusted."""
MOTION_GATE_PX = 3.0
MOTION_GATE_SPEED = 0.5
"""A moving support's increment is refused when it lands further than 3 px + half its speed from the
constant-velocity prediction."""


@dataclass
class Propagation:
    """The object's pose in every frame.

    Attributes:
        world_from_object: (T, 4, 4) float64.
        support_motion: (T, 4, 4) float64 rigid world motion of the support from the
            placement frame to frame t (identity where the support is static).
        support_moves: the motion test's verdict.
        tracked: (T,) bool, True where the support was observed (not extrapolated).
        support_points: (T,) int, support grid points tracked into each frame.
        motion_test: the numbers behind the verdict.
    """

    world_from_object: np.ndarray
    support_motion: np.ndarray
    support_moves: bool
    tracked: np.ndarray
    support_points: np.ndarray
    motion_test: dict[str, float] = field(default_factory=dict)


def support_grid(anchor: Anchor, radius: float, n_side: int = 24) -> np.ndarray:
    """(N, 3) world points on the support plane in a disk of ``radius`` (scene units) around the contact."""
    right, front = anchor.rotation[:, 0], anchor.rotation[:, 2]
    steps = np.linspace(-1.0, 1.0, n_side)
    a, b = np.meshgrid(steps, steps)
    keep = a**2 + b**2 <= 1.0
    a, b = a[keep] * radius, b[keep] * radius
    return anchor.contact_world + a[:, None] * right + b[:, None] * front


def _sample(field_: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """Bilinear sample of an (H, W) or (H, W, C) field of any dtype at (N, 2) pixel positions.

    Pixel-corner convention (pixel (i, j)'s centre is (j + 0.5, i + 0.5)); positions beyond the border take the
    border's value, non-finite positions give nan. Only the four neighbours of each position are read and cast,
    so a float16 flow or a bool mask is sampled without a float32 copy of the whole frame (a full-frame cast
    per support step cost a third of propagation).

    Returns:
        (N, C) float32 (C = 1 for an (H, W) field).
    """
    values = field_ if field_.ndim == 3 else field_[..., None]
    height, width = values.shape[:2]
    finite = np.isfinite(pixels).all(axis=1)
    x = np.clip(np.where(finite, pixels[:, 0], 0.5) - 0.5, 0.0, width - 1.0)
    y = np.clip(np.where(finite, pixels[:, 1], 0.5) - 0.5, 0.0, height - 1.0)
    x0 = np.minimum(x.astype(np.intp), max(width - 2, 0))
    y0 = np.minimum(y.astype(np.intp), max(height - 2, 0))
    x1, y1 = np.minimum(x0 + 1, width - 1), np.minimum(y0 + 1, height - 1)
    fx = (x - x0).astype(np.float32)[:, None]
    fy = (y - y0).astype(np.float32)[:, None]
    top = values[y0, x0].astype(np.float32) * (1 - fx) + values[y0, x1].astype(np.float32) * fx
    bottom = values[y1, x0].astype(np.float32) * (1 - fx) + values[y1, x1].astype(np.float32) * fx
    out = top * (1 - fy) + bottom * fy
    out[~finite] = np.nan
    return out


def _inside(pixels: np.ndarray, width: int, height: int, margin: float = 1.0) -> np.ndarray:
    return (
        (pixels[:, 0] >= margin)
        & (pixels[:, 0] < width - margin)
        & (pixels[:, 1] >= margin)
        & (pixels[:, 1] < height - margin)
    )


def _step(
    camera_from: Camera,
    camera_to: Camera,
    points_world: np.ndarray,
    flow: np.ndarray,
    flow_back: np.ndarray,
    depth_from: np.ndarray,
    dynamic_from: np.ndarray,
    support_is_dynamic: bool,
) -> tuple[np.ndarray | None, int, float, float]:
    """One frame of support tracking.

    Args:
        camera_from, camera_to: cameras of the two frames.
        points_world: (N, 3) support points at the current estimate (world, frame "from").
        flow: (H, W, 2) flow from -> to; flow_back: (H, W, 2) flow to -> from.
        depth_from: (H, W) scene depth of frame "from" (0 = unknown): drops grid points hidden by an occluder.
        dynamic_from: (H, W) bool movers of frame "from".
        support_is_dynamic: the support is a mover (a tray): keep every grid point; otherwise keep grid points
            off movers only (a person walking over the support is not the support).

    Returns:
        The support's incremental world motion (4, 4) (None when too few points), the number of
        points used, and the median reprojection errors (px) of the moving and static hypotheses.
    """
    height, width = flow.shape[:2]
    pixels, z = camera_from.project(points_world)
    ok = (z > 0) & _inside(pixels, width, height)
    if ok.sum() < MIN_TRACKED_POINTS:
        return None, int(ok.sum()), np.nan, np.nan
    scene_z = _sample(depth_from, pixels[ok])[:, 0]
    # Where the scene's depth is known, a grid point must see the support itself: not an occluder in
    # front, nor the floor beyond the table's edge (the grid is a disk and may overhang its support).
    visible = (scene_z <= 0) | (np.abs(scene_z - z[ok]) < SUPPORT_DEPTH_TOLERANCE * z[ok])
    on_mover = _sample(dynamic_from, pixels[ok])[:, 0] > 0.5
    if not support_is_dynamic:
        # Part of the static scene: a mover over it (a hand, a passer-by) is not the support. A support that
        # is a mover keeps every point: the mover masks are too coarse to say which mover is the support.
        visible &= ~on_mover
    idx = np.nonzero(ok)[0][visible]
    if len(idx) < MIN_TRACKED_POINTS:
        return None, len(idx), np.nan, np.nan
    start = pixels[idx]
    moved = start + _sample(flow, start)
    inside = _inside(moved, width, height)
    back = moved + _sample(flow_back, moved)
    fb_error = np.linalg.norm(back - start, axis=1)
    consistent = inside & (fb_error < 1.0 + 0.05 * np.linalg.norm(moved - start, axis=1))
    idx, moved = idx[consistent], moved[consistent]
    if len(idx) < MIN_TRACKED_POINTS:
        return None, len(idx), np.nan, np.nan
    object_points = points_world[idx]
    static_pixels, _ = camera_to.project(object_points)
    static_residual = np.linalg.norm(static_pixels - moved, axis=1)
    static_error = float(np.median(static_residual))
    resting = np.mean(static_residual < STATIC_INLIER_PX) >= STATIC_MAJORITY
    if resting:
        # Most of the support moves as a static surface would: it rests in this frame (see below).
        return np.eye(4), len(idx), static_error, static_error
    # PnP for the pose of the (moved) support points in camera "to", seeded with the static hypothesis.
    solved = pnp_refined(object_points, moved, camera_to.K, camera_to.cam_from_world, 2.0, MIN_TRACKED_POINTS)
    if solved is None:
        return None, len(idx), np.nan, static_error
    moved_cam_from_world, inlier_errors = solved
    moving_error = float(np.median(inlier_errors))
    if static_error <= STATIC_PREFERENCE * moving_error + STATIC_SLACK_PX:
        # A motion explains the flow little better than no motion: the support rests in this frame. The
        # identity (not a PnP estimate) keeps a resting support from drifting and ignores points an occluder's
        # edge drags along.
        return np.eye(4), len(idx), static_error, static_error
    # Support motion in the world: old world positions -> new world positions.
    increment = camera_to.world_from_cam @ moved_cam_from_world
    return increment, len(inlier_errors), moving_error, static_error


def is_support_dynamic(scene: Scene4D, anchor: Anchor, grid: np.ndarray) -> bool:
    """Whether the support under the contact is a mover at the placement frame (most of the grid on movers)."""
    camera = scene.cameras[anchor.frame]
    dynamic = np.asarray(scene.dynamic_mask[anchor.frame], bool)
    height, width = dynamic.shape
    pixels, z = camera.project(grid)
    ok = (z > 0) & _inside(pixels, width, height)
    if not ok.any():
        return False
    on_mover = _sample(dynamic, pixels[ok])[:, 0] > 0.5
    return bool(np.mean(on_mover) > 0.5)


def _image_distance(camera: Camera, pose_a: np.ndarray, pose_b: np.ndarray, grid: np.ndarray) -> float:
    """Median image distance (px) between the grid moved by two support motions, seen by ``camera``."""
    pa, za = camera.project(transform_points(pose_a, grid))
    pb, zb = camera.project(transform_points(pose_b, grid))
    front = (za > 0) & (zb > 0)
    return float(np.median(np.linalg.norm(pa[front] - pb[front], axis=1))) if front.any() else 0.0


def _track_direction(
    support_is_dynamic: bool,
    scene: Scene4D,
    anchor: Anchor,
    grid: np.ndarray,
    frames: range,
    forward: bool,
    motion: np.ndarray,
    tracked: np.ndarray,
    counts: np.ndarray,
    errors: list[tuple[float, float]],
    progress: Progress,
    done: list[int],
) -> None:
    """Fill ``motion[t]`` for ``frames`` (moving away from the anchor frame) in place."""
    previous = anchor.frame
    velocity = np.eye(4)
    lost_for = 0
    moving_streak = 0
    for t in frames:
        current = motion[previous]
        points = transform_points(current, grid)
        if forward:
            flow, flow_back = scene.flow_forward[previous], scene.flow_backward[previous]
        else:
            flow, flow_back = scene.flow_backward[t], scene.flow_forward[t]
        increment, count, moving_error, static_error = _step(
            scene.cameras[previous],
            scene.cameras[t],
            points,
            np.asarray(flow),
            np.asarray(flow_back),
            np.asarray(scene.depth[previous]),
            np.asarray(scene.dynamic_mask[previous], bool),
            support_is_dynamic,
        )
        counts[t] = count
        if increment is not None and support_is_dynamic:
            # A support moves smoothly; an increment far from the constant-velocity prediction is the flow of
            # something passing over it (an occluder dragging the points), not the support's own motion.
            jump = _image_distance(scene.cameras[t], increment @ current, velocity @ current, grid)
            speed = _image_distance(scene.cameras[t], velocity @ current, current, grid)
            if jump > MOTION_GATE_PX + MOTION_GATE_SPEED * speed:
                increment = None
        if increment is not None:
            motion[t] = increment @ current
            moving = not np.allclose(increment, np.eye(4))
            moving_streak = moving_streak + 1 if moving else 0
            velocity = increment if moving_streak >= MOVING_STREAK_TO_EXTRAPOLATE else np.eye(4)
            tracked[t] = True
            lost_for = 0
            errors.append((moving_error, static_error))
        else:
            lost_for += 1
            # Constant velocity for a few frames (a support sliding out of view), then hold.
            motion[t] = (velocity @ current) if lost_for <= EXTRAPOLATE_FRAMES else current
        previous = t
        done[0] += 1
        progress("propagate", done[0], scene.n_frames)


def _propagate_hypothesis(
    scene: Scene4D,
    anchor: Anchor,
    grid: np.ndarray,
    support_is_dynamic: bool,
    smooth_sigma: float,
    moving_threshold_px: float,
    progress: Progress,
) -> Propagation:
    """Track the support with one assumption about what it is (a mover or part of the static scene)."""
    count = scene.n_frames
    identity = np.tile(np.eye(4), (count, 1, 1))
    tracked = np.zeros(count, dtype=bool)
    tracked[anchor.frame] = True
    counts = np.zeros(count, dtype=int)
    motion = identity.copy()
    errors: list[tuple[float, float]] = []
    done = [1]
    for frames, forward in ((range(anchor.frame + 1, count), True), (range(anchor.frame - 1, -1, -1), False)):
        _track_direction(
            support_is_dynamic, scene, anchor, grid, frames, forward, motion, tracked, counts, errors, progress, done
        )
    # The motion test: how far would the estimated support motion move the support's image?
    displacement = np.zeros(count)
    for t in range(count):
        moved_px, z1 = scene.cameras[t].project(transform_points(motion[t], grid))
        still_px, z0 = scene.cameras[t].project(grid)
        front = (z0 > 0) & (z1 > 0)
        if front.any():
            displacement[t] = float(np.median(np.linalg.norm(moved_px[front] - still_px[front], axis=1)))
    per_frame = np.array(errors) if errors else np.zeros((0, 2))
    tracking_noise = float(np.median(per_frame[:, 0])) if len(per_frame) else 0.0
    drift_allowance = tracking_noise * np.sqrt(np.abs(np.arange(count) - anchor.frame))
    excess = displacement - drift_allowance
    # Moving frames: those whose increment is a motion (the per-frame test found the support not resting).
    moving_frames = int(sum(1 for moving_error, static_error in errors if moving_error != static_error))
    support_moves = bool(np.max(excess) > moving_threshold_px) and moving_frames >= MIN_MOVING_FRAMES
    test = {
        "support_is_mover": float(support_is_dynamic),
        "moving_frames": float(moving_frames),
        "max_support_displacement_px": float(displacement.max()),
        "tracking_noise_px": tracking_noise,
        "threshold_px": moving_threshold_px,
        "static_hypothesis_error_px": float(np.median(per_frame[:, 1])) if len(per_frame) else 0.0,
        "tracked_fraction": float(tracked.mean()),
    }
    if not support_moves:
        motion = identity
    else:
        motion = smooth_poses(motion, smooth_sigma, valid=tracked)
        motion[anchor.frame] = np.eye(4)
    poses = motion @ anchor.world_from_object
    return Propagation(poses, motion, support_moves, tracked, counts, test)


def photometric_errors(
    frames: Iterable[np.ndarray], scene: Scene4D, anchor: Anchor, grid: np.ndarray, motions: list[np.ndarray]
) -> list[float]:
    """How well each support trajectory keeps the support's texture in place (lower is better).

    The grid's colours at the placement frame are compared, frame by frame, with the colours found where
    each hypothesis puts the grid; the score is the mean over frames of the median absolute difference
    (grey levels). Streams the frames once.

    Args:
        frames: the clip's (H, W) uint8 grey frames in order ((H, W, 3) RGB is converted).
        motions: per hypothesis, (T, 4, 4) support motion.
    """
    samples: list[list[np.ndarray | None]] = [[] for _ in motions]
    for t, frame in enumerate(frames):
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame
        height, width = gray.shape
        for k, motion in enumerate(motions):
            pixels, z = scene.cameras[t].project(transform_points(motion[t], grid))
            inside = (z > 0) & _inside(pixels, width, height)
            values = np.full(len(grid), np.nan, np.float32)
            if inside.any():
                values[inside] = _sample(gray, pixels[inside])[:, 0]
            samples[k].append(values)
    scores = []
    for per_frame in samples:
        reference = per_frame[anchor.frame]
        errors = []
        for t, values in enumerate(per_frame):
            both = np.isfinite(values) & np.isfinite(reference)
            if t != anchor.frame and both.sum() >= MIN_TRACKED_POINTS:
                errors.append(float(np.median(np.abs(values[both] - reference[both]))))
        scores.append(float(np.mean(errors)) if errors else float("inf"))
    return scores


def propagate(
    scene: Scene4D,
    anchor: Anchor,
    object_radius: float,
    mode: PropagationMode = "scene-flow",
    smooth_sigma: float = 1.5,
    moving_threshold_px: float = 2.5,
    progress: Progress = null_progress,
    frames: Callable[[], Iterable[np.ndarray]] | None = None,
) -> Propagation:
    """Pose the object in every frame.

    What the support is decides which tracked points count: part of the static scene (then movers over
    it, a hand or a passer-by, are not followed) or a mover itself (a cart). The placement frame's moving
    regions say which, but a cart that starts moving later is static there. When the clip's frames are
    given, both hypotheses are tracked and the one that keeps the support's texture in place wins
    (``photometric_errors``); otherwise the placement frame decides.

    Args:
        scene: the reconstruction (cameras, flows, depth).
        anchor: the pose at the placement frame.
        object_radius: the object's horizontal radius in scene units; the support is sampled
            in a disk of about twice that around the contact.
        mode: "scene-flow" (ours) or "camera-only" (the baseline: the object fixed in the world).
        smooth_sigma: smoothing of the support motion (local linear fit), frames.
        moving_threshold_px: the support "moves" when its estimated motion displaces its image
            by more than this (median over the grid) in some frame, beyond the tracking noise.
        frames: a callable returning a fresh iterator over the clip's (H, W) uint8 grey frames
            (``VideoReader.iter_gray``).
    """
    count = scene.n_frames
    identity = np.tile(np.eye(4), (count, 1, 1))
    if mode == "camera-only" or scene.flow_forward is None or count == 1:
        poses = identity @ anchor.world_from_object
        return Propagation(poses, identity, False, np.ones(count, bool), np.zeros(count, int), {"mode": 0.0})
    grid = support_grid(anchor, radius=2.0 * object_radius)
    at_placement = is_support_dynamic(scene, anchor, grid)
    shares = _mover_shares(scene, grid)
    if frames is not None:
        # Pixels are needed to choose between hypotheses, to check or re-register a moving support and to
        # follow a moving camera's drift: then decoding starts now, while the support is tracked.
        likely_needed = at_placement or bool(np.any(shares > 0.2)) or scene.meta.camera_model != "static"
        frames = _decoded_once(frames, scene, start_now=likely_needed)
    best = _propagate_hypothesis(scene, anchor, grid, at_placement, smooth_sigma, moving_threshold_px, progress)
    if frames is not None and np.any(shares > 0.2):
        second = _propagate_hypothesis(
            scene, anchor, grid, not at_placement, smooth_sigma, moving_threshold_px, null_progress
        )
        if not np.allclose(best.support_motion, second.support_motion):
            scores = photometric_errors(frames(), scene, anchor, grid, [best.support_motion, second.support_motion])
            best = best if scores[0] <= scores[1] else second
            best.motion_test["photometric_error"] = min(scores)
            best.motion_test["other_hypothesis_photometric_error"] = max(scores)
    if best.support_moves and not np.any(shares > MOVING_SUPPORT_MOVER_SHARE):
        # The reconstruction never saw the support's region move: what the tracking measured is flow noise
        # (a textureless table top, a hand passing by), not a moving support.
        best.motion_test["support_never_on_movers"] = 1.0
        _hold_still(best, identity, anchor)
    if frames is not None and best.support_moves:
        # The motion must explain the support's appearance better than no motion at all: on a textureless
        # table or under false mover masks the tracked "motion" is noise, and staying put matches as well.
        moving_error, still_error = photometric_errors(frames(), scene, anchor, grid, [best.support_motion, identity])
        best.motion_test["moving_photometric_error"] = moving_error
        best.motion_test["still_photometric_error"] = still_error
        if still_error <= moving_error + STILL_PHOTOMETRIC_SLACK:
            _hold_still(best, identity, anchor)
    if frames is not None and best.support_moves:
        best = _reregistered(best, scene, anchor, grid, frames, smooth_sigma)
    if frames is not None and not best.support_moves and scene.meta.camera_model != "static":
        best = _drift_corrected(best, scene, anchor, grid, frames, smooth_sigma)
    if best.support_moves:
        # The support turns about its own normal only (a cart on a floor, a tray on a table): the tilt of a
        # small tracked patch is poorly constrained, and a tilted estimate topples the object.
        best.support_motion = keep_upright(best.support_motion, anchor.support_plane.normal, anchor.contact_world)
        best.world_from_object = best.support_motion @ anchor.world_from_object
    return best


def _hold_still(propagation: Propagation, identity: np.ndarray, anchor: Anchor) -> None:
    """In place: the support is judged still; ``identity`` is (T, 4, 4) identity motions."""
    propagation.support_moves = False
    propagation.support_motion = identity
    propagation.world_from_object = identity @ anchor.world_from_object


def _decoded_once(
    frames: Callable[[], Iterable[np.ndarray]], scene: Scene4D, start_now: bool
) -> Callable[[], Iterable[np.ndarray]]:
    """The grey frames decoded at most once: kept in memory when they fit in MAX_CACHED_FRAME_BYTES (81
    frames at 832x480: 32 MB), otherwise decoded again on each pass. With ``start_now`` the in-memory decode
    starts at once on a thread (the decoder releases the GIL), overlapping the flow-based tracking that needs
    no pixels; otherwise on first use."""
    if scene.n_frames * scene.meta.width * scene.meta.height > MAX_CACHED_FRAME_BYTES:
        return frames
    decoding = ThreadPoolExecutor(max_workers=1, thread_name_prefix="decode")
    decoded: list[Future[list[np.ndarray]]] = []

    def start() -> Future[list[np.ndarray]]:
        if not decoded:
            decoded.append(decoding.submit(lambda: list(frames())))
            decoding.shutdown(wait=False)
        return decoded[0]

    if start_now:
        start()

    def cached() -> Iterable[np.ndarray]:
        return iter(start().result())  # re-raises a failed decode

    return cached


def _reregistered(
    propagation: Propagation,
    scene: Scene4D,
    anchor: Anchor,
    grid: np.ndarray,
    frames: Callable[[], Iterable[np.ndarray]],
    smooth_sigma: float,
) -> Propagation:
    """A moving support's motion corrected against the placement frame (place.reregister), re-smoothed."""
    anchor_gray = next(itertools.islice(frames(), anchor.frame, None), None)
    if anchor_gray is None:
        return propagation
    camera = scene.cameras[anchor.frame]
    depth = np.asarray(scene.depth[anchor.frame], np.float32)
    height, width = depth.shape
    pixels, z = camera.project(grid)
    usable = (z > 0) & _inside(pixels, width, height)
    scene_z = np.zeros(len(grid), np.float32)
    scene_z[usable] = _sample(depth, pixels[usable])[:, 0]
    usable &= (scene_z <= 0) | (np.abs(scene_z - z) < SUPPORT_DEPTH_TOLERANCE * z)
    corrected, registered = reregister(
        frames(), anchor_gray, scene.cameras, anchor.frame, grid, usable, propagation.support_motion
    )
    motion = smooth_poses(corrected, smooth_sigma, valid=registered | propagation.tracked)
    motion[anchor.frame] = np.eye(4)
    propagation.support_motion = motion
    propagation.world_from_object = motion @ anchor.world_from_object
    propagation.motion_test["reregistered_fraction"] = float(registered.mean())
    return propagation


def _drift_corrected(
    propagation: Propagation,
    scene: Scene4D,
    anchor: Anchor,
    grid: np.ndarray,
    frames: Callable[[], Iterable[np.ndarray]],
    smooth_sigma: float,
) -> Propagation:
    """A still support under a moving camera, held to its image by re-registration.

    The rotation model puts the scene at infinity: a camera that also translates a little (a handheld pan,
    a slow dolly that the model test cannot tell from a pan) moves a near support against the background by
    parallax that no per-frame test sees (a fifth of a pixel a frame, 17 px over 80 frames on the synthetic
    moving_occluder). A general model's cameras and depth drift too: on the synthetic orbit the horse slid and
    sheared against the table by 2-5 px by frame 80 (J 0.93; 0.99 held to its image). Re-registering the support
    disk to the placement frame, each frame starting from the last one's correction, measures that drift
    (``reregister.follow_drift``: a shift of the support's image at the contact's depth and a turn about the ray
    through it); it is kept when it moves the support's image by more than DRIFT_MIN_PX somewhere and keeps
    the support's texture in place better than no correction (``photometric_errors``). The support is still
    "not moving" for occlusion: only its apparent place is corrected.
    """
    corrected, registered = follow_drift(frames(), scene.cameras, anchor.frame, grid, anchor.contact_world)
    propagation.motion_test["drift_registered_fraction"] = float(registered.mean())
    if registered.mean() < DRIFT_MIN_REGISTERED:
        return propagation
    motion = smooth_poses(corrected, smooth_sigma, valid=registered)
    motion[anchor.frame] = np.eye(4)
    shift = max(
        _image_distance(scene.cameras[t], motion[t], propagation.support_motion[t], grid) for t in range(len(motion))
    )
    propagation.motion_test["drift_px"] = shift
    if shift < DRIFT_MIN_PX:
        return propagation
    corrected_error, still_error = photometric_errors(
        frames(), scene, anchor, grid, [motion, propagation.support_motion]
    )
    propagation.motion_test["drift_photometric_error"] = corrected_error
    if corrected_error >= still_error:
        return propagation
    propagation.support_motion = motion
    propagation.world_from_object = motion @ anchor.world_from_object
    propagation.motion_test["drift_corrected"] = 1.0
    return propagation


def _mover_shares(scene: Scene4D, grid: np.ndarray) -> np.ndarray:
    """(T,) float: per frame, the share of the support grid's visible points (grid fixed in the world) that
    lie on movers."""
    shares = np.zeros(scene.n_frames)
    for t in range(scene.n_frames):
        dynamic = np.asarray(scene.dynamic_mask[t], bool)
        if not dynamic.any():
            continue
        height, width = dynamic.shape
        pixels, z = scene.cameras[t].project(grid)
        ok = (z > 0) & _inside(pixels, width, height)
        if ok.any():
            shares[t] = np.mean(_sample(dynamic, pixels[ok])[:, 0] > 0.5)
    return shares


__all__ = ["Propagation", "propagate", "support_grid"]
