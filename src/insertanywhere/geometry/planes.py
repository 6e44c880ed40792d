"""Planes in 3D: robust fitting and ray intersection.

A plane is ``(normal, offset)`` with ``normal`` (3,) unit and points ``p`` on it
satisfying ``normal @ p + offset == 0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Plane:
    """A plane ``normal @ p + offset = 0``.

    Attributes:
        normal: (3,) float64 unit normal, in the frame the plane is expressed in.
        offset: signed offset, in the same units as the points.
    """

    normal: np.ndarray
    offset: float

    @classmethod
    def from_point_normal(cls, point: np.ndarray, normal: np.ndarray) -> Plane:
        normal = np.asarray(normal, dtype=np.float64)
        normal = normal / np.linalg.norm(normal)
        return cls(normal, float(-normal @ np.asarray(point, dtype=np.float64)))

    def signed_distance(self, points: np.ndarray) -> np.ndarray:
        """(N,) signed distances of (N, 3) points (positive on the normal's side)."""
        return np.asarray(points, dtype=np.float64) @ self.normal + self.offset

    def point(self) -> np.ndarray:
        """(3,) the plane point closest to the origin."""
        return -self.offset * self.normal

    def flipped(self) -> Plane:
        return Plane(-self.normal, -self.offset)

    def oriented_toward(self, point: np.ndarray) -> Plane:
        """This plane with its normal pointing to the side ``point`` (3,) lies on."""
        return self if self.signed_distance(point[None])[0] >= 0 else self.flipped()

    def transformed(self, b_from_a: np.ndarray) -> Plane:
        """The plane expressed in frame b, given a rigid (4, 4) ``b_from_a`` (this plane is in frame a)."""
        rotation = b_from_a[:3, :3]
        normal_b = rotation @ self.normal
        scale = np.linalg.norm(normal_b)
        point_b = rotation @ self.point() + b_from_a[:3, 3]
        return Plane.from_point_normal(point_b, normal_b / scale)


def fit_plane_lstsq(points: np.ndarray, weights: np.ndarray | None = None) -> Plane:
    """Total-least-squares plane through (N >= 3, 3) points (optionally weighted (N,))."""
    points = np.asarray(points, dtype=np.float64)
    w = np.ones(len(points)) if weights is None else np.asarray(weights, dtype=np.float64)
    centroid = (points * w[:, None]).sum(0) / w.sum()
    centred = (points - centroid) * np.sqrt(w)[:, None]
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return Plane.from_point_normal(centroid, vt[-1])


def fit_plane_ransac(
    points: np.ndarray,
    threshold: float,
    rng: np.random.Generator,
    iterations: int = 200,
    seed_point: np.ndarray | None = None,
) -> tuple[Plane, np.ndarray]:
    """Robust plane fit by RANSAC plus a least-squares refit on the inliers.

    Args:
        points: (N, 3) points, N >= 3.
        threshold: inlier distance, in the points' units.
        rng: random generator (determinism).
        iterations: RANSAC hypotheses.
        seed_point: optional (3,) point the plane should pass near: hypotheses far from
            it are penalised (the support under a contact point, not the wall behind).

    Returns:
        The plane and an (N,) bool inlier mask.
    """
    points = np.asarray(points, dtype=np.float64)
    n = len(points)
    if n < 3:
        raise ValueError("need at least 3 points to fit a plane")
    best_score = -np.inf
    best_inliers = np.zeros(n, dtype=bool)
    samples = rng.integers(0, n, size=(iterations, 3))
    for a, b, c in samples:
        normal = np.cross(points[b] - points[a], points[c] - points[a])
        norm = np.linalg.norm(normal)
        if norm < 1e-12:
            continue
        plane = Plane.from_point_normal(points[a], normal / norm)
        distances = np.abs(plane.signed_distance(points))
        inliers = distances < threshold
        score = float(inliers.sum())
        if seed_point is not None:
            # A plane that does not pass near the seed is not the support we want.
            score -= n * min(1.0, abs(plane.signed_distance(seed_point[None])[0]) / (3 * threshold))
        if score > best_score:
            best_score, best_inliers = score, inliers
    if best_inliers.sum() < 3:
        return fit_plane_lstsq(points), np.ones(n, dtype=bool)
    plane = fit_plane_lstsq(points[best_inliers])
    inliers = np.abs(plane.signed_distance(points)) < threshold
    if inliers.sum() >= 3:
        plane = fit_plane_lstsq(points[inliers])
    return plane, inliers


def intersect_ray_plane(origin: np.ndarray, direction: np.ndarray, plane: Plane) -> np.ndarray | None:
    """(3,) intersection of the ray ``origin + s * direction`` (s > 0) with ``plane``, or None."""
    denom = float(plane.normal @ direction)
    if abs(denom) < 1e-12:
        return None
    s = -(float(plane.normal @ origin) + plane.offset) / denom
    if s <= 0:
        return None
    return origin + s * direction
