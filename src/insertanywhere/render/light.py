"""The scene's dominant light: a directional light plus ambient, and how to get it.

Angle convention (``Light.from_angles``, the CLI's ``--light AZIMUTH,ELEVATION``):

* both angles are measured about the *support plane* (normal ``n`` pointing up, away from the support);
* elevation: degrees above the support plane (90 = straight overhead, 0 = grazing);
* azimuth: degrees in the support plane, the direction the light comes *from*, measured from the camera's
  side: 0 = from behind the camera (the object is front-lit, its shadow falls away from the camera),
  90 = from the camera's right (the shadow falls to the left in the image), 180 = facing the camera
  (back-lit, the shadow falls toward the camera), 270 = from the left.

The in-plane axes are the camera's viewing direction and its x axis (image right), both projected into
the support plane, so "right" means right in the picture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from insertanywhere.conventions import Camera
from insertanywhere.errors import InputError


@dataclass(frozen=True)
class Light:
    """A directional light plus ambient light.

    Attributes:
        direction_world: (3,) float64 unit vector pointing from the scene TOWARD the light.
        strength: in [0, 1], the share of the light that comes from the direction (the rest is ambient):
            a surface facing the light gets 1, one turned away gets ``1 - strength``; a cast shadow blocks
            ``strength`` of the light.
        softness: penumbra growth, the light's angular radius in radians (a cast shadow's blur radius is
            ``softness * distance from the occluder to the ground``).
        source: how it was obtained ("user", "estimated:shading", "default"), for reports.
    """

    direction_world: np.ndarray
    strength: float = 0.6
    softness: float = 0.05
    source: str = "default"

    def __post_init__(self) -> None:
        direction = np.asarray(self.direction_world, np.float64).reshape(3)
        norm = np.linalg.norm(direction)
        if not np.isfinite(norm) or norm < 1e-12:
            raise InputError(f"light direction {direction.tolist()} is not a direction; give a non-zero vector")
        object.__setattr__(self, "direction_world", direction / norm)
        object.__setattr__(self, "strength", float(np.clip(self.strength, 0.0, 1.0)))
        object.__setattr__(self, "softness", float(max(self.softness, 0.0)))

    @classmethod
    def from_angles(
        cls,
        azimuth_deg: float,
        elevation_deg: float,
        support_normal_world: np.ndarray,
        camera: Camera,
        strength: float = 0.6,
        softness: float = 0.05,
        source: str = "user",
    ) -> Light:
        """A light from its azimuth and elevation about the support plane (convention in the module doc).

        Args:
            azimuth_deg: degrees, 0 = from behind the camera, 90 = from the camera's right.
            elevation_deg: degrees above the support plane, in (0, 90].
            support_normal_world: (3,) unit normal of the support, pointing up.
            camera: the camera that defines "behind" and "right".
        """
        forward, right, normal = plane_axes(support_normal_world, camera)
        az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
        toward_light = math.cos(el) * (math.cos(az) * -forward + math.sin(az) * right) + math.sin(el) * normal
        return cls(toward_light, strength=strength, softness=softness, source=source)

    def angles(self, support_normal_world: np.ndarray, camera: Camera) -> tuple[float, float]:
        """(azimuth_deg in [0, 360), elevation_deg) of this light, inverse of ``from_angles``."""
        forward, right, normal = plane_axes(support_normal_world, camera)
        d = self.direction_world
        elevation = math.degrees(math.asin(float(np.clip(d @ normal, -1.0, 1.0))))
        azimuth = math.degrees(math.atan2(float(d @ right), float(d @ -forward))) % 360.0
        return azimuth, elevation


def plane_axes(support_normal_world: np.ndarray, camera: Camera) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Orthonormal axes of the support plane as seen by a camera.

    Args:
        support_normal_world: (3,) normal of the support (up).
        camera: the camera.

    Returns:
        forward (3,) the viewing direction projected into the plane, right (3,) the image's right
        direction in the plane, normal (3,) the unit normal; all float64 world vectors.
    """
    normal = np.asarray(support_normal_world, np.float64)
    normal = normal / np.linalg.norm(normal)
    world_from_cam = camera.world_from_cam[:3, :3]
    view = world_from_cam[:, 2]
    forward = view - (view @ normal) * normal
    if np.linalg.norm(forward) < 1e-6:  # looking straight down: use the image's up direction as "forward"
        up_in_image = -world_from_cam[:, 1]
        forward = up_in_image - (up_in_image @ normal) * normal
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, normal)  # camera y points down, so forward x normal(up) points image-right
    cam_right = world_from_cam[:, 0]
    if right @ cam_right < 0:  # a left-handed rig cannot happen with a rotation, but the normal may point down
        right = -right
    return forward, right / np.linalg.norm(right), normal


def default_light(camera: Camera, support_normal_world: np.ndarray) -> Light:
    """The fallback: a soft light from above-right-behind the camera (azimuth 30, elevation 55), half ambient."""
    return Light.from_angles(30.0, 55.0, support_normal_world, camera, strength=0.5, softness=0.06, source="default")


def parse_light_angles(text: str) -> tuple[float, float]:
    """Parse the CLI's ``AZIMUTH,ELEVATION`` (degrees); raise InputError with the fix when malformed."""
    parts = text.replace(" ", "").split(",")
    try:
        azimuth, elevation = (float(p) for p in parts)
    except ValueError:
        raise InputError(f"--light {text!r}: give AZIMUTH,ELEVATION in degrees, e.g. --light 30,55") from None
    if not (math.isfinite(azimuth) and math.isfinite(elevation)) or not 0.0 < elevation <= 90.0:
        raise InputError(f"--light {text!r}: elevation must be in (0, 90] degrees above the support, e.g. 30,55")
    return azimuth, elevation
