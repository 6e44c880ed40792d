"""The project's conventions, written once. Every module imports them from here.

Pure: numpy only, no I/O, no torch. Files are written by ``insertanywhere.io``.

Conventions (see docs/design.md):

* image: RGB ``uint8`` ``(H, W, 3)``; a clip is ``(T, H, W, 3)`` or a lazy reader.
* pixel coordinates ``(x, y)``: x right, y down, origin at the top-left pixel's
  *corner*; the centre of pixel ``(i, j)`` (column i, row j) is ``(i + 0.5, j + 0.5)``.
* camera: OpenCV pinhole, x right, y down, z forward; ``K`` ``(3, 3)`` in pixels
  and in the same pixel convention (so a centred principal point is ``(W/2, H/2)``).
* pose: ``cam_from_world`` ``(4, 4)`` float64 maps world points into the camera
  frame. Its inverse is ``world_from_cam``. Never store one under the other's name.
* object pose: ``world_from_object`` ``(4, 4)``. The object frame has its origin
  at the contact point (bottom centre of the object) and **+Y along the support
  normal, pointing away from the support** (``OBJECT_UP_AXIS``), the glTF
  convention, so a glTF mesh needs no axis change. The object's front faces +Z.
* depth: z-depth along the optical axis, ``float32``, scene units; 0 or nan = unknown.
* flow: ``(H, W, 2)`` ``float32`` displacement from frame t to t+1, ``(dx, dy)`` pixels.
* masks: ``bool`` in memory, ``uint8`` 0/255 PNG on disk.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal

import numpy as np

from insertanywhere.errors import InputError
from insertanywhere.upsampled import UpsampledStack

OBJECT_UP_AXIS = 1
"""Index of the object frame's axis along the support normal (+Y, pointing away from the support)."""

OBJECT_FRONT_AXIS = 2
"""Index of the object frame's axis the object's front faces (+Z); a card's picture faces +Z."""

Units = Literal["metric", "arbitrary"]
CameraModel = Literal["static", "rotation", "general"]


# ----------------------------------------------------------------------------- poses


def invert_pose(a_from_b: np.ndarray) -> np.ndarray:
    """Invert a rigid or similarity transform.

    Args:
        a_from_b: (4, 4) float64, maps points of frame b into frame a; the upper-left
            (3, 3) block may carry a uniform scale.

    Returns:
        (4, 4) float64 ``b_from_a``.
    """
    a_from_b = np.asarray(a_from_b, dtype=np.float64)
    linear = a_from_b[:3, :3]
    translation = a_from_b[:3, 3]
    inv_linear = np.linalg.inv(linear)
    b_from_a = np.eye(4)
    b_from_a[:3, :3] = inv_linear
    b_from_a[:3, 3] = -inv_linear @ translation
    return b_from_a


def transform_points(a_from_b: np.ndarray, points_b: np.ndarray) -> np.ndarray:
    """Apply a (4, 4) transform to points.

    Args:
        a_from_b: (4, 4) float64.
        points_b: (..., 3) points in frame b.

    Returns:
        (..., 3) float64 points in frame a.
    """
    points_b = np.asarray(points_b, dtype=np.float64)
    return points_b @ a_from_b[:3, :3].T + a_from_b[:3, 3]


def make_pose(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """Build a (4, 4) float64 transform from a (3, 3) rotation and a (3,) translation."""
    pose = np.eye(4)
    pose[:3, :3] = rotation
    pose[:3, 3] = translation
    return pose


def intrinsics_from_fov(width: int, height: int, fov_x_deg: float) -> np.ndarray:
    """Pinhole K (3, 3) float64 in pixels for a horizontal field of view, square pixels,
    principal point at the image centre ``(W/2, H/2)`` (pixel-corner origin)."""
    fx = 0.5 * width / math.tan(math.radians(fov_x_deg) / 2.0)
    return np.array([[fx, 0.0, width / 2.0], [0.0, fx, height / 2.0], [0.0, 0.0, 1.0]])


def pixel_centers(width: int, height: int) -> np.ndarray:
    """(H, W, 2) float64 pixel-centre coordinates ``(x + 0.5, y + 0.5)``."""
    xs = np.arange(width) + 0.5
    ys = np.arange(height) + 0.5
    grid_x, grid_y = np.meshgrid(xs, ys)
    return np.stack([grid_x, grid_y], axis=-1)


# ----------------------------------------------------------------------------- camera


@dataclass(frozen=True)
class Camera:
    """A pinhole camera in one frame.

    Attributes:
        K: (3, 3) float64 intrinsics in pixels (pixel-corner origin, see module doc).
        cam_from_world: (4, 4) float64, world points into this camera's frame
            (x right, y down, z forward).
    """

    K: np.ndarray
    cam_from_world: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "K", np.asarray(self.K, dtype=np.float64).reshape(3, 3))
        object.__setattr__(self, "cam_from_world", np.asarray(self.cam_from_world, dtype=np.float64).reshape(4, 4))

    @property
    def world_from_cam(self) -> np.ndarray:
        """(4, 4) float64 inverse of ``cam_from_world``."""
        return invert_pose(self.cam_from_world)

    @property
    def center_world(self) -> np.ndarray:
        """(3,) float64 camera centre in world coordinates."""
        return self.world_from_cam[:3, 3]

    def project(self, points_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project world points.

        Args:
            points_world: (N, 3) world coordinates.

        Returns:
            pixels (N, 2) float64 ``(x, y)`` with the pixel-corner origin, and
            depth (N,) float64 z in the camera frame (<= 0 means behind the camera).
        """
        points_cam = transform_points(self.cam_from_world, points_world)
        z = points_cam[..., 2]
        safe_z = np.where(np.abs(z) < 1e-12, 1e-12, z)
        uvw = points_cam @ self.K.T
        pixels = uvw[..., :2] / safe_z[..., None]
        return pixels, z

    def unproject(self, pixels: np.ndarray, depth: np.ndarray) -> np.ndarray:
        """Lift pixels with z-depth to world points.

        Args:
            pixels: (N, 2) ``(x, y)`` pixel-corner origin.
            depth: (N,) z-depth in scene units.

        Returns:
            (N, 3) float64 world points.
        """
        rays = self.pixel_rays_cam(pixels)
        points_cam = rays * np.asarray(depth, dtype=np.float64)[..., None]
        return transform_points(self.world_from_cam, points_cam)

    def pixel_rays_cam(self, pixels: np.ndarray) -> np.ndarray:
        """(N, 3) float64 camera-frame rays with z = 1 through ``pixels`` (N, 2)."""
        pixels = np.asarray(pixels, dtype=np.float64)
        ones = np.ones((*pixels.shape[:-1], 1))
        homogeneous = np.concatenate([pixels, ones], axis=-1)
        return homogeneous @ np.linalg.inv(self.K).T

    def to_dict(self) -> dict[str, Any]:
        return {"K": self.K.tolist(), "cam_from_world": self.cam_from_world.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Camera:
        """Parse ``{"K": 3x3, "cam_from_world": 4x4}``; raise InputError when a matrix is malformed."""
        _require_keys(data, ("K", "cam_from_world"), "a camera")
        try:
            K = np.array(data["K"], dtype=np.float64)
            cam_from_world = np.array(data["cam_from_world"], dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise InputError(f"a camera matrix is not numeric: {err}") from None
        if K.shape != (3, 3) or cam_from_world.shape != (4, 4):
            raise InputError(f"a camera needs K 3x3 and cam_from_world 4x4, got {K.shape} and {cam_from_world.shape}")
        if not (np.all(np.isfinite(K)) and np.all(np.isfinite(cam_from_world))):
            raise InputError("a camera matrix holds a non-finite number")
        return cls(K=K, cam_from_world=cam_from_world)


# ----------------------------------------------------------------------------- validation helpers


def _require_keys(data: Any, keys: tuple[str, ...], what: str) -> None:
    """Raise InputError naming the first missing key, so a hand-edited JSON file fails in one line."""
    if not isinstance(data, dict):
        raise InputError(f"{what} must be a JSON object, got {type(data).__name__}")
    for key in keys:
        if key not in data:
            raise InputError(f'{what} is missing "{key}"')


def _fps_from_float(value: float) -> Fraction:
    """An exact rate from a float: the NTSC rates (29.97... -> 30000/1001) when within 5e-4, else the nearest
    fraction with a denominator up to 1001."""
    for base in (24, 30, 48, 60, 120):
        ntsc = Fraction(base * 1000, 1001)
        if abs(value - float(ntsc)) < 5e-4:
            return ntsc
    return Fraction(value).limit_denominator(1001)


# ----------------------------------------------------------------------------- clip


@dataclass(frozen=True)
class ClipInfo:
    """What a clip is, without its pixels.

    Attributes:
        width, height: frame size in pixels after rotation metadata is applied.
        fps: frames per second as an exact fraction (average rate for VFR input).
        n_frames: number of decodable frames.
        rotation_deg: rotation metadata that the reader applied (0, 90, 180, 270).
    """

    width: int
    height: int
    fps: Fraction
    n_frames: int
    rotation_deg: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "width": self.width,
            "height": self.height,
            "fps": float(self.fps),
            "fps_fraction": [self.fps.numerator, self.fps.denominator],
            "n_frames": self.n_frames,
            "rotation_deg": self.rotation_deg,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClipInfo:
        _require_keys(data, ("width", "height", "n_frames"), "clip info")
        if "fps_fraction" in data:
            fps = Fraction(*data["fps_fraction"])
        elif "fps" in data:
            fps = _fps_from_float(float(data["fps"]))
        else:
            raise InputError('clip info needs "fps" or "fps_fraction"')
        return cls(
            int(data["width"]), int(data["height"]), fps, int(data["n_frames"]), int(data.get("rotation_deg", 0))
        )


# ----------------------------------------------------------------------------- placement


class PlacementError(InputError, ValueError):
    """A placement that cannot be used; the message says what is wrong and how to fix it.

    A UserError (the CLI prints one line, exit code 2) and, for older callers, a ValueError.
    """


@dataclass(frozen=True)
class Placement:
    """The user's one creative act: where the object stands in one frame.

    Attributes:
        frame: index of the frame the box is drawn in.
        box: ``(x0, y0, x1, y1)`` pixel box (pixel-corner origin) that the object's
            whole silhouette fills in that frame; its bottom centre is the contact point.
        yaw_deg: turn about the support normal, degrees, counter-clockwise seen from above.
    """

    frame: int
    box: tuple[float, float, float, float]
    yaw_deg: float = 0.0

    @property
    def contact_pixel(self) -> np.ndarray:
        """(2,) float64 ``(x, y)``: the bottom centre of the box."""
        x0, _, x1, y1 = self.box
        return np.array([(x0 + x1) / 2.0, y1])

    @property
    def box_size(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.box
        return (x1 - x0, y1 - y0)

    def validate(self, width: int, height: int, n_frames: int) -> Placement:
        """Check the placement against a clip; raise PlacementError with a fix otherwise."""
        values = [float(v) for v in self.box] + [float(self.yaw_deg)]
        if not all(math.isfinite(v) for v in values):
            raise PlacementError(f"placement has a non-finite number {values}; give finite pixel values")
        if not 0 <= self.frame < n_frames:
            raise PlacementError(
                f"placement frame {self.frame} is out of range: the clip has {n_frames} frames (0..{n_frames - 1})"
            )
        x0, y0, x1, y1 = self.box
        if x1 <= x0 or y1 <= y0:
            raise PlacementError(f"placement box {list(self.box)} is empty: give x0,y0,x1,y1 with x1 > x0 and y1 > y0")
        if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
            raise PlacementError(
                f"placement box {list(self.box)} is not inside the {width}x{height} frame; "
                f"keep 0 <= x0 < x1 <= {width} and 0 <= y0 < y1 <= {height}"
            )
        if (x1 - x0) < 2 or (y1 - y0) < 2:
            raise PlacementError(f"placement box {list(self.box)} is smaller than 2 pixels; draw a larger box")
        return self

    def to_dict(self) -> dict[str, Any]:
        return {"frame": int(self.frame), "box": [float(v) for v in self.box], "yaw_deg": float(self.yaw_deg)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Placement:
        """Parse ``{"frame": 0, "box": [x0, y0, x1, y1], "yaw_deg": 0.0}``; raise PlacementError if malformed."""
        if not isinstance(data, dict):
            raise PlacementError('placement must be a JSON object like {"frame": 0, "box": [x0, y0, x1, y1]}')
        box = data.get("box")
        if not isinstance(box, (list, tuple)) or len(box) != 4:
            raise PlacementError('placement needs "box": [x0, y0, x1, y1] with four numbers')
        try:
            box_values = tuple(float(v) for v in box)
            frame = int(data.get("frame", 0))
            yaw = float(data.get("yaw_deg", 0.0))
        except (TypeError, ValueError) as err:
            raise PlacementError(f"placement has a value that is not a number: {err}") from None
        if float(data.get("frame", 0)) != frame:
            raise PlacementError("placement frame must be a whole number")
        return cls(frame=frame, box=box_values, yaw_deg=yaw)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- scene


@dataclass
class SceneMeta:
    """``scene/scene.json`` exactly as docs/design.md pins it."""

    width: int
    height: int
    fps: float
    n_frames: int
    units: Units = "arbitrary"
    camera_model: CameraModel = "general"
    backends: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = {
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "n_frames": self.n_frames,
            "units": self.units,
            "camera_model": self.camera_model,
            "backends": dict(self.backends),
        }
        data.update(self.extra)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SceneMeta:
        pinned = {"width", "height", "fps", "n_frames", "units", "camera_model", "backends"}
        _require_keys(data, ("width", "height", "fps", "n_frames"), "scene.json")
        if data.get("units", "arbitrary") not in ("metric", "arbitrary"):
            raise InputError(f'scene.json "units" must be "metric" or "arbitrary", got {data["units"]!r}')
        if data.get("camera_model", "general") not in ("static", "rotation", "general"):
            raise InputError(
                f'scene.json "camera_model" must be "static", "rotation" or "general", got {data["camera_model"]!r}'
            )
        return cls(
            width=int(data["width"]),
            height=int(data["height"]),
            fps=float(data["fps"]),
            n_frames=int(data["n_frames"]),
            units=data.get("units", "arbitrary"),
            camera_model=data.get("camera_model", "general"),
            backends=dict(data.get("backends", {})),
            extra={k: v for k, v in data.items() if k not in pinned},
        )


@dataclass
class Scene4D:
    """The reconstructed 4D scene of one clip (static geometry, cameras and movers).

    The per-frame stacks are read frame by frame (``scene.depth[t]``). They may be numpy memmaps when
    loaded from disk, or ``upsampled.UpsampledStack``s: a reconstruction keeps them at its working
    resolution and makes a frame full size when it is read (bounded memory on long clips).

    Attributes:
        meta: the pinned ``scene.json``.
        cameras: one Camera per frame, all in one world frame and one unit.
        depth: (T, H, W) float32 z-depth of the *whole* frame (static and dynamic
            pixels), scene units, 0 = unknown.
        depth_confidence: (T, H, W) float16 (as reconstructed and as stored) or float32, in [0, 1].
        dynamic_mask: (T, H, W) bool, True where something moves independently of
            the camera.
        flow_forward: (T-1, H, W, 2) float32/float16, displacement t -> t+1 in pixels.
        flow_backward: (T-1, H, W, 2), displacement t+1 -> t, indexed by t.
        points_world: (N, 3) float64 static 3D points (triangulated tracks), or None.
        points_color: (N, 3) uint8 their colours, or None.
    """

    meta: SceneMeta
    cameras: list[Camera]
    depth: np.ndarray | UpsampledStack
    depth_confidence: np.ndarray | UpsampledStack
    dynamic_mask: np.ndarray | UpsampledStack
    flow_forward: np.ndarray | UpsampledStack | None = None
    flow_backward: np.ndarray | UpsampledStack | None = None
    points_world: np.ndarray | None = None
    points_color: np.ndarray | None = None

    @property
    def n_frames(self) -> int:
        return len(self.cameras)


# ----------------------------------------------------------------------------- object track


@dataclass
class TrackFrame:
    """One frame of ``track.json``: the camera and the object's pose.

    Attributes:
        index: frame index.
        camera: the frame's Camera.
        world_from_object: (4, 4) float64 (may carry a uniform scale: object units
            to scene units), or None when the object's pose is unknown.
        visible_fraction: share of the object's projected coverage that is visible.
    """

    index: int
    camera: Camera
    world_from_object: np.ndarray | None
    visible_fraction: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"index": int(self.index)}
        data.update(self.camera.to_dict())
        if self.world_from_object is not None:  # cameras.json frames carry no object
            data["world_from_object"] = np.asarray(self.world_from_object).tolist()
            data["visible_fraction"] = float(self.visible_fraction)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrackFrame:
        _require_keys(data, ("index", "K", "cam_from_world"), "a track frame")
        pose = data.get("world_from_object")
        return cls(
            index=int(data["index"]),
            camera=Camera.from_dict(data),
            world_from_object=None if pose is None else np.array(pose, dtype=np.float64),
            visible_fraction=float(data.get("visible_fraction", 1.0)),
        )


@dataclass
class ObjectTrack:
    """``track.json`` (and, without object poses, ``scene/cameras.json``): same schema.

    ``{"width", "height", "frames": [{"index", "K", "cam_from_world",
    "world_from_object", "visible_fraction"}]}``.
    """

    width: int
    height: int
    frames: list[TrackFrame]
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"width": self.width, "height": self.height}
        data.update(self.extra)
        data["frames"] = [f.to_dict() for f in self.frames]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ObjectTrack:
        _require_keys(data, ("width", "height", "frames"), "track/cameras JSON")
        extra = {k: v for k, v in data.items() if k not in {"width", "height", "frames"}}
        return cls(int(data["width"]), int(data["height"]), [TrackFrame.from_dict(f) for f in data["frames"]], extra)

    @classmethod
    def from_cameras(cls, width: int, height: int, cameras: list[Camera]) -> ObjectTrack:
        """The ``cameras.json`` form: no object poses."""
        return cls(width, height, [TrackFrame(i, cam, None) for i, cam in enumerate(cameras)])

    @property
    def cameras(self) -> list[Camera]:
        return [f.camera for f in self.frames]
