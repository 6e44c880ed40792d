"""What a synthetic scene is: rigid bodies moving per frame, textured primitives on them, the inserted
card, the cameras and the light. Pure data (numpy only); families.py builds them, raycast.py renders them.

World frame: metric (metres), right-handed, **z up**; the floor is the plane z = 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from insertanywhere.conventions import Camera, make_pose
from insertanywhere.data.synthetic.textures import MipTexture

WORLD_UP = np.array([0.0, 0.0, 1.0])
WORLD_AXES = {"x": "east (right of the frame-0 view when facing +y)", "y": "north", "z": "up", "units": "metres"}


@dataclass
class Body:
    """A rigid body: a pose per frame.

    Attributes:
        name: unique name ("static", "tray", "occluder", ...).
        world_from_body: (T, 4, 4) float64 pose per frame.
        dynamic: True if it moves independently of the camera (it appears in gt/dynamic).
    """

    name: str
    world_from_body: np.ndarray
    dynamic: bool = False


@dataclass
class Rect:
    """A textured rectangle in its body's frame: the plane z = 0 of ``body_from_rect``,
    x in ``x_range``, y in ``y_range`` (metres), normal +z; two-sided.

    Attributes:
        texture: its picture; texture u runs along +x, v runs along -y (top of the picture at y max).
        tile: (tile_w, tile_h) metres covered by one repeat of the texture, or None to stretch the
            picture once over the rectangle.
        cutout: use the texture's alpha channel as a binary (>= 0.5) hit test (a cut-out card).
        casts_shadow: whether shadow rays test it (room walls do not: light enters through them).
    """

    name: str
    body: str
    body_from_rect: np.ndarray
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    texture: MipTexture
    tile: tuple[float, float] | None = None
    cutout: bool = False
    casts_shadow: bool = True


@dataclass
class Box:
    """A textured box centred on the origin of ``body_from_box`` with ``half_extents`` (hx, hy, hz) metres.

    Attributes:
        texture_side, texture_top: pictures of the four vertical faces and of the top/bottom faces.
        tile: metres per texture repeat on every face.
    """

    name: str
    body: str
    body_from_box: np.ndarray
    half_extents: tuple[float, float, float]
    texture_side: MipTexture
    texture_top: MipTexture
    tile: float = 0.6
    casts_shadow: bool = True


@dataclass
class ObjectCard:
    """The inserted object: an upright cut-out card (conventions.py object frame: origin at the contact
    point, +Y up along the support normal, picture facing +Z, x in [-w/2, w/2], y in [0, h]).

    Attributes:
        texture: its RGBA picture (straight alpha) as a MipTexture.
        rgba_srgb: (h, w, 4) uint8 the same picture, written to object_texture.png.
        width_m, height_m: card size in metres.
        support_body: the body it stands on; it moves rigidly with it.
        body_from_object: (4, 4) float64 pose of the object frame in the support body's frame.
        description: e.g. "vase cut from coffee".
    """

    texture: MipTexture
    rgba_srgb: np.ndarray
    width_m: float
    height_m: float
    support_body: str
    body_from_object: np.ndarray
    description: str = ""


@dataclass(frozen=True)
class Light:
    """A directional sun plus a uniform ambient (sky) term; Lambertian shading.

    Attributes:
        direction: (3,) unit vector in world pointing TOWARD the light.
        sun_rgb: (3,) linear radiance scale of the sun at normal incidence.
        ambient_rgb: (3,) linear ambient radiance scale.
    """

    direction: tuple[float, float, float]
    sun_rgb: tuple[float, float, float]
    ambient_rgb: tuple[float, float, float]

    @property
    def azimuth_deg(self) -> float:
        """Azimuth of the light direction in the world xy-plane, degrees counter-clockwise from +x."""
        return math.degrees(math.atan2(self.direction[1], self.direction[0]))

    @property
    def elevation_deg(self) -> float:
        return math.degrees(math.asin(max(-1.0, min(1.0, self.direction[2]))))

    @classmethod
    def from_angles(
        cls, azimuth_deg: float, elevation_deg: float, sun_rgb: tuple[float, ...], ambient_rgb: tuple[float, ...]
    ) -> Light:
        az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
        direction = (math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el))
        return cls(direction, tuple(sun_rgb), tuple(ambient_rgb))  # type: ignore[arg-type]


@dataclass
class SceneDescription:
    """Everything needed to render one synthetic clip.

    Attributes:
        cameras: one Camera per frame (K in the pixel-corner convention).
        camera_model: what a reconstruction should find: "static" | "rotation" | "general".
        support_plane_body: (point, normal) of the object's support plane in its body frame.
    """

    family: str
    seed: int
    width: int
    height: int
    fps: float
    n_frames: int
    bodies: dict[str, Body]
    rects: list[Rect]
    boxes: list[Box]
    card: ObjectCard
    cameras: list[Camera]
    light: Light
    camera_model: str
    support_plane_body: tuple[np.ndarray, np.ndarray]
    texture_names: list[str] = field(default_factory=list)

    def world_from_object(self, frame: int) -> np.ndarray:
        """(4, 4) float64 object pose in frame ``frame``."""
        return self.bodies[self.card.support_body].world_from_body[frame] @ self.card.body_from_object

    def world_from(self, body: str, body_from_local: np.ndarray, frame: int) -> np.ndarray:
        """(4, 4) float64 pose of a primitive (given in ``body``'s frame) in the world at ``frame``."""
        return self.bodies[body].world_from_body[frame] @ body_from_local

    @property
    def support_moves(self) -> bool:
        return self.bodies[self.card.support_body].dynamic


def look_at(eye: np.ndarray, target: np.ndarray, roll_deg: float = 0.0) -> np.ndarray:
    """(4, 4) float64 ``cam_from_world`` of an OpenCV camera (x right, y down, z forward) at ``eye``
    looking at ``target`` (world, metres, z up), turned by ``roll_deg`` about its optical axis."""
    forward = np.asarray(target, float) - np.asarray(eye, float)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, WORLD_UP)
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    if roll_deg:
        c, s = math.cos(math.radians(roll_deg)), math.sin(math.radians(roll_deg))
        right, down = c * right + s * down, -s * right + c * down
    world_from_cam = make_pose(np.stack([right, down, forward], axis=1), np.asarray(eye, float))
    cam_from_world = np.eye(4)
    cam_from_world[:3, :3] = world_from_cam[:3, :3].T
    cam_from_world[:3, 3] = -world_from_cam[:3, :3].T @ world_from_cam[:3, 3]
    return cam_from_world


def rotation_z(angle_rad: float) -> np.ndarray:
    """(3, 3) rotation about world +z (counter-clockwise seen from above)."""
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def upright_frame(position: np.ndarray, facing_xy: np.ndarray) -> np.ndarray:
    """(4, 4) pose of an upright card frame (x right, +y = world up, +z = ``facing_xy`` made horizontal)
    at ``position`` (world, metres). Used for the object and for rectangles standing on the floor."""
    z_axis = np.array([facing_xy[0], facing_xy[1], 0.0], float)
    z_axis /= np.linalg.norm(z_axis)
    y_axis = WORLD_UP.copy()
    x_axis = np.cross(y_axis, z_axis)
    return make_pose(np.stack([x_axis, y_axis, z_axis], axis=1), np.asarray(position, float))


def ease(s: np.ndarray | float) -> np.ndarray:
    """Smooth 0 -> 1 ramp (cosine ease in/out) of s in [0, 1], for camera and body motion."""
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(s, 0.0, 1.0))
