"""Scene families: one builder per name, each a function of a seeded numpy Generator.

Every family shares one room (a textured floor, three walls with photo posters, crates behind the
object) and one inserted object (an upright cut-out card facing the frame-0 camera); the families differ
in how the camera, the support and the occluders move. Layout (world z up, metres): the camera looks
roughly along +y at the object spot near the origin; the back wall is at y = +4.5.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from insertanywhere.conventions import Camera, intrinsics_from_fov, invert_pose, make_pose, transform_points
from insertanywhere.data.synthetic.scene import (
    Body,
    Box,
    Light,
    ObjectCard,
    Rect,
    SceneDescription,
    ease,
    look_at,
    rotation_z,
    upright_frame,
)
from insertanywhere.data.synthetic.textures import (
    CRATE_TEXTURES,
    FLOOR_TEXTURES,
    POSTER_TEXTURES,
    WALL_TEXTURES,
    MipTexture,
    build_mip_texture,
    cutout_card_texture,
    photo_texture,
)

FPS = 24.0
BACK_WALL_Y = 4.5
SIDE_WALL_X = 4.5
WALL_HEIGHT = 4.5


@dataclass(frozen=True)
class FamilySpec:
    """A family: its name, what it shows, its default size and its builder."""

    name: str
    description: str
    default_size: tuple[int, int, int]  # (width, height, n_frames)
    build: Callable[[_Builder], SceneDescription]


class _Builder:
    """Accumulates bodies and primitives of one scene; ``rng`` draws every random choice, in order."""

    def __init__(self, family: str, seed: int, width: int, height: int, n_frames: int) -> None:
        self.family, self.seed = family, seed
        self.width, self.height, self.n_frames = width, height, n_frames
        self.rng = np.random.default_rng([seed, _family_salt(family)])
        self.s = np.linspace(0.0, 1.0, n_frames) if n_frames > 1 else np.zeros(1)
        self.bodies: dict[str, Body] = {"static": Body("static", np.tile(np.eye(4), (n_frames, 1, 1)), False)}
        self.rects: list[Rect] = []
        self.boxes: list[Box] = []
        self.texture_names: set[str] = set()
        self.fov_x_deg = float(self.rng.uniform(55.0, 65.0))

    # -- primitives -----------------------------------------------------------------
    def texture(self, name: str) -> MipTexture:
        self.texture_names.add(name)
        return photo_texture(name)

    def add_body(self, name: str, world_from_body: np.ndarray, dynamic: bool) -> str:
        self.bodies[name] = Body(name, np.asarray(world_from_body, float), dynamic)
        return name

    def add_box(
        self, name: str, center: np.ndarray, half: tuple[float, float, float], yaw: float = 0.0,
        body: str = "static", side: str | None = None, top: str | None = None, tile: float = 0.6,
    ) -> Box:  # fmt: skip
        side = side or str(self.rng.choice(CRATE_TEXTURES))
        top = top or str(self.rng.choice(CRATE_TEXTURES))
        box = Box(name, body, make_pose(rotation_z(yaw), center), half, self.texture(side), self.texture(top), tile)
        self.boxes.append(box)
        return box

    def build_room(self) -> None:
        """Floor, three walls (they cast no shadow: light enters over them), posters and crates behind."""
        rng = self.rng
        floor = str(rng.choice(FLOOR_TEXTURES))
        self.rects.append(
            Rect("floor", "static", np.eye(4), (-8.0, 8.0), (-8.0, 8.0), self.texture(floor), (1.2, 1.2),
                 casts_shadow=False)
        )  # fmt: skip
        walls = [
            ("wall_back", np.array([0.0, BACK_WALL_Y, 0.0]), np.array([0.0, -1.0]), SIDE_WALL_X),
            ("wall_left", np.array([-SIDE_WALL_X, 0.0, 0.0]), np.array([1.0, 0.0]), 8.0),
            ("wall_right", np.array([SIDE_WALL_X, 0.0, 0.0]), np.array([-1.0, 0.0]), 8.0),
        ]
        for name, position, facing, half_width in walls:
            texture = self.texture(str(rng.choice(WALL_TEXTURES)))
            pose = upright_frame(position, facing)
            self.rects.append(
                Rect(name, "static", pose, (-half_width, half_width), (0.0, WALL_HEIGHT), texture, (1.6, 1.6),
                     casts_shadow=False)
            )  # fmt: skip
            for k in range(int(rng.integers(1, 3))):
                poster = str(rng.choice(POSTER_TEXTURES))
                size_w = float(rng.uniform(0.8, 1.4))
                size_h = size_w * float(rng.uniform(0.6, 1.0))
                along = float(rng.uniform(-half_width + 1.0, half_width - 1.0 - size_w)) if half_width < 5 else (
                    float(rng.uniform(-3.0, 2.0)))  # fmt: skip
                center_height = float(rng.uniform(1.2, 2.4))
                offset = position.copy()
                offset[:2] += facing * 0.02
                poster_pose = pose.copy()
                poster_pose[:3, 3] = offset
                self.rects.append(
                    Rect(f"{name}_poster{k}", "static", poster_pose, (along, along + size_w),
                         (center_height - size_h / 2, center_height + size_h / 2), self.texture(poster), None,
                         casts_shadow=False)
                )  # fmt: skip
        for k in range(int(rng.integers(2, 5))):
            half = (float(rng.uniform(0.2, 0.5)), float(rng.uniform(0.2, 0.5)), float(rng.uniform(0.2, 0.6)))
            center = np.array([rng.uniform(-3.2, 3.2), rng.uniform(1.6, BACK_WALL_Y - 0.8), half[2]])
            self.add_box(f"crate{k}", center, half, yaw=float(rng.uniform(0, math.pi)))

    def add_table(self, spot_xy: np.ndarray) -> tuple[str, np.ndarray]:
        """A static table-like block under the object spot; returns (body, contact point in world)."""
        height = float(self.rng.uniform(0.45, 0.75))
        half = (float(self.rng.uniform(0.5, 0.7)), float(self.rng.uniform(0.35, 0.45)), height / 2)
        top = str(self.rng.choice(["page", "text", "concrete", "coins"]))
        self.add_box("table", np.array([spot_xy[0], spot_xy[1], height / 2]), half, top=top)
        offset = self.rng.uniform(-0.1, 0.1, size=2)
        return "static", np.array([spot_xy[0] + offset[0], spot_xy[1] + offset[1], height])

    # -- the object --------------------------------------------------------------------
    def make_card(self, support_body: str, contact_world: np.ndarray, camera0_center: np.ndarray) -> ObjectCard:
        """The cut-out card at ``contact_world`` (frame 0), its picture facing the frame-0 camera centre."""
        rgba, shape_name, photo_name, aspect = cutout_card_texture(self.rng)
        self.texture_names.add(photo_name)
        height_m = float(self.rng.uniform(0.4, 0.55))
        width_m = height_m / aspect
        facing = camera0_center[:2] - contact_world[:2]
        world_from_object0 = upright_frame(contact_world, facing)
        body_from_object = invert_pose(self.bodies[support_body].world_from_body[0]) @ world_from_object0
        return ObjectCard(
            build_mip_texture(f"{shape_name}:{photo_name}", rgba), rgba, width_m, height_m, support_body,
            body_from_object, f"{shape_name} cut from skimage.data.{photo_name}",
        )  # fmt: skip

    # -- cameras and light ------------------------------------------------------------------
    def intrinsics(self) -> np.ndarray:
        return intrinsics_from_fov(self.width, self.height, self.fov_x_deg)

    def orbit_eye(self, target: np.ndarray, radius: float, azimuth_deg: float, height: float) -> np.ndarray:
        """Camera centre at ``radius`` from ``target`` horizontally, ``azimuth_deg`` = 0 on the -y side."""
        a = math.radians(azimuth_deg)
        return np.array([target[0] + radius * math.sin(a), target[1] - radius * math.cos(a), height])

    def cameras_looking_at(self, eyes: np.ndarray, targets: np.ndarray) -> list[Camera]:
        K = self.intrinsics()
        return [Camera(K, look_at(e, t)) for e, t in zip(eyes, targets, strict=True)]

    def cameras_fixed_rotation(self, eyes: np.ndarray, look_target: np.ndarray) -> list[Camera]:
        """Cameras translating along ``eyes`` with the frame-0 orientation (pure translation)."""
        K = self.intrinsics()
        cam0 = look_at(eyes[0], look_target)
        cameras = []
        for eye in eyes:
            cam_from_world = cam0.copy()
            cam_from_world[:3, 3] = -cam0[:3, :3] @ eye
            cameras.append(Camera(K, cam_from_world))
        return cameras

    def light(
        self,
        camera0_center: np.ndarray,
        spot: np.ndarray,
        elevation_range: tuple[float, float] = (35.0, 55.0),
        dim: bool = False,
    ) -> Light:
        """Sun on the camera's side, 30-55 degrees off the view direction, so the shadow falls beside the object."""
        to_camera = camera0_center[:2] - spot[:2]
        base = math.degrees(math.atan2(to_camera[1], to_camera[0]))
        azimuth = base + float(self.rng.choice([-1.0, 1.0])) * float(self.rng.uniform(30.0, 55.0))
        elevation = float(self.rng.uniform(*elevation_range))
        if dim:
            return Light.from_angles(azimuth, elevation, (0.42, 0.3, 0.2), (0.05, 0.06, 0.09))
        return Light.from_angles(azimuth, elevation, (0.95, 0.92, 0.85), (0.28, 0.3, 0.34))

    def finish(
        self, card: ObjectCard, cameras: list[Camera], light: Light, camera_model: str, support_point_body: np.ndarray
    ) -> SceneDescription:
        return SceneDescription(
            family=self.family, seed=self.seed, width=self.width, height=self.height, fps=FPS,
            n_frames=self.n_frames, bodies=self.bodies, rects=self.rects, boxes=self.boxes, card=card,
            cameras=cameras, light=light, camera_model=camera_model,
            support_plane_body=(np.asarray(support_point_body, float), np.array([0.0, 0.0, 1.0])),
            texture_names=sorted(self.texture_names),
        )  # fmt: skip


def _family_salt(family: str) -> int:
    """A stable integer per family name (Python's hash() is salted per process)."""
    return int.from_bytes(family.encode("utf-8")[:8].ljust(8, b"\0"), "little")


# ----------------------------------------------------------------------------- shared layouts


def _spot_and_camera(
    b: _Builder, radius_range: tuple[float, float] = (1.8, 2.3)
) -> tuple[np.ndarray, float, float, float]:
    """Object spot on the floor plan, and the frame-0 camera's radius, azimuth and height."""
    spot_xy = np.array([b.rng.uniform(-0.4, 0.4), b.rng.uniform(-0.2, 0.4)])
    radius = float(b.rng.uniform(*radius_range))
    azimuth = float(b.rng.uniform(-15.0, 15.0))
    height = float(b.rng.uniform(1.25, 1.6))
    return spot_xy, radius, azimuth, height


def _look_target(contact: np.ndarray, card_height: float = 0.4) -> np.ndarray:
    return contact + np.array([0.0, 0.0, 0.45 * card_height])


def _build_table_scene(b: _Builder, camera_path: str) -> SceneDescription:
    """static / pan / dolly / orbit: the object on a table, only the camera moves."""
    b.build_room()
    spot_xy, radius, azimuth, height = _spot_and_camera(b)
    body, contact = b.add_table(spot_xy)
    target = _look_target(contact)
    eye0 = b.orbit_eye(target, radius, azimuth, height)
    card = b.make_card(body, contact, eye0)
    T, s = b.n_frames, b.s
    if camera_path == "static":
        cameras = b.cameras_looking_at(np.tile(eye0, (T, 1)), np.tile(target, (T, 1)))
        model = "static"
    elif camera_path == "pan":
        sweep = math.radians(float(b.rng.choice([-1.0, 1.0]) * b.rng.uniform(12.0, 20.0)))
        targets = [eye0 + rotation_z(sweep * float(e)) @ (target - eye0) for e in ease(s)]
        cameras = b.cameras_looking_at(np.tile(eye0, (T, 1)), np.array(targets))
        model = "rotation"
    elif camera_path == "dolly":
        forward = (target - eye0) * np.array([1.0, 1.0, 0.0])
        forward /= np.linalg.norm(forward)
        lateral = np.cross(forward, [0.0, 0.0, 1.0])
        sideways = b.rng.uniform(0.5, 0.8) * b.rng.choice([-1.0, 1.0]) * lateral
        travel = sideways + b.rng.uniform(0.2, 0.4) * forward
        eyes = eye0 + ease(s)[:, None] * travel
        # Aim against half the sideways travel, so the object crosses the frame's centre mid-clip
        # instead of leaving the frame at the end (the orientation stays fixed: pure translation).
        cameras = b.cameras_fixed_rotation(eyes, target - 0.5 * sideways)
        model = "general"
    elif camera_path == "orbit":
        sweep = float(b.rng.choice([-1.0, 1.0]) * b.rng.uniform(30.0, 40.0))
        eyes = np.array([b.orbit_eye(target, radius, azimuth + sweep * float(e), height) for e in ease(s)])
        cameras = b.cameras_looking_at(eyes, np.tile(target, (T, 1)))
        model = "general"
    else:  # pragma: no cover - family table below is fixed
        raise ValueError(camera_path)
    return b.finish(card, cameras, b.light(eye0, contact), model, contact)


def _moving_occluder(
    b: _Builder, eyes: np.ndarray, contact: np.ndarray, card: ObjectCard, lateral_dir: np.ndarray
) -> None:
    """A tall panel that crosses the line of sight at 45 % of the distance at constant speed, centred on
    the middle of the clip, wide enough to hide the object completely for about a third of its crossing
    and clear of the object's silhouette at the start.

    Args:
        eyes: (T, 3) camera centres (world, metres); contact: (3,) the object's contact point at mid-clip;
        lateral_dir: (3,) horizontal unit direction the panel moves along.
    """
    eye0 = eyes[0]
    distance = float(np.linalg.norm((contact - eye0)[:2]))
    fraction = 0.45
    depth = fraction * distance
    object_width_there = card.width_m * fraction
    camera_drift = float(np.max(np.linalg.norm(eyes - eye0, axis=1))) * (1.0 - fraction)
    half_w = 0.5 * (3.2 * object_width_there + 0.12) + camera_drift
    thickness = 0.08
    top_world = contact[2] + card.height_m
    # The panel must reach above the object's top as seen from the camera: a point at height z at depth
    # `depth` lines up with height z' at `distance` when (h_cam - z)/depth = (h_cam - z')/distance.
    panel_top = eye0[2] - (eye0[2] - top_world) * fraction + 0.25
    panel_top = max(panel_top, top_world * fraction + 0.3)
    travel = half_w + 0.5 * object_width_there + camera_drift + thickness + 0.08
    _crossing_box(b, "occluder_panel", eye0, contact, depth, (half_w, thickness, panel_top), travel, lateral_dir)


def _crossing_box(
    b: _Builder,
    name: str,
    eye0: np.ndarray,
    contact: np.ndarray,
    depth: float,
    size: tuple[float, float, float],
    travel: float,
    lateral_dir: np.ndarray,
    centre_s: float = 0.5,
) -> None:
    """A poster-covered box standing on the floor that crosses the line of sight from ``eye0`` to ``contact``
    at ``depth`` (metres along it), moving along ``lateral_dir`` at constant speed, by ``travel`` per half
    clip, on the line of sight at clip time ``centre_s`` (0 = first frame, 1 = last).

    Args:
        size: (half width, thickness, height) in metres.
    """
    half_w, thickness, height = size
    distance = float(np.linalg.norm((contact - eye0)[:2]))
    ray_xy = (contact - eye0)[:2] / distance
    center0 = np.array([eye0[0] + ray_xy[0] * depth, eye0[1] + ray_xy[1] * depth, height / 2])
    yaw = math.atan2(ray_xy[1], ray_xy[0]) - math.pi / 2  # the box's local x along the lateral direction
    positions = [make_pose(rotation_z(yaw), center0 + lateral_dir * travel * 2.0 * (s - centre_s)) for s in b.s]
    body = b.add_body("occluder", np.array(positions), dynamic=True)
    poster = str(b.rng.choice(POSTER_TEXTURES))
    b.add_box(name, np.zeros(3), (half_w, thickness / 2, height / 2), body=body, side=poster, top=poster, tile=0.7)


def _horizontal_lateral(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    forward = (target - eye) * np.array([1.0, 1.0, 0.0])
    forward /= np.linalg.norm(forward)
    return np.cross(forward, [0.0, 0.0, 1.0])  # camera's right, horizontal


def _build_moving_occluder(b: _Builder) -> SceneDescription:
    b.build_room()
    spot_xy, radius, azimuth, height = _spot_and_camera(b)
    body, contact = b.add_table(spot_xy)
    target = _look_target(contact)
    eye0 = b.orbit_eye(target, radius, azimuth, height)
    card = b.make_card(body, contact, eye0)
    lateral = _horizontal_lateral(eye0, target)
    eyes = eye0 + ease(b.s)[:, None] * lateral * float(b.rng.uniform(-0.12, 0.12))
    direction = float(b.rng.choice([-1.0, 1.0]))
    _moving_occluder(b, eyes, contact, card, lateral * direction)
    cameras = b.cameras_looking_at(eyes, np.tile(target, (b.n_frames, 1)))
    return b.finish(card, cameras, b.light(eye0, contact), "general", contact)


def _build_static_occluder(b: _Builder) -> SceneDescription:
    """A post in front of the object, beside it in frame 0; the camera trucks sideways so that by the last
    frame the post hides the lower ~45 % of the object's width (parallax: near things shift more)."""
    b.build_room()
    spot_xy, radius, azimuth, height = _spot_and_camera(b)
    body, contact = b.add_table(spot_xy)
    target = _look_target(contact)
    eye0 = b.orbit_eye(target, radius, azimuth, height)
    card = b.make_card(body, contact, eye0)
    side = float(b.rng.choice([-1.0, 1.0]))  # +1: post on the camera's right, camera moves right
    lateral = _horizontal_lateral(eye0, target)
    K = b.intrinsics()
    cam0_from_world = look_at(eye0, target)
    distance = float(np.linalg.norm((contact - eye0)[:2]))
    fraction = float(b.rng.uniform(0.5, 0.6))
    ray_xy = (contact - eye0)[:2] / distance
    covered_height = contact[2] + card.height_m * float(b.rng.uniform(0.45, 0.6))
    post_top = eye0[2] - (eye0[2] - covered_height) * fraction
    half = (0.12, 0.12, post_top / 2)
    world_from_object = b.bodies[body].world_from_body[0] @ card.body_from_object
    card_corners = transform_points(
        world_from_object,
        np.array([[-card.width_m / 2, 0, 0], [card.width_m / 2, 0, 0],
                  [-card.width_m / 2, card.height_m, 0], [card.width_m / 2, card.height_m, 0]]),
    )  # fmt: skip

    def post_corners(offset: float) -> np.ndarray:
        center = np.array([eye0[0] + ray_xy[0] * distance * fraction, eye0[1] + ray_xy[1] * distance * fraction, 0])
        center += lateral * offset
        signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (0, 2)], float)
        return center + signs * np.array(half)

    def overlap(offset: float, shift: float) -> float:
        """Share of the object's image width the post covers (signed: < 0 is a gap), camera moved by shift."""
        cam_from_world = cam0_from_world.copy()
        cam_from_world[:3, 3] = -cam0_from_world[:3, :3] @ (eye0 + lateral * shift)
        camera = Camera(K, cam_from_world)
        obj_x = camera.project(card_corners)[0][:, 0]
        post_x = camera.project(post_corners(offset))[0][:, 0]
        width = obj_x.max() - obj_x.min()
        if side > 0:
            return (obj_x.max() - post_x.min()) / width
        return (post_x.max() - obj_x.min()) / width

    offset = _bisect(lambda o: overlap(o, 0.0) + 0.12, side * 0.05, side * 2.0)
    shift = _bisect(lambda d: overlap(offset, d) - 0.45, 0.0, side * 2.0)
    eyes = eye0 + ease(b.s)[:, None] * lateral * shift
    post_center = post_corners(offset).mean(axis=0)
    b.add_box("post", post_center, half)
    cameras = b.cameras_fixed_rotation(eyes, target)
    return b.finish(card, cameras, b.light(eye0, contact), "general", contact)


def _bisect(function: Callable[[float], float], a: float, b: float, steps: int = 40) -> float:
    """A root of ``function`` between ``a`` and ``b`` (it changes sign there) by bisection."""
    fa = function(a)
    for _ in range(steps):
        mid = 0.5 * (a + b)
        fm = function(mid)
        if (fm > 0) == (fa > 0):
            a, fa = mid, fm
        else:
            b = mid
    return 0.5 * (a + b)


def _cart_body(
    b: _Builder,
    start_xy: np.ndarray,
    travel_xy: np.ndarray,
    turn_deg: float,
    name: str = "cart",
    progress: np.ndarray | None = None,
) -> tuple[str, np.ndarray]:
    """A cart (a box on the floor) translating by ``travel_xy`` and turning by ``turn_deg``.

    Args:
        progress: (T,) share of the way done at each frame (default: eased over the whole clip).
    """
    height = float(b.rng.uniform(0.35, 0.55))
    yaw0 = float(b.rng.uniform(0, math.pi))
    poses = []
    for e in ease(b.s) if progress is None else progress:
        xy = start_xy + e * travel_xy
        poses.append(make_pose(rotation_z(yaw0 + math.radians(turn_deg) * e), np.array([xy[0], xy[1], 0.0])))
    body = b.add_body(name, np.array(poses), dynamic=True)
    half = (float(b.rng.uniform(0.3, 0.4)), float(b.rng.uniform(0.25, 0.3)), height / 2)
    b.add_box(f"{name}_box", np.array([0.0, 0.0, height / 2]), half, body=body)
    return body, np.array([start_xy[0], start_xy[1], height])


def _build_moving_support(b: _Builder) -> SceneDescription:
    b.build_room()
    spot_xy, radius, azimuth, height = _spot_and_camera(b)
    travel = b.rng.uniform(0.4, 0.7) * np.array([b.rng.choice([-1.0, 1.0]), b.rng.uniform(-0.3, 0.5)])
    turn = float(b.rng.choice([-1.0, 1.0]) * b.rng.uniform(20.0, 35.0))
    body, contact = _cart_body(b, spot_xy, travel, turn)
    mid_target = _look_target(contact) + np.array([travel[0] / 2, travel[1] / 2, 0.0])
    eye0 = b.orbit_eye(mid_target, radius, azimuth, height)
    card = b.make_card(body, contact, eye0)
    lateral = _horizontal_lateral(eye0, mid_target)
    eyes = eye0 + ease(b.s)[:, None] * (lateral * float(b.rng.uniform(-0.25, 0.25)) + np.array([0, 0, 0.05]))
    cameras = b.cameras_looking_at(eyes, np.tile(mid_target, (b.n_frames, 1)))
    plane_point_body = invert_pose(b.bodies[body].world_from_body[0]) @ np.append(contact, 1.0)
    return b.finish(card, cameras, b.light(eye0, contact), "general", plane_point_body[:3])


def _build_low_light(b: _Builder) -> SceneDescription:
    """The object on the floor under a low, dim, warm sun (elevation 10-14 degrees): a long shadow."""
    b.build_room()
    spot_xy, radius, azimuth, height = _spot_and_camera(b, radius_range=(2.0, 2.5))
    contact = np.array([spot_xy[0], spot_xy[1], 0.0])
    target = _look_target(contact)
    eye0 = b.orbit_eye(target, radius, azimuth, height)
    card = b.make_card("static", contact, eye0)
    lateral = _horizontal_lateral(eye0, target)
    eyes = eye0 + ease(b.s)[:, None] * lateral * float(b.rng.choice([-1.0, 1.0]) * b.rng.uniform(0.2, 0.4))
    cameras = b.cameras_looking_at(eyes, np.tile(target, (b.n_frames, 1)))
    light = b.light(eye0, contact, elevation_range=(10.0, 14.0), dim=True)
    return b.finish(card, cameras, light, "general", contact)


DEMO_CART_UNTIL = 0.45
"""The demo's cart rolls during the first 45% of the clip; the post then crosses (on the line of sight at 72%),
so the object is first carried, then hidden, each in plain view of the tracker."""
DEMO_POST_AT = 0.72


def _build_demo(b: _Builder) -> SceneDescription:
    """Moving camera (a short orbit), a cart carrying the object, and a post walking across in front."""
    b.build_room()
    spot_xy, radius, azimuth, height = _spot_and_camera(b)
    travel = b.rng.uniform(0.3, 0.5) * np.array([b.rng.choice([-1.0, 1.0]), b.rng.uniform(-0.2, 0.3)])
    rolling = ease(np.clip(b.s / DEMO_CART_UNTIL, 0.0, 1.0))
    body, contact = _cart_body(b, spot_xy, travel, float(b.rng.choice([-1.0, 1.0]) * 25.0), progress=rolling)
    mid_target = _look_target(contact) + np.array([travel[0] / 2, travel[1] / 2, 0.0])
    eye0 = b.orbit_eye(mid_target, radius, azimuth, height)
    card = b.make_card(body, contact, eye0)
    sweep = float(b.rng.choice([-1.0, 1.0]) * 12.0)
    eyes = np.array([b.orbit_eye(mid_target, radius, azimuth + sweep * float(e), height) for e in ease(b.s)])
    lateral = _horizontal_lateral(eye0, mid_target)
    # The post crosses once the cart has stopped; aim at the object's position then.
    late = round(DEMO_POST_AT * (b.n_frames - 1))
    contact_late = transform_points(b.bodies[body].world_from_body[late] @ card.body_from_object, np.zeros((1, 3)))[0]
    _passing_post(b, eyes, contact_late, card, lateral * float(b.rng.choice([-1.0, 1.0])), centre_s=DEMO_POST_AT)
    cameras = b.cameras_looking_at(eyes, np.tile(mid_target, (b.n_frames, 1)))
    plane_point_body = invert_pose(b.bodies[body].world_from_body[0]) @ np.append(contact, 1.0)
    return b.finish(card, cameras, b.light(eye0, contact), "general", plane_point_body[:3])


def _passing_post(
    b: _Builder,
    eyes: np.ndarray,
    contact: np.ndarray,
    card: ObjectCard,
    lateral_dir: np.ndarray,
    centre_s: float = 0.5,
) -> None:
    """A person-sized post walking across the line of sight at 70 % of the distance, a little wider than the
    object there: it hides the object for a few frames while most of the frame stays visible (the demo's
    occluder; ``_moving_occluder`` is the harder, frame-filling panel of the moving_occluder family).

    Args:
        eyes: (T, 3) camera centres (world, metres); contact: (3,) the object's contact point when the post
            is on its line of sight;
        lateral_dir: (3,) horizontal unit direction the post moves along.
    """
    eye0 = eyes[0]
    distance = float(np.linalg.norm((contact - eye0)[:2]))
    fraction = 0.7
    depth = fraction * distance
    half_w = 0.5 * (1.6 * card.width_m * fraction + 0.06)
    thickness = 0.12
    top_world = contact[2] + card.height_m
    post_top = max(eye0[2] - (eye0[2] - top_world) * fraction + 0.15, top_world + 0.2)
    travel = 2.5 * half_w + card.width_m
    _crossing_box(
        b, "occluder_post", eye0, contact, depth, (half_w, thickness, post_top), travel, lateral_dir, centre_s
    )


FAMILIES: dict[str, FamilySpec] = {
    spec.name: spec
    for spec in [
        FamilySpec("static", "static camera, static scene", (832, 480, 49), lambda b: _build_table_scene(b, "static")),
        FamilySpec("pan", "tripod pan (pure rotation, 12-20 degrees)", (832, 480, 49),
                   lambda b: _build_table_scene(b, "pan")),
        FamilySpec("dolly", "camera translating sideways and forward, fixed orientation", (832, 480, 49),
                   lambda b: _build_table_scene(b, "dolly")),
        FamilySpec("orbit", "30-40 degree orbit around the object spot (strong parallax)", (832, 480, 49),
                   lambda b: _build_table_scene(b, "orbit")),
        FamilySpec("moving_occluder", "a panel passes in front, hiding the object completely for several frames",
                   (832, 480, 49), _build_moving_occluder),
        FamilySpec("static_occluder", "a static post comes partly in front of the object as the camera trucks",
                   (832, 480, 49), _build_static_occluder),
        FamilySpec("moving_support", "the object rides a cart that translates and turns; camera drifts",
                   (832, 480, 49), _build_moving_support),
        FamilySpec("low_light", "dim warm light, low sun (10-14 degrees), long shadow", (832, 480, 49),
                   _build_low_light),
        FamilySpec("demo", "orbiting camera + object on a moving cart + a post crossing in front",
                   (320, 192, 25), _build_demo),
    ]
}  # fmt: skip

SMALL_SIZE = (160, 96, 9)


def build_scene(family: str, seed: int, width: int, height: int, n_frames: int) -> SceneDescription:
    """The SceneDescription of ``family`` for ``seed`` at the given size (family must be in FAMILIES)."""
    builder = _Builder(family, seed, width, height, n_frames)
    return FAMILIES[family].build(builder)
