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
from insertanywhere.render.light_shadows import light_from_cast_shadows


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


# ----------------------------------------------------------------------------- estimation


@dataclass(frozen=True)
class LightEstimateConfig:
    """Settings of ``estimate_light``.

    Attributes:
        stride: sample every stride-th pixel (normals by finite differences on that grid).
        max_depth_jump: relative depth step between grid neighbours above which normals are not trusted.
        min_samples: fewest usable pixels to attempt a fit.
        min_normal_spread: smallest eigenvalue the normals' covariance must reach in two directions
            (a scene of one plane says nothing about the light's direction).
        min_explained: share of the luminance variance the Lambert fit must explain.
        min_elevation_deg: a fitted light below this elevation above the support is rejected.
    """

    stride: int = 4
    max_depth_jump: float = 0.05
    min_samples: int = 400
    min_normal_spread: float = 0.01
    min_explained: float = 0.08
    min_elevation_deg: float = 10.0


def estimate_light(
    frame: np.ndarray,
    scene: object,
    frame_index: int,
    support_plane: object,
    contact_world: np.ndarray | None = None,
    config: LightEstimateConfig | None = None,
) -> Light | None:
    """The scene's dominant light from its existing cast shadows, else from its shading; None when unsure.

    First cue, cast shadows (``render.light_shadows``): objects standing on the support and the dark
    patches beside them give the light's azimuth and elevation geometrically (source
    "estimated:shadows").

    Second cue, shading (a robust Lambertian fit, after Pentland 1982, "Finding the illuminant
    direction"): surface normals come from the frame's depth map (finite differences of the unprojected
    points); the linear luminance of each pixel is modelled as ``I = c0 + max(0, c . n)`` (albedo x
    (ambient + direct n . l) with the albedo folded into the constants), fitted by iteratively
    reweighted least squares with Huber weights, pixels near the object counting more. Then
    ``l = c / |c|`` and the direct share ``strength = |c| / (c0 + |c|)`` (source "estimated:shading").

    Limits: albedo changes and gloss are taken for shading (a textured or shiny scene biases the second
    cue; the Huber weights and the explained-variance check only limit the damage); one plane, or
    surfaces of one orientation, give no direction (rejected by the normal-spread check); the depth must
    be good enough for normals and for telling the support from what stands on it; softness is not
    estimated.

    Args:
        frame: (H, W, 3) uint8 sRGB frame.
        scene: the Scene4D (uses ``cameras``, ``depth``, ``depth_confidence``, ``dynamic_mask``).
        frame_index: which frame ``frame`` is.
        support_plane: the object's support; anything with ``normal_world`` or ``normal`` (3,) pointing up.
        contact_world: (3,) the object's contact point, to weight nearby pixels more (None = uniform).
        config: settings.

    Returns:
        A Light with ``source="estimated:shading"``, or None when the fit is not trustworthy.
    """
    config = config or LightEstimateConfig()
    camera: Camera = scene.cameras[frame_index]  # type: ignore[attr-defined]
    normal = getattr(support_plane, "normal_world", None)
    support_normal = np.asarray(normal if normal is not None else support_plane.normal, np.float64)  # type: ignore[attr-defined]
    support_normal = support_normal / np.linalg.norm(support_normal)
    depth = np.asarray(scene.depth[frame_index], np.float32)  # type: ignore[attr-defined]
    confidence = np.asarray(scene.depth_confidence[frame_index], np.float32)  # type: ignore[attr-defined]
    dynamic = np.asarray(scene.dynamic_mask[frame_index], bool)  # type: ignore[attr-defined]

    support_point = _plane_point(support_plane, contact_world)
    if support_point is not None:
        cue = light_from_cast_shadows(
            frame, camera, np.where(confidence > 0.3, depth, 0.0), support_normal, support_point, dynamic
        )
        if cue is not None:
            strength = float(np.clip(cue.strength, 0.3, 0.85))
            return Light(cue.direction_world, strength=strength, softness=0.05, source="estimated:shadows")

    samples = _shading_samples(frame, camera, depth, confidence, dynamic, config)
    if samples is None:
        return None
    normals_world, luminance, pixels = samples
    weights = np.ones(len(luminance))
    if contact_world is not None:
        contact_px, contact_z = camera.project(np.asarray(contact_world, np.float64)[None])
        if contact_z[0] > 0:
            spread = 0.35 * max(frame.shape[:2])
            weights = np.exp(-np.sum((pixels - contact_px[0]) ** 2, axis=1) / (2.0 * spread**2))
    covariance = np.cov(normals_world.T, aweights=weights)
    if np.sort(np.linalg.eigvalsh(covariance))[1] < config.min_normal_spread:
        return None
    coefficients, explained = _robust_lambert_fit(normals_world, luminance, weights)
    c0, c = coefficients[0], coefficients[1:]
    magnitude = float(np.linalg.norm(c))
    if explained < config.min_explained or magnitude < 1e-6 or c0 + magnitude <= 0:
        return None
    direction = c / magnitude
    if direction @ support_normal < math.sin(math.radians(config.min_elevation_deg)):
        return None
    strength = float(np.clip(magnitude / (max(c0, 0.0) + magnitude), 0.2, 0.85))
    return Light(direction, strength=strength, softness=0.05, source="estimated:shading")


def _plane_point(support_plane: object, contact_world: np.ndarray | None) -> np.ndarray | None:
    """(3,) a point of the support plane: the contact point, else the plane's own point, else None."""
    if contact_world is not None:
        return np.asarray(contact_world, np.float64).reshape(3)
    point = getattr(support_plane, "point_world", None)
    if point is None and callable(getattr(support_plane, "point", None)):
        point = support_plane.point()  # type: ignore[attr-defined]
    return None if point is None else np.asarray(point, np.float64).reshape(3)


def _shading_samples(
    frame: np.ndarray,
    camera: Camera,
    depth: np.ndarray,
    confidence: np.ndarray,
    dynamic: np.ndarray,
    config: LightEstimateConfig,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """World normals (N, 3), linear luminance (N,) and pixel positions (N, 2) of the usable grid samples."""
    import cv2

    s = config.stride
    height, width = depth.shape
    rows = np.arange(s // 2, height, s)
    cols = np.arange(s // 2, width, s)
    grid_depth = depth[np.ix_(rows, cols)].astype(np.float64)
    grid_x, grid_y = np.meshgrid(cols + 0.5, rows + 0.5)
    pixels = np.stack([grid_x, grid_y], axis=-1)
    rays = np.einsum(
        "hwc,dc->hwd", np.concatenate([pixels, np.ones_like(grid_x)[..., None]], -1), np.linalg.inv(camera.K)
    )
    points = rays * grid_depth[..., None]
    known = (grid_depth > 0) & np.isfinite(grid_depth)
    # Central differences; the normal is trusted only where the four neighbours are known and close in depth.
    dx = points[1:-1, 2:] - points[1:-1, :-2]
    dy = points[2:, 1:-1] - points[:-2, 1:-1]
    normals = np.cross(dx, dy)
    centre = grid_depth[1:-1, 1:-1]
    neighbours = np.stack([grid_depth[1:-1, 2:], grid_depth[1:-1, :-2], grid_depth[2:, 1:-1], grid_depth[:-2, 1:-1]])
    smooth = np.all(np.abs(neighbours - centre) <= config.max_depth_jump * np.maximum(centre, 1e-9), axis=0)
    valid = known[1:-1, 1:-1] & np.all(neighbours > 0, axis=0) & smooth
    valid &= confidence[np.ix_(rows, cols)][1:-1, 1:-1] > 0.3
    valid &= ~dynamic[np.ix_(rows, cols)][1:-1, 1:-1]
    linear = np.asarray(frame, np.float32) / 255.0
    linear = np.where(linear <= 0.04045, linear / 12.92, ((linear + 0.055) / 1.055) ** 2.4)
    luminance_full = cv2.GaussianBlur((linear @ np.array([0.2126, 0.7152, 0.0722])).astype(np.float32), (0, 0), s / 2)
    luminance = luminance_full[np.ix_(rows, cols)][1:-1, 1:-1]
    valid &= (luminance > 0.005) & (luminance < 0.95)
    length = np.linalg.norm(normals, axis=-1)
    valid &= length > 1e-12
    if valid.sum() < config.min_samples:
        return None
    normals_cam = normals[valid] / length[valid][:, None]
    view = rays[1:-1, 1:-1][valid]
    flip = np.einsum("nc,nc->n", normals_cam, view) > 0  # normals face the camera
    normals_cam[flip] *= -1.0
    normals_world = np.einsum("nc,dc->nd", normals_cam, camera.world_from_cam[:3, :3])
    return normals_world, luminance[valid].astype(np.float64), pixels[1:-1, 1:-1][valid]


def _robust_lambert_fit(normals: np.ndarray, luminance: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, float]:
    """Fit ``luminance = c0 + max(0, c . n)`` by IRLS with Huber weights.

    The clamp (attached shadow: surfaces turned away from the light get ambient only) is handled by
    alternation: given the current c, pixels with ``c . n <= 0`` keep only the constant term, and the
    linear least squares is solved again; the first pass ignores the clamp.

    Returns (4,) ``(c0, cx, cy, cz)`` and the share of the weighted luminance variance the fit explains.
    """
    ones = np.ones((len(normals), 1))
    robust = np.ones(len(luminance))
    lit = np.ones(len(luminance), bool)
    coefficients = np.zeros(4)
    design = np.concatenate([ones, normals], axis=1)
    for iteration in range(8):
        design = np.concatenate([ones, normals * lit[:, None]], axis=1)
        w = np.sqrt(weights * robust)
        coefficients, *_ = np.linalg.lstsq(design * w[:, None], luminance * w, rcond=None)
        residual = luminance - design @ coefficients
        scale = 1.4826 * np.median(np.abs(residual)) + 1e-9
        threshold = 1.345 * scale  # Huber's constant for 95 % efficiency under Gaussian noise
        robust = np.where(np.abs(residual) <= threshold, 1.0, threshold / np.maximum(np.abs(residual), 1e-12))
        if iteration >= 1:
            lit = normals @ coefficients[1:] > 0
    w = weights * robust
    mean = np.average(luminance, weights=w)
    total = np.average((luminance - mean) ** 2, weights=w)
    unexplained = np.average((luminance - design @ coefficients) ** 2, weights=w)
    return coefficients, float(1.0 - unexplained / max(total, 1e-12))
