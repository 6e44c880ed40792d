"""The reconstruction pipeline: frames -> Scene4D, stage by stage (see docs/reconstruction.md).

flow (working resolution) -> tracks -> motion model + cameras -> depth -> dynamic masks -> joint
refinement (with a depth prior) -> full-resolution Scene4D (+ previews when saved to a folder).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from insertanywhere.conventions import Camera, Scene4D, SceneMeta
from insertanywhere.errors import InputError
from insertanywhere.io.atomic import read_json
from insertanywhere.io.scene_store import SCENE_JSON, load_scene, save_scene, scene_exists
from insertanywhere.progress import Progress, StageTimer, null_progress
from insertanywhere.scene import depth as depth_stage
from insertanywhere.scene.cameras import CameraEstimate, estimate_cameras
from insertanywhere.scene.config import ReconstructConfig
from insertanywhere.scene.dynamic import hysteresis_masks, residual_scores
from insertanywhere.scene.flow import FlowStream, to_gray
from insertanywhere.scene.intrinsics import fov_x_deg, initial_intrinsics
from insertanywhere.scene.registry import make_depth_prior, make_dynamic_backend, make_flow_backend
from insertanywhere.scene.tracks import Tracks, track_points
from insertanywhere.threads import lower_thread_priority
from insertanywhere.upsampled import UpsampledStack, to_float16

# 2: pycolmap bundle adjustment, faster tracker settings; 3: rotation-fit model test, gauge-free rotation
# adjustment; 4: frames decoded with swscale's default colour conversion; 5: a pixel budget for the working
# size (and the opt-in finer tracks); 6: PnP poses checked against all of a frame's points (a seeded retry when
# EPnP-RANSAC's is degenerate), keyframe adjustment every 4 registrations; 9: depth, confidence, masks and flows
# kept at the working resolution (scene/ too), upsampled per frame where read.
PIPELINE_VERSION = 9


class _ClipFrames:
    """The clip's full-size frames, read one at a time: a (T, H, W, 3) uint8 array, or a video / image folder
    decoded again on each pass (a 1080p frame is 6 MB: 300 of them held 1.9 GB when the clip was read whole).

    Attributes:
        n_frames, height, width: the clip's size; fps: its rate (30 for an array); source: what it was read from
            (an array, or the file's path, size and mtime: part of the scene's fingerprint).
    """

    def __init__(self, video_path_or_frames: str | os.PathLike[str] | np.ndarray) -> None:
        self._array: np.ndarray | None = None
        self._path: Path | None = None
        if isinstance(video_path_or_frames, np.ndarray):
            frames = video_path_or_frames
            if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
                raise InputError(f"frames must be a (T, H, W, 3) uint8 array, got {frames.shape} {frames.dtype}")
            self._array = frames
            self.n_frames, self.height, self.width = frames.shape[:3]
            self.fps, self.source = 30.0, {"kind": "array"}
            return
        from insertanywhere.io.video import VideoReader

        self._path = Path(video_path_or_frames)
        info = VideoReader(self._path, accurate_color=False).info
        self.n_frames, self.height, self.width, self.fps = info.n_frames, info.height, info.width, float(info.fps)
        stat = self._path.stat()
        self.source = {"path": str(self._path.resolve()), "size": stat.st_size, "mtime": stat.st_mtime}

    def __iter__(self) -> Iterator[np.ndarray]:
        """(H, W, 3) uint8 RGB frames in order."""
        if self._array is not None:
            return iter(self._array)
        from insertanywhere.io.video import VideoReader

        # swscale's default conversion (0.6 ms a frame at 832x480, against 12 ms for the accurate one the output
        # path uses): the reconstruction works on a downscaled copy, where a level of chroma rounding is noise.
        return iter(VideoReader(self._path, accurate_color=False))


def _work_size(width: int, height: int, long_side: int, max_pixels: int | None = None) -> tuple[int, int]:
    """(width, height) of a clip scaled (never up) to ``long_side`` and, when given, ``max_pixels``."""
    scale = min(1.0, long_side / max(width, height))
    if max_pixels is not None:
        scale = min(scale, (max_pixels / (width * height)) ** 0.5)
    return max(16, round(width * scale)), max(16, round(height * scale))


def _static_points_in_frame(
    tracks: Tracks, estimate: CameraEstimate, t: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixels (N, 2), camera z (N,) and point indices (N,) of the static points tracked in frame t."""
    visible = tracks.visible[t, estimate.point_track]
    index = np.nonzero(visible)[0]
    pose = estimate.cam_from_world[t]
    z = estimate.points_world[index] @ pose[2, :3] + pose[2, 3]
    keep = z > 1e-6
    return tracks.xy[t, estimate.point_track[index[keep]]].astype(np.float64), z[keep], index[keep]


def _classical_depth(
    grays: list[np.ndarray], tracks: Tracks, estimate: CameraEstimate, progress: Progress
) -> tuple[np.ndarray, np.ndarray, dict]:
    n_frames = len(grays)
    height, width = grays[0].shape
    depth = np.zeros((n_frames, height, width), np.float32)
    confidence = np.zeros_like(depth)
    if estimate.camera_model != "general" or len(estimate.points_world) < 4:
        note = "no parallax (static or rotating camera): depth is unobservable without a prior; use depth-anything-v2"
        return depth, confidence, {"depth_note": note}
    # Robust support planes (floor, table) among the static points: 1% of the median scene depth.
    planes = depth_stage.fit_planes_ransac(estimate.points_world, threshold=0.01)
    plane_of_point = np.full(len(estimate.points_world), -1)
    for plane_index, (_, inliers) in enumerate(planes):
        plane_of_point[inliers] = plane_index

    def densify(t: int) -> None:
        xy, z, index = _static_points_in_frame(tracks, estimate, t)
        pose = estimate.cam_from_world[t]
        planes_cam = []
        for plane, _ in planes:
            normal_cam = pose[:3, :3] @ plane[:3]
            planes_cam.append(np.append(normal_cam, plane[3] - normal_cam @ pose[:3, 3]))
        depth[t], confidence[t] = depth_stage.densify_frame(
            xy, z, plane_of_point[index], planes_cam, estimate.K, grays[t]
        )

    # Frames are independent; numpy and OpenCV release the GIL in the heavy calls, so two threads help.
    with ThreadPoolExecutor(max_workers=2) as pool:
        for done, _ in enumerate(pool.map(densify, range(n_frames))):
            progress("depth", done + 1, n_frames)
    return depth, confidence, {"support_planes": len(planes)}


def _prior_depth(
    frames: _ClipFrames,
    work_size: tuple[int, int],
    tracks: Tracks,
    estimate: CameraEstimate,
    config: ReconstructConfig,
    progress: Progress,
) -> tuple[np.ndarray, np.ndarray, dict, list[np.ndarray]]:
    prior_model = make_depth_prior(config)
    if hasattr(prior_model, "check_count"):
        prior_model.check_count(frames.n_frames)
    width, height = work_size
    priors = []
    for t, frame in enumerate(frames):
        raw = prior_model(t, frame)
        priors.append(cv2.resize(raw.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR))
        progress("depth prior", t + 1, frames.n_frames)
    from insertanywhere.scene.refine import align_priors

    depth, confidence, info = align_priors(priors, prior_model.kind, prior_model.metric, tracks, estimate)
    info["prior"] = prior_model.name
    return depth, confidence, info, priors


def reconstruct(
    video_path_or_frames: str | os.PathLike[str] | np.ndarray,
    config: ReconstructConfig | None = None,
    progress: Progress = null_progress,
) -> Scene4D:
    """Reconstruct a clip's 4D scene in memory.

    Args:
        video_path_or_frames: a video file / image folder, or a (T, H, W, 3) uint8 RGB array.
        config: backends and settings (defaults: DIS flow, classical depth, residual dynamics).
        progress: called as ``progress(stage, done, total)``.

    Returns:
        Scene4D at the clip's full resolution, frame 0's camera = identity.
    """
    config = (config or ReconstructConfig()).validate()
    timer = StageTimer()
    frames = _ClipFrames(video_path_or_frames)
    n_frames, height, width = frames.n_frames, frames.height, frames.width
    if n_frames < 2:
        raise InputError(f"the clip has {n_frames} frame; reconstruction needs at least 2")
    work_width, work_height = _work_size(width, height, config.work_long_side, config.work_max_pixels)
    scale_x, scale_y = work_width / width, work_height / height
    # Optionally (track_long_side) the tracks are refined on finer frames: their sub-pixel precision sets
    # the cameras' (synthetic families' ATE 0.07-0.27 % -> 0.04-0.21 %, 7-Scenes 1.29 -> 1.26 %).
    fine_width, fine_height = _work_size(width, height, max(config.track_long_side, max(work_width, work_height)))
    fine_size = None if (fine_width, fine_height) == (work_width, work_height) else (fine_width, fine_height)
    frames_work: list[np.ndarray] = []
    fine_grays: list[np.ndarray] | None = None if fine_size is None else []
    with timer("read"):  # decoded and downscaled frame by frame: only the working copies are kept
        for frame in frames:
            frames_work.append(cv2.resize(frame, (work_width, work_height), interpolation=cv2.INTER_AREA))
            if fine_grays is not None:
                fine = (
                    frame
                    if fine_size == (width, height)
                    else cv2.resize(frame, fine_size, interpolation=cv2.INTER_AREA)
                )
                fine_grays.append(to_gray(fine))
    if len(frames_work) != n_frames:
        raise InputError(f"the clip gave {len(frames_work)} of its {n_frames} frames; re-encode it")
    with timer("resize"):
        grays = [to_gray(f) for f in frames_work]
    # The tracker follows the flow pair by pair while it is computed; "flow" is the flow's own wall time and
    # "tracks" what the tracking took beyond it.
    stream = FlowStream(frames_work, make_flow_backend(config), progress)
    tracks_start = time.perf_counter()
    tracks = track_points(grays, stream.forward_pairs, config.tracker, progress, fine_grays=fine_grays)
    stream.wait()
    timer.seconds["flow"] = stream.seconds
    timer.seconds["tracks"] = max(0.0, time.perf_counter() - tracks_start - stream.seconds)
    flow_forward, flow_backward = stream.forward, stream.backward
    # The float16 copies the scene keeps, made while the cameras and depth are estimated (their single-threaded
    # stretches leave a core idle; 0.2 s on 7-Scenes when made after them).
    converter = ThreadPoolExecutor(max_workers=1, initializer=lower_thread_priority)
    flows_half = converter.submit(lambda: (to_float16(flow_forward), to_float16(flow_backward)))
    converter.shutdown(wait=False)  # the conversion runs on; its result is collected when the scene is built
    with timer("cameras"):
        K_full, K_known = initial_intrinsics(width, height, config.fov_deg, config.K)
        K_work = np.diag([scale_x, scale_y, 1.0]) @ K_full
        try:
            estimate = estimate_cameras(tracks, K_work, K_known, config.cameras, progress)
        except RuntimeError as err:
            raise InputError(f"camera estimation failed: {err}; try giving --fov or a clip with more texture") from None
    extra: dict = {}
    with timer("depth"):
        if config.depth == "classical":
            depth_work, confidence_work, info = _classical_depth(grays, tracks, estimate, progress)
        else:
            depth_work, confidence_work, info, _ = _prior_depth(
                frames, (work_width, work_height), tracks, estimate, config, progress
            )
        extra.update(info)
    with timer("dynamic"):
        scores = residual_scores(
            flow_forward, flow_backward, depth_work, estimate.K, estimate.cam_from_world, config.residual, progress,
            depth_confidence=confidence_work, consistency=(stream.consistent_forward, stream.consistent_backward),
        )  # fmt: skip
        coarse = hysteresis_masks(scores, config.residual)
        dynamic_work = make_dynamic_backend(config)(frames_work, scores, coarse)
    with timer("upsample"):
        if config.depth == "classical":
            # Movers have no triangulated depth in the classical default: unknown, not background.
            depth_work = np.where(dynamic_work, 0.0, depth_work).astype(np.float32)
            confidence_work = np.where(dynamic_work, 0.0, confidence_work).astype(np.float32)
        # Kept at the working resolution and made full size frame by frame where a stage reads them
        # (insertanywhere.upsampled): 300 frames of 1080p held 9 GB at full size. Confidence and flow are
        # float16 here as in scene/, so a fresh run sees the values a run reusing the saved scene does.
        size = (width, height)
        depth = UpsampledStack(depth_work, "depth", size)
        confidence = UpsampledStack(confidence_work, "confidence", size)
        dynamic = UpsampledStack(dynamic_work, "mask", size)
        forward_half, backward_half = flows_half.result()
        flow_fw_full = UpsampledStack(forward_half, "flow", size)
        flow_bw_full = UpsampledStack(backward_half, "flow", size)
    to_full = np.diag([1.0 / scale_x, 1.0 / scale_y, 1.0])
    K_out = to_full @ estimate.K
    cameras = [Camera(K_out, pose) for pose in estimate.cam_from_world]
    points_world = points_color = None
    if len(estimate.points_world):
        points_world = estimate.points_world.copy()
        track_xy = tracks.xy[:, estimate.point_track]
        first = np.argmax(np.isfinite(track_xy[..., 0]), axis=0)
        xy = track_xy[first, np.arange(len(first))]  # working pixels: the colours of the working frames
        cols = np.clip(xy[:, 0].astype(int), 0, work_width - 1)
        rows = np.clip(xy[:, 1].astype(int), 0, work_height - 1)
        points_color = np.stack(frames_work)[first, rows, cols].astype(np.uint8)
    if "world_scale" in extra:  # a metric prior set the units: rescale poses and points alike
        for camera in cameras:
            camera.cam_from_world[:3, 3] *= extra["world_scale"]
        if points_world is not None:
            points_world *= extra["world_scale"]
    extra.update(
        {
            "camera_model_reason": estimate.model_reason,
            "fov_x_deg": fov_x_deg(K_out, width),
            "intrinsics": "given" if K_known else "self-calibrated" if estimate.camera_model != "static" else "guessed",
            "n_tracks": int(tracks.n_tracks),
            "n_points": 0 if points_world is None else len(points_world),
            "keyframes": estimate.keyframes,
            "work_size": [work_width, work_height],
            "seconds": {k: round(v, 3) for k, v in timer.seconds.items()},
            "pipeline_version": PIPELINE_VERSION,
            "config": config.to_dict(),
            "source": frames.source,
        }
    )
    meta = SceneMeta(
        width=width,
        height=height,
        fps=frames.fps,
        n_frames=n_frames,
        units="metric" if extra.get("metric") else "arbitrary",
        camera_model=estimate.camera_model,
        backends=config.backends,
        extra=_jsonable(extra),
    )
    return Scene4D(
        meta=meta,
        cameras=cameras,
        depth=depth,
        depth_confidence=confidence,
        dynamic_mask=dynamic,
        flow_forward=flow_fw_full,
        flow_backward=flow_bw_full,
        points_world=points_world,
        points_color=points_color,
    )


def _jsonable(value):
    """Convert numpy scalars/arrays nested in dicts and lists to JSON types."""
    return json.loads(json.dumps(value, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v)))


def config_fingerprint(config: ReconstructConfig, source: dict) -> str:
    """Hash of what decides a reconstruction: the config, the input's identity and the pipeline version."""
    decides = {key: value for key, value in config.to_dict().items() if key != "device"}  # where, not what
    payload = json.dumps({"config": decides, "source": source, "v": PIPELINE_VERSION}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def reconstruct_to_folder(
    video_path: str | os.PathLike[str],
    folder: str | os.PathLike[str],
    config: ReconstructConfig | None = None,
    progress: Progress = null_progress,
    save_later: Callable[[Callable[[], None]], None] | None = None,
) -> Scene4D:
    """Reconstruct and save to ``folder`` (io.scene_store layout + previews/), or load the folder when it
    is complete and was made from the same input with the same config.

    Args:
        save_later: when given, saving the scene and its previews is handed to it (e.g. a thread pool's
            submit whose future the caller keeps) and this returns at once with the in-memory scene; the
            caller waits for it before it reports success. The folder only looks complete once
            ``scene.json`` is written, last.

    Returns:
        the Scene4D (memory-mapped arrays when loaded from disk).
    """
    config = (config or ReconstructConfig()).validate()
    folder = Path(folder)
    video_path = Path(video_path)
    if not video_path.exists():
        raise InputError(f"{video_path}: no such video file or image folder")
    stat = video_path.stat()
    source = {"path": str(video_path.resolve()), "size": stat.st_size, "mtime": stat.st_mtime}
    fingerprint = config_fingerprint(config, source)
    if scene_exists(folder) and read_json(folder / SCENE_JSON).get("fingerprint") == fingerprint:
        return load_scene(folder)
    start = time.perf_counter()
    scene = reconstruct(video_path, config, progress)
    scene.meta.extra["fingerprint"] = fingerprint
    scene.meta.extra["seconds"]["total"] = round(time.perf_counter() - start, 3)
    if (folder / SCENE_JSON).exists():
        (folder / SCENE_JSON).unlink()  # the old scene is stale: mark the folder incomplete while writing

    def save() -> None:
        from insertanywhere.io.video import VideoReader
        from insertanywhere.scene.previews import strip_frames, write_previews

        save_scene(scene, folder)
        shown = strip_frames(scene)
        write_previews(scene, folder, dict(zip(shown, VideoReader(video_path).read_frames(shown), strict=True)))

    if save_later is None:
        save()
    else:
        save_later(save)
    return scene
