"""Stage 2: point tracks over the whole clip.

KLT (Lucas-Kanade, pyramidal; Bouguet 2000) seeded by the dense flow, checked forward-backward,
with Shi-Tomasi corners re-detected where tracks are missing. Every track gets a quality score.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from insertanywhere.progress import Progress, null_progress


@dataclass
class Tracks:
    """Point tracks at the working resolution.

    Attributes:
        xy: (T, N, 2) float32 ``(x, y)`` pixel positions (pixel-corner origin) in each frame,
            nan where the track is not visible.
        quality: (N,) float32 in [0, 1], larger is better (long, forward-backward consistent).
        fb_error: (N,) float32 mean forward-backward error in pixels.
    """

    xy: np.ndarray
    quality: np.ndarray
    fb_error: np.ndarray

    def __post_init__(self) -> None:
        self.visible = np.isfinite(self.xy[..., 0])
        """(T, N) bool: True where the track has a position."""

    @property
    def n_tracks(self) -> int:
        return self.xy.shape[1]

    def subset(self, keep: np.ndarray) -> Tracks:
        """Tracks selected by a (N,) bool or index array."""
        return Tracks(self.xy[:, keep], self.quality[keep], self.fb_error[keep])


@dataclass
class TrackerConfig:
    """KLT settings (working resolution pixels)."""

    max_tracks: int = 1500
    min_distance: float = 7.0
    quality_level: float = 0.005
    window: int = 11  # the dense flow seeds KLT close to the answer: one pyramid level and a small window suffice
    pyramid_levels: int = 1
    iterations: int = 20
    max_fb_error: float = 0.7
    redetect_below: float = 0.7
    fine_window: int = 13  # KLT window on the finer frames (their pixels), when track_points is given them


@functools.cache
def _disk(radius: int) -> np.ndarray:
    """(2r+1, 2r+1) uint8 structuring element: the filled circle cv2.circle draws around an integer centre."""
    disk = np.zeros((2 * radius + 1, 2 * radius + 1), np.uint8)
    cv2.circle(disk, (radius, radius), radius, 1, -1)
    return disk


def _detect(gray: np.ndarray, existing_xy: np.ndarray, config: TrackerConfig, n_wanted: int) -> np.ndarray:
    """Shi-Tomasi corners away from existing tracks: (M, 2) float32 pixel-corner coordinates."""
    if n_wanted <= 0:
        return np.zeros((0, 2), np.float32)
    radius = max(int(config.min_distance), 1)
    # A disk of `radius` around every existing track is excluded: the tracks' pixels dilated by the disk that
    # cv2.circle rasterises (the same mask as one cv2.circle per track, 7x faster over ~1000 tracks).
    height, width = gray.shape
    centres = existing_xy.astype(np.int64)  # int() of each coordinate, as cv2.circle's centre
    inside = (centres[:, 0] >= 0) & (centres[:, 0] < width) & (centres[:, 1] >= 0) & (centres[:, 1] < height)
    seeds = np.zeros(gray.shape, np.uint8)
    seeds[centres[inside, 1], centres[inside, 0]] = 255
    mask = 255 - cv2.dilate(seeds, _disk(radius))
    for x, y in centres[~inside]:
        cv2.circle(mask, (int(x), int(y)), radius, 0, -1)
    corners = cv2.goodFeaturesToTrack(
        gray, maxCorners=n_wanted, qualityLevel=config.quality_level, minDistance=config.min_distance, mask=mask
    )
    if corners is None:
        return np.zeros((0, 2), np.float32)
    # OpenCV returns pixel indices; our coordinates put pixel centres at +0.5.
    return corners.reshape(-1, 2).astype(np.float32) + 0.5


def _sample_flow(flow: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Bilinear sample of a (h, w, 2) flow at (M, 2) pixel-corner coordinates -> (M, 2)."""
    if len(xy) == 0:
        return np.zeros((0, 2), np.float32)
    index_xy = (xy - 0.5).astype(np.float32).reshape(-1, 1, 2)
    sampled = cv2.remap(flow, index_xy[..., 0], index_xy[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return sampled.reshape(-1, 2)


def track_points(
    grays: Sequence[np.ndarray],
    flow_forward: Sequence[np.ndarray] | None = None,
    config: TrackerConfig | None = None,
    progress: Progress = null_progress,
    fine_grays: Sequence[np.ndarray] | None = None,
) -> Tracks:
    """Track corners through a clip.

    With ``fine_grays`` (the same frames at a higher resolution), corners are detected and the flow read at
    the working resolution, but KLT refines every step on the finer frames: its cost depends on the number
    of points and the window, not on the image size, and the tracks' sub-pixel precision (what the camera
    stage's triangulation and adjustment feed on) improves with the finer pixels.

    Args:
        grays: T frames, each (h, w) uint8 grey, at the working resolution.
        flow_forward: optional (T-1, h, w, 2) float32 flow t -> t+1 used as the KLT's initial guess
            (makes large motions trackable with a small window); read in order, one pair at a time, so a
            ``FlowStream``'s ``forward_pairs`` can be followed while it is computed.
        config: tracker settings.
        fine_grays: optional T frames, each (H, W) uint8 grey, the same frames at a finer resolution (the
            same aspect ratio; typically the clip's own, capped).

    Returns:
        Tracks with positions in the working resolution's pixels.
    """
    config = config or TrackerConfig()
    n_frames = len(grays)
    height, width = grays[0].shape
    # KLT runs on `lk_grays`; `fine` (2,) is the size of a working pixel in their pixels (x, y), 1 without
    # finer frames (per axis: the rounded sizes differ slightly, e.g. 640/365 against 480/274).
    lk_grays = grays if fine_grays is None else fine_grays
    fine = np.array([lk_grays[0].shape[1] / width, lk_grays[0].shape[0] / height], np.float32)
    window = config.window if fine_grays is None else config.fine_window
    lk_params = {
        "winSize": (window, window),
        "maxLevel": config.pyramid_levels,
        "criteria": (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, config.iterations, 0.01),
    }
    frame_ids: list[list[np.ndarray]] = [[] for _ in range(n_frames)]  # per frame: track ids seen there
    frame_xy: list[list[np.ndarray]] = [[] for _ in range(n_frames)]
    fb_chunks: list[tuple[np.ndarray, np.ndarray]] = []
    n_tracks = 0
    active_ids = np.zeros(0, np.int64)
    active_xy = np.zeros((0, 2), np.float32)

    def add_tracks(frame: int, new_xy: np.ndarray) -> None:
        nonlocal active_ids, active_xy, n_tracks
        ids = np.arange(n_tracks, n_tracks + len(new_xy))
        n_tracks += len(new_xy)
        frame_ids[frame].append(ids)
        frame_xy[frame].append(new_xy.astype(np.float32))
        active_ids = np.concatenate([active_ids, ids])
        active_xy = np.concatenate([active_xy, new_xy]).astype(np.float32)

    add_tracks(0, _detect(grays[0], active_xy, config, config.max_tracks))
    for t in range(n_frames - 1):
        if len(active_xy):
            guess = active_xy + (
                _sample_flow(flow_forward[t], active_xy) if flow_forward is not None else np.zeros_like(active_xy)
            )
            # cv2's LK works in pixel-index coordinates: shift by 0.5 in and out (in the LK frames' pixels).
            p0 = (active_xy * fine - 0.5).astype(np.float32).reshape(-1, 1, 2)
            p1, status1, _ = cv2.calcOpticalFlowPyrLK(
                lk_grays[t], lk_grays[t + 1], p0, (guess * fine - 0.5).astype(np.float32).reshape(-1, 1, 2),
                flags=cv2.OPTFLOW_USE_INITIAL_FLOW, **lk_params,
            )  # fmt: skip
            p0_back, status2, _ = cv2.calcOpticalFlowPyrLK(
                lk_grays[t + 1], lk_grays[t], p1, p0.copy(), flags=cv2.OPTFLOW_USE_INITIAL_FLOW, **lk_params
            )
            fb = np.linalg.norm((p0_back - p0).reshape(-1, 2) / fine, axis=1)
            new_xy = (p1.reshape(-1, 2) + 0.5) / fine
            inside = (new_xy[:, 0] >= 0) & (new_xy[:, 0] < width) & (new_xy[:, 1] >= 0) & (new_xy[:, 1] < height)
            keep = (status1.ravel() == 1) & (status2.ravel() == 1) & (fb < config.max_fb_error) & inside
            active_ids, active_xy = active_ids[keep], new_xy[keep].astype(np.float32)
            frame_ids[t + 1].append(active_ids)
            frame_xy[t + 1].append(active_xy)
            fb_chunks.append((active_ids, fb[keep]))
        if len(active_xy) < config.redetect_below * config.max_tracks:
            add_tracks(t + 1, _detect(grays[t + 1], active_xy, config, config.max_tracks - len(active_xy)))
        progress("tracks", t + 1, n_frames - 1)

    xy = np.full((n_frames, n_tracks, 2), np.nan, np.float32)
    for frame in range(n_frames):
        for ids, positions in zip(frame_ids[frame], frame_xy[frame], strict=True):
            xy[frame, ids] = positions
    fb_sums = np.zeros(n_tracks)
    for ids, errors in fb_chunks:
        np.add.at(fb_sums, ids, errors)
    lengths = np.isfinite(xy[..., 0]).sum(axis=0)
    fb_error = (fb_sums / np.maximum(lengths - 1, 1)).astype(np.float32)
    # Quality: long tracks with small loop error are the trustworthy ones.
    quality = (1.0 - np.exp(-lengths / 10.0)) * np.exp(-fb_error / max(config.max_fb_error, 1e-6))
    return Tracks(xy=xy, quality=quality.astype(np.float32), fb_error=fb_error)
