"""Seconds per metric stage of ``insertanywhere eval`` on a real clip (no learned models).

The "output" is the input clip itself with a static box mask from placements.json (an
identity insert), so the timing covers decoding, DIS flows, SSIM and J/F at full size.
Prints JSON. Usage: python benchmarks/bench_eval.py [VIDEO_KEY] [--frames N]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from insertanywhere.eval import gt_metrics, vbench
from insertanywhere.eval.masks import score_mask_sequence
from insertanywhere.io.images import write_sequence_frame
from insertanywhere.io.video import VideoReader, write_video

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("video", nargs="?", default="videos/cups_table_static.mp4")
    parser.add_argument("--frames", type=int, default=49)
    args = parser.parse_args()
    placements = json.loads((DATA / "placements.json").read_text())
    x0, y0, x1, y1 = placements[args.video][0]["box"]
    frames = [f for _, f in zip(range(args.frames), VideoReader(DATA / args.video), strict=False)]
    height, width = frames[0].shape[:2]
    mask = np.zeros((height, width), bool)
    mask[y0:y1, x0:x1] = True
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        write_video(clip, np.stack(frames), 24)
        for t in range(len(frames)):
            write_sequence_frame(Path(tmp) / "masks", t, mask)

        def stream():
            return iter(VideoReader(clip))

        start = time.perf_counter()
        sum(1 for _ in stream())
        seconds["decode_once"] = time.perf_counter() - start
        start = time.perf_counter()
        vbench.motion_smoothness(stream())
        seconds["motion_smoothness_dis"] = time.perf_counter() - start
        start = time.perf_counter()
        vbench.imaging_quality_substitute(stream())
        seconds["imaging_quality_substitute"] = time.perf_counter() - start
        start = time.perf_counter()
        gt_metrics.warping_error(stream(), flow_frames=stream())
        seconds["warping_error"] = time.perf_counter() - start
        start = time.perf_counter()
        score_mask_sequence((mask for _ in frames), (np.roll(mask, 3, axis=1) for _ in frames))
        seconds["mask_j_f"] = time.perf_counter() - start
        start = time.perf_counter()
        gt_metrics.score_gt_sequence(
            gt_metrics.iter_gt_frames(stream(), stream(), (mask for _ in frames), input_frames=stream())
        )
        seconds["psnr_ssim_regions"] = time.perf_counter() - start
    print(
        json.dumps({"video": args.video, "frames": len(frames), "size": [width, height], "seconds": seconds}, indent=1)
    )


if __name__ == "__main__":
    main()
