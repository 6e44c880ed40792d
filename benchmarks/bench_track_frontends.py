"""Which point-track front end limits the camera stage? (prints JSON; a benchmark, not a test)

The same camera stage (``estimate_cameras``, default settings) runs on three kinds of tracks built from the same
frames at the same working size:

- ``klt``: the pipeline's tracker (``track_points``: KLT chained frame to frame, seeded by DIS flow);
- ``corners``: Shi-Tomasi corners detected in *every* frame and refined by ``cornerSubPix``, linked across
  frame gaps (1, 2, 3, 5, 8 by default) to the nearest corner within ``--radius`` of where the DIS flow carries
  them; a corner claimed by two predictions is not linked, and a linked group with two corners in one frame is
  dropped. Each position is a fresh detection, so no track carries a chain of matching errors;
- ``sift``: OpenCV SIFT in every frame, matched over the same gaps (ratio test 0.8, fundamental-matrix RANSAC
  at 1 px), linked the same way: pycolmap's front end (its sequential matching), fed to our camera stage.

Reported per case: tracks, the front end's and the camera stage's seconds, the motion model and the ATE (% of
the trajectory length after Sim(3) alignment). Stop 18 ran it to find where the 7-Scenes ATE gap to pycolmap
comes from (docs/reconstruction.md, "What falls short"). Where the front end's tracks are too short for the
model test to see the motion that the KLT tracks call general, its cameras are also estimated under the general
model (``ate_percent_as_general``).

    OMP_NUM_THREADS=2 python benchmarks/bench_track_frontends.py --seven-scenes-starts 0 10 19 \\
        --work-max-pixels 129792 --families dolly orbit
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from insertanywhere.scene import ReconstructConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))

GAPS = (1, 2, 3, 5, 8)


def _tracks_from_links(points: Sequence[np.ndarray], links: list[tuple[np.ndarray, np.ndarray]]):
    """Tracks (insertanywhere.scene.tracks.Tracks) from per-frame points and links between them.

    Args:
        points: T arrays (N_t, 2) float32, pixel-corner coordinates at the working size.
        links: pairs of (L,) int64 global point indices (frame offsets added) that are the same scene point.
    """
    from insertanywhere.scene.tracks import Tracks

    counts = np.array([len(p) for p in points])
    n_points = int(counts.sum())
    frame = np.repeat(np.arange(len(points)), counts)
    a = np.concatenate([pair[0] for pair in links]) if links else np.zeros(0, np.int64)
    b = np.concatenate([pair[1] for pair in links]) if links else np.zeros(0, np.int64)
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(n_points, n_points))
    _, label = connected_components(graph, directed=False)
    size = np.bincount(label)
    # A group that holds two points of one frame linked two scene points: drop it whole.
    per_frame = np.bincount(label * len(points) + frame, minlength=(label.max() + 1) * len(points))
    clash = np.zeros(len(size), bool)
    clash[label[per_frame[label * len(points) + frame] > 1]] = True
    keep = (size >= 2) & ~clash
    track_of_label = np.full(len(size), -1)
    track_of_label[keep] = np.arange(int(keep.sum()))
    track = track_of_label[label]
    xy = np.full((len(points), int(keep.sum()), 2), np.nan, np.float32)
    used = track >= 0
    xy[frame[used], track[used]] = np.concatenate(points)[used]
    lengths = np.isfinite(xy[..., 0]).sum(axis=0)
    quality = (1.0 - np.exp(-lengths / 10.0)).astype(np.float32)
    return Tracks(xy=xy, quality=quality, fb_error=np.zeros(len(lengths), np.float32))


def corner_tracks(grays: Sequence[np.ndarray], flow_forward: np.ndarray, radius_px: float, gaps=GAPS):
    """Tracks by detection: every frame's corners, linked where the flow carries one onto another."""
    from insertanywhere.scene.tracks import _sample_flow

    points = []
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.01)
    for gray in grays:
        found = cv2.goodFeaturesToTrack(gray, maxCorners=2000, qualityLevel=0.005, minDistance=5)
        if found is None:
            points.append(np.zeros((0, 2), np.float32))
            continue
        refined = cv2.cornerSubPix(gray, found.reshape(-1, 1, 2).astype(np.float32), (5, 5), (-1, -1), criteria)
        points.append(refined.reshape(-1, 2) + 0.5)
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in points])])
    trees = [cKDTree(p) if len(p) else None for p in points]
    links = []
    for i in range(len(points)):
        predicted = points[i].copy()
        for j in range(i + 1, min(i + max(gaps), len(points) - 1) + 1):
            predicted = predicted + _sample_flow(flow_forward[j - 1], predicted)
            if j - i not in gaps or trees[j] is None or not len(predicted):
                continue
            distance, nearest = trees[j].query(predicted, distance_upper_bound=radius_px)
            hit = np.isfinite(distance)
            claimed = np.bincount(nearest[hit], minlength=len(points[j]))
            single = hit & (claimed[np.minimum(nearest, len(points[j]) - 1)] == 1)
            links.append((offsets[i] + np.flatnonzero(single), offsets[j] + nearest[single]))
    return _tracks_from_links(points, links)


def sift_tracks(grays: Sequence[np.ndarray], gaps=GAPS):
    """Tracks by SIFT matching over frame gaps (pycolmap's sequential matching, in OpenCV)."""
    sift = cv2.SIFT_create(nfeatures=2000)
    points, descriptors = [], []
    for gray in grays:
        keypoints, described = sift.detectAndCompute(gray, None)
        points.append(np.float32([k.pt for k in keypoints]).reshape(-1, 2) + 0.5)
        descriptors.append(described)
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in points])])
    matcher = cv2.BFMatcher(cv2.NORM_L2)
    links = []
    for i in range(len(points)):
        for gap in gaps:
            j = i + gap
            if j >= len(points) or descriptors[i] is None or descriptors[j] is None:
                continue
            pairs = [m for m in matcher.knnMatch(descriptors[i], descriptors[j], k=2) if len(m) == 2]
            good = np.array([(m.queryIdx, m.trainIdx) for m, n in pairs if m.distance < 0.8 * n.distance])
            if len(good) < 8:
                continue
            _, inliers = cv2.findFundamentalMat(points[i][good[:, 0]], points[j][good[:, 1]], cv2.FM_RANSAC, 1.0)
            if inliers is None:
                continue
            good = good[inliers.ravel() > 0]
            links.append((offsets[i] + good[:, 0], offsets[j] + good[:, 1]))
    return _tracks_from_links(points, links)


def run_case(name: str, frames: np.ndarray, true_poses: np.ndarray, K: np.ndarray | None, args) -> list[dict]:
    """Every front end on one clip (frames (T, H, W, 3) uint8; K the given full-size intrinsics or None)."""
    from insertanywhere.scene.cameras import CameraConfig, estimate_cameras, estimate_general
    from insertanywhere.scene.flow import DISFlow, compute_flows, to_gray
    from insertanywhere.scene.intrinsics import initial_intrinsics
    from insertanywhere.scene.metrics import ate_percent
    from insertanywhere.scene.pipeline import _work_size
    from insertanywhere.scene.tracks import track_points

    height, width = frames.shape[1:3]
    work_width, work_height = _work_size(width, height, ReconstructConfig().work_long_side, args.work_max_pixels)
    small = [cv2.resize(f, (work_width, work_height), interpolation=cv2.INTER_AREA) for f in frames]
    grays = [to_gray(f) for f in small]
    flow_forward, _ = compute_flows(small, DISFlow())
    K_full, known = (K, True) if K is not None else initial_intrinsics(width, height, None, None)
    K_work = np.diag([work_width / width, work_height / height, 1.0]) @ K_full
    makers: dict[str, Callable] = {
        "klt": lambda: track_points(grays, flow_forward),
        "corners": lambda: corner_tracks(grays, flow_forward, args.radius),
        "sift": lambda: sift_tracks(grays),
    }
    rows = []
    klt_model = None
    for frontend in args.frontends:
        start = time.perf_counter()
        tracks = makers[frontend]()
        tracked = time.perf_counter()
        try:
            estimate = estimate_cameras(tracks, K_work, known, CameraConfig())
        except RuntimeError as err:  # structure from motion found too little parallax in these tracks
            rows.append({"case": name, "frontend": frontend, "tracks": tracks.n_tracks, "failed": str(err)})
            print(json.dumps(rows[-1]), file=sys.stderr)
            continue
        done = time.perf_counter()
        klt_model = estimate.camera_model if frontend == "klt" else klt_model
        row = {
            "case": name,
            "frontend": frontend,
            "work_size": [work_width, work_height],
            "tracks": tracks.n_tracks,
            "median_track_length": float(np.median(tracks.visible.sum(axis=0))),
            "frontend_seconds": round(tracked - start, 2),
            "camera_seconds": round(done - tracked, 2),
            "camera_model": estimate.camera_model,
            "ate_percent": round(ate_percent(estimate.cam_from_world, true_poses)["ate_percent"], 3),
        }
        if frontend != "klt" and klt_model == "general" and estimate.camera_model != "general":
            # Short tracks weaken the model test (its frame pairs are as wide as the shared tracks allow): the
            # cameras are then compared under the model the KLT tracks chose.
            try:
                poses, *_ = estimate_general(tracks, K_work, not known, CameraConfig())
                row["ate_percent_as_general"] = round(ate_percent(poses, true_poses)["ate_percent"], 3)
            except RuntimeError as err:
                row["as_general_failed"] = str(err)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seven-scenes-starts", type=int, nargs="*", default=[0, 10, 19])
    parser.add_argument("--families", nargs="*", default=[], help="synthetic families (81 frames, 832x480)")
    parser.add_argument(
        "--frontends", nargs="+", default=["klt", "corners", "sift"], choices=["klt", "corners", "sift"]
    )
    parser.add_argument(
        "--work-max-pixels", type=int, default=ReconstructConfig().work_max_pixels,
        help="the working size's pixel budget (the pipeline's default 99840 puts 7-Scenes at 365x274; 129792 "
        "at 416x312)",
    )  # fmt: skip
    parser.add_argument("--radius", type=float, default=2.5, help="corners: link radius in working pixels")
    args = parser.parse_args()
    cv2.setNumThreads(2)
    from bench_reconstruct import _seven_scenes

    rows = []
    for start in args.seven_scenes_starts:
        frames, poses, _, K = _seven_scenes(81, start)
        rows += run_case(f"7scenes@{start}", frames, poses, K, args)
    if args.families:
        from insertanywhere.data.synthetic.loader import load_synthetic_case, render_case_cached

        for family in args.families:
            case = load_synthetic_case(render_case_cached(family, 0, small=False, width=832, height=480, n_frames=81))
            poses = np.stack([c.cam_from_world for c in case.cameras])
            rows += run_case(family, case.background, poses, None, args)
    print(json.dumps({"work_max_pixels": args.work_max_pixels, "radius_px": args.radius, "results": rows}, indent=1))


if __name__ == "__main__":
    main()
