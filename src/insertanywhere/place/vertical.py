"""The scene's vertical from one image: the vanishing point of its near-vertical line segments.

Used to level a support whose plane the classical depth got wrong (``anchor._level_support``): the depth of a
mover comes from tracks triangulated as if it stood still, and a cart's top then tilts by 20 degrees. Walls,
doors, table legs and panels are vertical in the world, and their images meet at the vertical vanishing point
``v``; the world's up direction in the camera is ``K^-1 v`` (Hartley and Zisserman, "Multiple View Geometry",
2nd ed., sec. 8.6).

Segments come from OpenCV's line segment detector (LSD). The vanishing point is found by RANSAC over pairs of
segments, each hypothesis scored by the length of the segments pointing at it within INLIER_DEG, then refined
by least squares on its inliers. It is trusted only with MIN_INLIERS segments and a tilt from the image's up
direction of at most MAX_TILT_DEG (textures with slanted stripes make false vanishing points far from
vertical); otherwise the caller keeps its level guess. No library offers this for a single image (scikit-image
and OpenCV detect segments, not vanishing points), so it is written here from those segments.
"""

from __future__ import annotations

import cv2
import numpy as np

MAX_SEGMENT_DEG = 30.0
"""Segments within this angle of the image's vertical are candidates."""
MIN_LENGTH_SHARE = 0.04
"""Candidate segments are at least this share of the image height long."""
INLIER_DEG = 1.5
"""A segment points at a vanishing point when its direction is within this angle of the direction to it."""
MIN_INLIERS = 15
MAX_TILT_DEG = 30.0
"""A vertical further than this from the image's up direction is taken as a false vanishing point."""
RANSAC_PAIRS = 300


def vertical_from_lines(image: np.ndarray, K: np.ndarray, seed: int = 0) -> np.ndarray | None:
    """(3,) float64 unit "up" in the camera frame (x right, y down, z forward), or None when not found.

    Args:
        image: (H, W, 3) uint8 RGB frame.
        K: (3, 3) intrinsics of that frame (pixel-corner convention).
        seed: RANSAC seed (the result is deterministic).
    """
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    found = cv2.createLineSegmentDetector().detect(gray)[0]
    if found is None:
        return None
    segments = found.reshape(-1, 4).astype(np.float64) + 0.5  # OpenCV pixel centres -> pixel corners
    direction = segments[:, 2:] - segments[:, :2]
    length = np.linalg.norm(direction, axis=1)
    off_vertical = np.degrees(np.arctan2(np.abs(direction[:, 0]), np.abs(direction[:, 1])))
    keep = (off_vertical < MAX_SEGMENT_DEG) & (length > MIN_LENGTH_SHARE * gray.shape[0])
    if keep.sum() < MIN_INLIERS:
        return None
    segments, direction, length = segments[keep], direction[keep], length[keep]
    start = np.c_[segments[:, :2], np.ones(len(segments))]
    end = np.c_[segments[:, 2:], np.ones(len(segments))]
    lines = np.cross(start, end)
    lines /= np.linalg.norm(lines[:, :2], axis=1, keepdims=True)
    middle = 0.5 * (start[:, :2] + end[:, :2])
    cos_inlier = np.cos(np.radians(INLIER_DEG))

    def inliers_of(point: np.ndarray) -> np.ndarray:
        toward = point[None, :2] - middle * point[2]  # direction to the (possibly infinite) point, up to sign
        cosine = np.abs(np.sum(toward * direction, axis=1)) / (np.linalg.norm(toward, axis=1) * length + 1e-12)
        return cosine > cos_inlier

    rng = np.random.default_rng(seed)
    best_score, best = 0.0, None
    for i, j in rng.integers(0, len(lines), size=(RANSAC_PAIRS, 2)):
        if i == j:
            continue
        point = np.cross(lines[i], lines[j])
        if not np.any(point):
            continue
        inliers = inliers_of(point)
        score = float(length[inliers].sum())
        if score > best_score:
            best_score, best = score, inliers
    if best is None or best.sum() < MIN_INLIERS:
        return None
    # Least squares: the point closest to all inlier lines, weighted by length (smallest singular vector).
    point = np.linalg.svd(lines[best] * np.sqrt(length[best])[:, None])[2][-1]
    up = np.linalg.solve(K, point)
    up /= np.linalg.norm(up)
    if up[1] > 0:  # image y points down: up has a negative y
        up = -up
    if np.degrees(np.arccos(np.clip(-up[1], -1.0, 1.0))) > MAX_TILT_DEG:
        return None
    return up


__all__ = ["vertical_from_lines"]
