"""The insert job, end to end: video + object + placement -> the output folder of docs/design.md.

Stages (each timed for report.json; the reconstruction is cached in ``OUT/scene``
and reused by a later run on the same video):

    reconstruct -> anchor -> propagate -> per frame: render, occlusion, shadow, composite -> outputs

Nothing that looks complete is written before it is: ``inserted.mp4`` is renamed
into place when finished and ``report.json`` is written last, after removing
the previous run's finished files.
"""

from __future__ import annotations

import importlib.metadata
import logging
import platform
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from insertanywhere import __version__
from insertanywhere.conventions import (
    ObjectTrack,
    Placement,
    Scene4D,
    TrackFrame,
    transform_points,
)
from insertanywhere.errors import InputError
from insertanywhere.geometry.boxes import mask_box
from insertanywhere.io.assets import ObjectAsset, load_object
from insertanywhere.io.atomic import prepare_output_dir, write_json_atomic
from insertanywhere.io.images import write_png, write_sequence_frame
from insertanywhere.io.video import VideoReader, VideoWriter, read_frames
from insertanywhere.place.anchor import Anchor, anchor_object
from insertanywhere.place.card import anchor_card
from insertanywhere.place.occlusion import (
    FrameGeometry,
    expand_window,
    multi_view_confirmation,
    shadow_visibility,
    visible_alpha,
)
from insertanywhere.place.propagate import Propagation, PropagationMode, propagate
from insertanywhere.progress import Progress, StageTimer, null_progress
from insertanywhere.threads import lower_thread_priority
from insertanywhere.upsampled import fill_caches

if TYPE_CHECKING:
    from insertanywhere.scene import ReconstructConfig

logger = logging.getLogger(__name__)

FINISHED_FILES = ("report.json", "inserted.mp4", "preview.png", "track.json")
SHADOW_MIN = 1.0 / 255.0
SUPPORT_FLOW_TOLERANCE_PX = 2.0
"""A mover pixel moves with the support when its flow is within 2 px (+20% of its speed) of the support's."""
PROBE_RADIUS_OBJECTS = 1.5
"""The lighting probe: the support within 1.5 object sizes of the contact."""
RENDER_THREADS = 2
"""Frames rendered concurrently ahead of the compositor (one per core of a laptop's two)."""
RENDER_LOOKAHEAD = 4
"""Decoded frames waiting for or in rendering: bounds memory to a few frames."""
OUTPUT_CRF = 4
"""x264 quality of inserted.mp4: near-lossless (about 47 dB against the decoded input on a moving camera clip,
45 dB at 8, 43 dB at 12), so the pixels the insertion does not touch stay the input's."""
OUTPUT_PRESET = "superfast"
"""x264 preset of inserted.mp4. At CRF 4 most of the encoder's time goes into coding the many bits; against
"veryfast" on the synthetic dolly clip, "superfast" took 1.6 s instead of 2.5, made a 6 % smaller file and
scored 47.9 dB instead of 46.5 against the frames (it drops the psycho-visual tuning, which trades PSNR for
perceived detail); "ultrafast" took 1.0 s for a file twice as large."""


@dataclass
class InsertConfig:
    """Everything one insert job needs; the CLI and the page build it.

    Attributes:
        video: input video file or image folder.
        object_path: RGBA image or mesh.
        placement: the user's placement (validated against the clip in ``run_insert``).
        out: output folder.
        synth: "composite" (CPU) or "vace" (diffusion, GPU).
        depth, flow, dynamic: reconstruction backends by name.
        model_path: weights (local folder or cached hub id) of the learned reconstruction backend, if one is named.
        device: torch device of the learned models ("auto": CUDA, else MPS, else CPU), the VACE stage's too.
        fov_deg: horizontal field of view if known (else self-calibrated).
        light: (azimuth_deg, elevation_deg) about the support, or None to estimate it.
        propagation: "scene-flow" (carry the object with its support) or "camera-only".
        facing: "fixed" card, or "camera" (keeps turning to face the camera about the up axis).
        overwrite: allow a non-empty output folder not made by this tool.
        vace: insertanywhere.synth.vace.VaceConfig for synth == "vace".
        write_video: False for the masks-only job.
    """

    video: Path
    object_path: Path
    placement: Placement
    out: Path
    synth: Literal["composite", "vace"] = "composite"
    depth: str = "classical"
    flow: str = "dis"
    dynamic: str = "residual"
    fov_deg: float | None = None
    light: tuple[float, float] | None = None
    propagation: PropagationMode = "scene-flow"
    facing: Literal["fixed", "camera"] = "fixed"
    overwrite: bool = False
    vace: Any = None
    write_video: bool = True
    model_path: str | None = None
    device: str = "auto"


@dataclass
class InsertResult:
    """Where the outputs are, and the report."""

    out: Path
    inserted_video: Path | None
    masks_dir: Path
    layers_dir: Path
    shadow_dir: Path
    scene_dir: Path
    track_path: Path
    preview_path: Path
    report_path: Path
    report: dict[str, Any]


@dataclass
class PlacedObject:
    """The object placed in the 4D scene: what every per-frame stage needs."""

    scene: Scene4D
    asset: ObjectAsset
    mesh: Any  # render.TexturedMesh
    anchor: Anchor
    propagation: Propagation
    light: Any  # render.Light
    warnings: list[str]
    placement_frame: np.ndarray  # (H, W, 3) uint8, the frame the placement is drawn in


def _versions() -> dict[str, str]:
    versions = {"insertanywhere": __version__, "python": platform.python_version()}
    for package in ("numpy", "scipy", "opencv-python-headless", "av", "pycolmap", "trimesh", "torch", "diffusers"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def reconstruct_scene(
    config: InsertConfig,
    scene_dir: Path,
    progress: Progress,
    save_later: Callable[[Callable[[], None]], None] | None = None,
) -> Scene4D:
    """Run (or reuse) the 4D reconstruction of ``config.video`` into ``scene_dir`` (saved by ``save_later``
    when given, see ``scene.reconstruct_to_folder``)."""
    from insertanywhere.scene import reconstruct_to_folder

    return reconstruct_to_folder(
        config.video, scene_dir, reconstruct_config(config), progress=progress, save_later=save_later
    )


def reconstruct_config(config: InsertConfig) -> ReconstructConfig:
    """The job's reconstruction settings, checked (InputError: an unknown backend, no --model-path for a learned
    one, an unusable --device)."""
    from insertanywhere.scene import ReconstructConfig

    return ReconstructConfig(
        flow=config.flow,
        depth=config.depth,
        dynamic=config.dynamic,
        fov_deg=config.fov_deg,
        model_path=config.model_path,
        device=config.device,
    ).validate()


def place_object(
    config: InsertConfig, scene: Scene4D, asset: ObjectAsset, timer: StageTimer, progress: Progress
) -> PlacedObject:
    """Anchor, propagate and light the object in the reconstructed scene."""
    from insertanywhere.render import object_mesh
    from insertanywhere.render.light import Light, default_light, estimate_light

    index = config.placement.frame
    with timer("anchor"):
        placement_frame = read_frames(config.video, [index])[0]
        if asset.kind == "image" and asset.rgba is not None:
            anchor, mesh = anchor_card(scene, config.placement, asset.rgba, facing=config.facing, image=placement_frame)
        else:
            mesh = object_mesh(asset, facing=config.facing)
            vertices = np.asarray(mesh.vertices, np.float64)
            anchor = anchor_object(scene, config.placement, vertices, image=placement_frame)
    radius = anchor.scale * float(np.max(np.linalg.norm(mesh.vertices[:, [0, 2]], axis=1)))
    with timer("propagate"):
        propagation = propagate(
            scene,
            anchor,
            object_radius=max(radius, 1e-6),
            mode=config.propagation,
            progress=progress,
            frames=lambda: VideoReader(config.video).iter_gray(),
        )

    camera = scene.cameras[index]
    normal = anchor.support_plane.normal
    with timer("light"):
        if config.light is not None:
            light = Light.from_angles(config.light[0], config.light[1], normal, camera, source="user")
        else:
            estimated = estimate_light(placement_frame, scene, index, anchor.support_plane, anchor.contact_world)
            light = estimated or default_light(camera, normal)
    return PlacedObject(scene, asset, mesh, anchor, propagation, light, list(anchor.warnings), placement_frame)


class FrameRenderer:
    """Per-frame rendering of a placed object: layer, visible alpha, shadow (no compositing)."""

    def __init__(self, placed: PlacedObject, width: int, height: int) -> None:
        self.placed = placed
        self.width, self.height = width, height
        # The placement frame, once: occlusion compares every frame's movers against it.
        self.reference_rgb = placed.placement_frame.astype(np.float32)

    def pose(self, t: int) -> np.ndarray:
        """(4, 4) world_from_object drawn in frame t (a "camera"-facing card turns toward the camera)."""
        from insertanywhere.render.mesh import render_pose

        camera = self.placed.scene.cameras[t]
        return render_pose(self.placed.mesh, self.placed.propagation.world_from_object[t], camera.center_world)

    def screen_velocity(self, t: int) -> np.ndarray:
        """(2,) float32 px/frame: the object's centre motion in the image around frame t (central difference)."""
        scene, poses = self.placed.scene, self.placed.propagation.world_from_object
        centre = np.array([[0.0, 0.5 * float(np.ptp(self.placed.mesh.vertices[:, 1])), 0.0]])
        before, after = max(t - 1, 0), min(t + 1, scene.n_frames - 1)
        if after == before:
            return np.zeros(2, np.float32)
        # The object's image motion: where it was and will be, seen by the camera of each of those frames.
        p0, _ = scene.cameras[before].project(transform_points(poses[before], centre))
        p1, _ = scene.cameras[after].project(transform_points(poses[after], centre))
        return ((p1[0] - p0[0]) / (after - before)).astype(np.float32)

    def render(self, t: int, frame: np.ndarray) -> dict[str, Any]:
        """Render frame t: the layer, the visible alpha and the visible shadow matte."""
        from insertanywhere.render import SupportPlane, render_object, render_shadow

        placed = self.placed
        scene = placed.scene
        camera = scene.cameras[t]
        pose = self.pose(t)
        motion = placed.propagation.support_motion[t]
        plane = placed.anchor.support_plane.transformed(motion)
        contact = transform_points(motion, placed.anchor.contact_world)
        layer = render_object(placed.mesh, camera, pose, self.width, self.height, light=placed.light)
        geometry = FrameGeometry(
            camera=camera,
            scene_depth=np.asarray(scene.depth[t], np.float32),
            dynamic_mask=np.asarray(scene.dynamic_mask[t], bool),
            support_plane=plane,
            contact_world=contact,
            image=frame,
            support_moves=placed.propagation.support_moves,
            support_region=self.moving_support_pixels(t) if placed.propagation.support_moves else None,
            object_size=self.object_size,
            confirm_static=multi_view_confirmation(
                scene.cameras, scene.depth, scene.dynamic_mask, self.confirmation_views(t)
            ),
            reference=(self.reference_rgb, scene.cameras[placed.anchor.frame], placed.anchor.support_plane, motion),
        )
        alpha = visible_alpha(geometry, layer.alpha, layer.depth, layer.bbox)
        support = SupportPlane(contact, plane.normal)
        shadow = render_shadow(placed.mesh, camera, pose, support, placed.light, self.width, self.height)
        box = mask_box(shadow > SHADOW_MIN)
        if box is not None:
            window, seen = shadow_visibility(geometry, expand_window(box, self.width, self.height, 4))
            if window is not None and seen is not None:
                x0, y0, x1, y1 = window
                visible_shadow = np.zeros_like(shadow)
                visible_shadow[y0:y1, x0:x1] = shadow[y0:y1, x0:x1] * seen
                shadow = visible_shadow
        coverage = float(layer.alpha.sum())
        visible_fraction = float(alpha.sum() / coverage) if coverage > 0 else 0.0
        probe = self.lighting_probe(t, motion, layer.alpha, shadow, geometry.dynamic_mask)
        return {
            "layer": layer,
            "alpha": alpha,
            "shadow": shadow,
            "pose": pose,
            "visible_fraction": visible_fraction,
            "probe": probe,
        }

    def composite(self, compositor: Any, t: int, frame: np.ndarray, rendered: dict[str, Any]) -> np.ndarray:
        """(H, W, 3) uint8: frame t with the rendered object, shadow and harmonisation (synth.composite)."""
        return compositor.composite(
            frame,
            rendered["layer"],
            rendered["alpha"],
            rendered["shadow"],
            self.screen_velocity(t),
            lighting_probe=rendered["probe"],
        )

    def confirmation_views(self, t: int) -> list[int]:
        """Frames whose depth confirms frame t's static occluders: the placement frame and frames 4 and 8
        away on either side (other views of the same static scene)."""
        count = self.placed.scene.n_frames
        views = {self.placed.anchor.frame} | {t + d for d in (-8, -4, 4, 8) if 0 <= t + d < count}
        views.discard(t)
        return sorted(views)

    def support_patch(self, t: int, motion: np.ndarray, radius: float) -> np.ndarray:
        """(H, W) bool: the support's disk of ``radius`` (scene units) around the contact, seen in frame t."""
        import cv2

        anchor = self.placed.anchor
        angles = np.linspace(0.0, 2.0 * np.pi, 33)[:-1]
        disk = (
            anchor.contact_world
            + radius * np.cos(angles)[:, None] * anchor.rotation[:, 0]
            + radius * np.sin(angles)[:, None] * anchor.rotation[:, 2]
        )
        pixels, z = self.placed.scene.cameras[t].project(transform_points(motion, disk))
        patch = np.zeros((self.height, self.width), np.uint8)
        if np.all(z > 0):
            cv2.fillPoly(patch, [np.round(pixels - 0.5).astype(np.int32)], 1)
        return patch > 0

    def moving_support_pixels(self, t: int) -> np.ndarray:
        """(H, W) bool: movers in frame t that are the moving support: those whose optical flow is the flow
        the support's motion gives its plane (the rest of a cart moves with it; a passer-by crossing it,
        even over the object's footprint, does not). Without flow: the support's patch around the object."""
        scene = self.placed.scene
        motion = self.placed.propagation.support_motion
        if scene.flow_forward is None or scene.n_frames < 2:
            return self.support_patch(t, motion[t], self.object_size)
        region = np.zeros((self.height, self.width), bool)
        nxt = t + 1 if t + 1 < scene.n_frames else t - 1
        flow_field = scene.flow_forward[t] if nxt > t else scene.flow_backward[nxt]
        movers = np.asarray(scene.dynamic_mask[t], bool)
        ys, xs = np.nonzero(movers)
        if not len(ys):
            return region
        flow = np.asarray(flow_field[ys, xs], np.float32)  # only the movers' pixels: no full-frame cast
        camera, camera_next = scene.cameras[t], scene.cameras[nxt]
        plane = self.placed.anchor.support_plane.transformed(motion[t])
        step = motion[nxt] @ np.linalg.inv(motion[t])
        # A pixel's ray r = R K^-1 p meets the plane n.X + d = 0 at X = C + r along, along = -(n.C + d) / (n.r);
        # scaled by w = n.r, X w = (C n^T - (n.C + d) I) r is linear in p: one 3x3 matrix takes every mover
        # pixel to camera_next's frame (times w), with no per-pixel ray, hit point or transform.
        rays_from_pixels = camera.world_from_cam[:3, :3] @ np.linalg.inv(camera.K)
        offset = float(plane.normal @ camera.center_world + plane.offset)
        hit_times_w = np.vstack([np.outer(camera.center_world, plane.normal) - offset * np.eye(3), plane.normal])
        to_next = camera_next.cam_from_world[:3] @ step @ hit_times_w @ rays_from_pixels
        pixels = np.stack([xs + 0.5, ys + 0.5, np.ones(len(xs))])
        w = (plane.normal @ rays_from_pixels) @ pixels
        cam_next = to_next @ pixels
        projected = camera_next.K @ cam_next
        with np.errstate(divide="ignore", invalid="ignore"):
            predicted = projected[:2] / projected[2]
            z = cam_next[2] / w
            along = -offset / w
        observed = pixels[:2] + flow.T
        error = np.linalg.norm(predicted - observed, axis=0)
        speed = np.linalg.norm(flow, axis=1)
        with np.errstate(invalid="ignore"):
            moves_with_support = (along > 0) & (z > 0) & (error < SUPPORT_FLOW_TOLERANCE_PX + 0.2 * speed)
        region[ys[moves_with_support], xs[moves_with_support]] = True
        return region

    @property
    def object_size(self) -> float:
        """The object's largest extent, scene units."""
        return self.placed.anchor.scale * float(np.max(np.ptp(self.placed.mesh.vertices, axis=0)))

    def lighting_probe(
        self, t: int, motion: np.ndarray, coverage: np.ndarray, shadow: np.ndarray, movers: np.ndarray
    ) -> np.ndarray:
        """(H, W) bool: the support around the object in frame t, the same physical patch in every frame,
        minus the object, its shadow and movers; the compositor measures lighting changes there."""
        import cv2

        probe = self.support_patch(t, motion, PROBE_RADIUS_OBJECTS * self.object_size)
        keep_out = (coverage > 0) | (shadow > 0.02) | movers
        keep_out = cv2.dilate(keep_out.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        return probe & ~keep_out


def _make_compositor(config: InsertConfig, renderer: FrameRenderer) -> tuple[Any, np.ndarray]:
    """The compositor, referenced to the placement frame (harmonisation compares every frame's
    surroundings with the placement frame's), and the object's RGBA as drawn there."""
    from insertanywhere.synth.composite import CompositeConfig, Compositor

    frame = renderer.placed.placement_frame
    rendered = renderer.render(config.placement.frame, frame)
    compositor = Compositor(
        CompositeConfig(), reference_frame=frame, reference_layer=rendered["layer"], reference_probe=rendered["probe"]
    )
    return compositor, _crop_rgba(_layer_rgba(rendered["layer"], rendered["layer"].alpha))


def _crop_rgba(rgba: np.ndarray) -> np.ndarray:
    """(h, w, 4) crop of an RGBA image to its non-transparent pixels."""
    ys, xs = np.nonzero(rgba[..., 3] > 0)
    if not len(ys):
        return rgba
    return rgba[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def _layer_rgba(layer: Any, alpha: np.ndarray) -> np.ndarray:
    """(H, W, 4) uint8 straight-alpha RGBA of the visible object (zero outside it)."""
    height, width = alpha.shape
    rgba = np.zeros((height, width, 4), np.uint8)
    if layer.bbox is None:
        return rgba
    x0, y0, x1, y1 = layer.bbox  # only the object's box holds anything
    a = np.clip(alpha[y0:y1, x0:x1] * 255.0 + 0.5, 0, 255).astype(np.uint8)
    rgb = np.clip(layer.color[y0:y1, x0:x1] * 255.0 + 0.5, 0, 255).astype(np.uint8)
    rgb[a == 0] = 0
    rgba[y0:y1, x0:x1, :3] = rgb
    rgba[y0:y1, x0:x1, 3] = a
    return rgba


def _clear_finished(out: Path) -> None:
    for name in FINISHED_FILES:
        (out / name).unlink(missing_ok=True)


def validate_inputs(config: InsertConfig) -> tuple[VideoReader, ObjectAsset]:
    """Open the video and the object and check the placement, at the edge (InputError/PlacementError)."""
    reader = VideoReader(config.video)
    info = reader.info
    config.placement.validate(info.width, info.height, info.n_frames)
    asset = load_object(config.object_path)
    if config.synth not in ("composite", "vace"):
        raise InputError(f"unknown --synth {config.synth!r}; choose composite or vace")
    reconstruct_config(config)
    return reader, asset


def run_insert(config: InsertConfig, progress: Progress = null_progress, scene: Scene4D | None = None) -> InsertResult:
    """Run the whole job and write the output-folder contract into ``config.out``.

    Args:
        config: the job.
        progress: progress reporting.
        scene: a ready Scene4D to use instead of reconstructing (e.g. ground truth for an
            oracle benchmark); it is saved into ``OUT/scene``.
    """

    timer = StageTimer()
    with timer("validate"):
        reader, asset = validate_inputs(config)
        out = prepare_output_dir(config.out, config.overwrite, inputs=(Path(config.video), Path(config.object_path)))
        _clear_finished(out)
    scene_dir = out / "scene"
    # The scene (hundreds of MB at full resolution) is written on a thread while the frames are rendered.
    scene_writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scene", initializer=lower_thread_priority)
    scene_saves: list[Future[None]] = []

    def save_later(job: Callable[[], None]) -> None:
        scene_saves.append(scene_writer.submit(job))

    try:
        with timer("reconstruct"):
            if scene is None:
                scene = reconstruct_scene(config, scene_dir, progress, save_later=save_later)
            else:
                from insertanywhere.io.scene_store import save_scene

                given = scene
                save_later(lambda: save_scene(given, scene_dir))
            # A short clip's scene is made full size here on two threads; the single-threaded mask stage then
            # finds every frame ready (a long clip's frames are made where read: bounded memory).
            fill_caches([scene.flow_forward, scene.flow_backward, scene.depth, scene.dynamic_mask])
        return _insert_frames(config, reader, asset, scene, out, timer, progress, scene_saves)
    finally:
        scene_writer.shutdown(wait=True)


def _insert_frames(
    config: InsertConfig,
    reader: VideoReader,
    asset: ObjectAsset,
    scene: Scene4D,
    out: Path,
    timer: StageTimer,
    progress: Progress,
    scene_saves: list[Future[None]],
) -> InsertResult:
    """Everything after the reconstruction: place, render, composite, write the outputs and, once the scene's
    background save (``scene_saves``) is done, the report."""
    from insertanywhere.conventions import PlacementError

    info = reader.info
    scene_dir = out / "scene"
    try:
        placed = place_object(config, scene, asset, timer, progress)
    except PlacementError as err:
        raise InputError(str(err)) from None
    renderer = FrameRenderer(placed, info.width, info.height)
    masks_dir, layers_dir, shadow_dir = out / "masks", out / "layers", out / "shadow"
    track_frames: list[TrackFrame] = []
    preview_at = set(_preview_indices(info.n_frames))
    previews: dict[int, dict[str, Any]] = {}
    vace_buffers: dict[str, list[np.ndarray]] = {"source": [], "control": [], "masks": [], "shadows": []}
    writer = None
    video_path = out / "inserted.mp4"
    if config.write_video:
        writer = VideoWriter(
            video_path, info.width, info.height, info.fps, crf=OUTPUT_CRF, preset=OUTPUT_PRESET
        ).__enter__()
    compositor, drawn_reference = _make_compositor(config, renderer) if config.write_video else (None, None)
    png_writers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="png")
    pending: list[Future[Path]] = []
    # Rendering a frame depends on nothing but the frame: RENDER_THREADS threads render ahead (numpy and
    # OpenCV release the GIL) while this thread composites in order (the compositor carries state over time).
    renderers = ThreadPoolExecutor(max_workers=RENDER_THREADS, thread_name_prefix="render")
    frames = enumerate(reader)
    in_flight: deque[tuple[int, np.ndarray, Future[dict[str, Any]]]] = deque()

    def render_ahead() -> None:
        while len(in_flight) < RENDER_LOOKAHEAD:
            item = next(frames, None)
            if item is None:
                return
            in_flight.append((item[0], item[1], renderers.submit(renderer.render, item[0], item[1])))

    try:
        render_ahead()
        while in_flight:
            t, frame, future = in_flight.popleft()
            with timer("render"):
                rendered = future.result()
            render_ahead()
            composited = None
            if config.write_video:
                with timer("composite"):
                    composited = renderer.composite(compositor, t, frame, rendered)
                if config.synth == "vace":
                    vace_buffers["source"].append(frame)
                    vace_buffers["control"].append(composited)
                    vace_buffers["masks"].append(rendered["alpha"] >= 0.5)
                    vace_buffers["shadows"].append(rendered["shadow"])
                else:
                    with timer("encode"):
                        writer.write(composited)
            with timer("write"):
                # PNG encoding releases the GIL: two writer threads keep it off the frame loop's path.
                shadow_u8 = np.clip(rendered["shadow"] * 255 + 0.5, 0, 255).astype(np.uint8)
                layer_rgba = _layer_rgba(rendered["layer"], rendered["alpha"])
                pending.append(png_writers.submit(write_sequence_frame, masks_dir, t, rendered["alpha"] >= 0.5))
                pending.append(png_writers.submit(write_sequence_frame, layers_dir, t, layer_rgba))
                pending.append(png_writers.submit(write_sequence_frame, shadow_dir, t, shadow_u8))
            track_frames.append(TrackFrame(t, scene.cameras[t], rendered["pose"], rendered["visible_fraction"]))
            if t in preview_at:
                previews[t] = {
                    "frame": composited if composited is not None else frame,
                    "mask": rendered["alpha"] >= 0.5,
                    "depth": _depth_with_object(scene.depth[t], rendered),
                    "shadow": rendered["shadow"],
                }
            progress("insert", t + 1, info.n_frames)
        if config.synth == "vace" and config.write_video:
            with timer("vace"):
                reference = asset.rgba if asset.rgba is not None else drawn_reference
                frames = _run_vace(config, reference, vace_buffers, progress)
            with timer("encode"):
                for frame_out in frames:
                    writer.write(frame_out)
            for t in previews:
                previews[t]["frame"] = frames[t]
        with timer("write"):
            for future in pending:
                future.result()  # re-raises a failed write
    except BaseException:
        if writer is not None:
            writer.__exit__(RuntimeError, RuntimeError("aborted"), None)
        raise
    finally:
        renderers.shutdown(wait=True, cancel_futures=True)
        png_writers.shutdown(wait=True, cancel_futures=True)
    if writer is not None:
        writer.__exit__(None, None, None)
    track = ObjectTrack(info.width, info.height, track_frames)
    write_json_atomic(out / "track.json", track.to_dict())
    preview_path = out / "preview.png"
    with timer("preview"):
        _write_preview(preview_path, previews)
    with timer("scene_save_wait"):
        for future in scene_saves:
            future.result()  # re-raises a failed save
    report = _report(config, info, scene, placed, timer, track_frames)
    write_json_atomic(out / "report.json", report)
    return InsertResult(
        out=out,
        inserted_video=video_path if config.write_video else None,
        masks_dir=masks_dir,
        layers_dir=layers_dir,
        shadow_dir=shadow_dir,
        scene_dir=scene_dir,
        track_path=out / "track.json",
        preview_path=preview_path,
        report_path=out / "report.json",
        report=report,
    )


def _vace_config(config: InsertConfig) -> Any:
    """The job's VaceConfig (``config.vace``, or the defaults with the object's name for the prompt)."""
    from insertanywhere.synth.vace import VaceConfig

    return config.vace or VaceConfig(object_name=Path(config.object_path).stem)


def _run_vace(
    config: InsertConfig, reference: np.ndarray, buffers: dict[str, list[np.ndarray]], progress: Progress
) -> np.ndarray:
    """(T, H, W, 3) uint8: the diffusion backend's video, given the composited control video."""
    from insertanywhere.synth.vace import synthesize_vace

    vace_config = _vace_config(config)
    return synthesize_vace(
        np.stack(buffers["source"]),
        np.stack(buffers["control"]),
        np.stack(buffers["masks"]),
        np.stack(buffers["shadows"]).astype(np.float32),
        reference,
        vace_config,
        progress=progress,
    )


def _depth_with_object(scene_depth: np.ndarray, rendered: dict[str, Any]) -> np.ndarray:
    depth = np.array(scene_depth, dtype=np.float32)
    visible = rendered["alpha"] >= 0.5
    depth[visible] = rendered["layer"].depth[visible]
    return depth


def _preview_indices(n_frames: int) -> list[int]:
    from insertanywhere.preview import preview_indices

    return preview_indices(n_frames)


def _write_preview(path: Path, previews: dict[int, dict[str, Any]]) -> None:
    from insertanywhere.preview import colorize_depth, contact_sheet, outline, shadow_overlay

    indices = sorted(previews)
    if not indices:
        return
    rows = [
        [outline(previews[t]["frame"], previews[t]["mask"]) for t in indices],
        [colorize_depth(previews[t]["depth"]) for t in indices],
        [shadow_overlay(previews[t]["frame"], previews[t]["shadow"]) for t in indices],
    ]
    labels = [[f"frame {t}" for t in indices], ["depth" for _ in indices], ["shadow" for _ in indices]]
    write_png(path, contact_sheet(rows, labels))


def _report(
    config: InsertConfig,
    info: Any,
    scene: Scene4D,
    placed: PlacedObject,
    timer: StageTimer,
    track_frames: list[TrackFrame],
) -> dict[str, Any]:
    scene_seconds = scene.meta.extra.get("seconds", {})
    azimuth, elevation = placed.light.angles(placed.anchor.support_plane.normal, scene.cameras[config.placement.frame])
    visible = [f.visible_fraction for f in track_frames]
    warnings = list(placed.warnings) + list(scene.meta.extra.get("warnings", []))
    if placed.propagation.tracked.mean() < 0.9 and placed.propagation.support_moves:
        warnings.append("the support was not seen in some frames; its motion there is extrapolated")
    extra: dict[str, Any] = {}
    if config.synth == "vace" and config.write_video:
        from insertanywhere.synth.vace import vace_report

        extra["vace"] = vace_report(_vace_config(config))
    return {
        "inputs": {
            "video": str(Path(config.video).resolve()),
            "object": str(Path(config.object_path).resolve()),
            "object_kind": placed.asset.kind,
            "placement": config.placement.to_dict(),
            "clip": info.to_dict(),
        },
        "backends": {**scene.meta.backends, "synth": config.synth, "propagation": config.propagation},
        "versions": _versions(),
        "seconds": {**{f"scene.{k}": v for k, v in scene_seconds.items()}, **timer.seconds},
        "seconds_total": float(sum(timer.seconds.values())),
        "camera_model": scene.meta.camera_model,
        "camera_model_reason": scene.meta.extra.get("camera_model_reason"),
        "units": scene.meta.units,
        "anchor": {
            "scale": placed.anchor.scale,
            "contact_world": placed.anchor.contact_world.tolist(),
            "support_normal_world": placed.anchor.support_plane.normal.tolist(),
            "support_samples": placed.anchor.support_pixels,
        },
        "support_moves": placed.propagation.support_moves,
        "motion_test": placed.propagation.motion_test,
        "light": {
            "azimuth_deg": azimuth,
            "elevation_deg": elevation,
            "strength": placed.light.strength,
            "source": placed.light.source,
        },
        "visible_fraction": {
            "mean": float(np.mean(visible)),
            "min": float(np.min(visible)),
            "fully_hidden_frames": [f.index for f in track_frames if f.visible_fraction < 0.01],
        },
        "warnings": warnings,
        **extra,
    }


def preview_frames(
    config: InsertConfig, indices: list[int], progress: Progress = null_progress
) -> dict[int, np.ndarray]:
    """Quick composites of a few frames (the page's live preview), reusing ``config.out/scene`` when present.

    Returns {frame index: (H, W, 3) uint8}.
    """
    from insertanywhere.conventions import PlacementError

    reader, asset = validate_inputs(config)
    out = prepare_output_dir(config.out, config.overwrite, inputs=(Path(config.video), Path(config.object_path)))
    scene = reconstruct_scene(config, out / "scene", progress)
    try:
        placed = place_object(config, scene, asset, StageTimer(), progress)
    except PlacementError as err:
        raise InputError(str(err)) from None
    renderer = FrameRenderer(placed, reader.info.width, reader.info.height)
    wanted = sorted({i for i in indices if 0 <= i < reader.info.n_frames} | {config.placement.frame})
    frames: dict[int, np.ndarray] = {}
    compositor, _ = _make_compositor(config, renderer)
    for t, frame in enumerate(reader):
        if t > wanted[-1]:
            break
        if t not in wanted:
            continue
        rendered = renderer.render(t, frame)
        frames[t] = renderer.composite(compositor, t, frame, rendered)
    return {t: frames[t] for t in sorted(frames) if t in indices}
