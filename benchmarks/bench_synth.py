"""Seconds to render each synthetic family, at full size (832x480x49 by default) and at --small.

Usage::

    python benchmarks/bench_synth.py                      # every family, full size and small
    python benchmarks/bench_synth.py --families orbit demo --frames 81
    python benchmarks/bench_synth.py --small-only

Prints one JSON document on stdout. Renders go to a temporary folder that is removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from insertanywhere.data.synthetic import FAMILIES, render_scene_to_folder
from insertanywhere.data.synthetic.writer import default_supersample, resolve_size


def time_render(family: str, seed: int, small: bool, width: int | None, height: int | None, frames: int | None):
    w, h, t = resolve_size(family, small, frames, width, height)
    with tempfile.TemporaryDirectory(prefix="bench-synth-") as tmp:
        start, start_cpu = time.perf_counter(), time.process_time()
        render_scene_to_folder(Path(tmp) / "scene", family=family, seed=seed, width=w, height=h, n_frames=t)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
    return {
        "family": family,
        "small": small,
        "width": w,
        "height": h,
        "n_frames": t,
        "supersample": default_supersample(w, h),
        "seconds": round(seconds, 2),
        "seconds_per_frame": round(seconds / t, 3),
        # CPU seconds of this process (all threads): comparable across machines loaded by other jobs.
        "cpu_seconds": round(cpu_seconds, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="*", default=list(FAMILIES), choices=list(FAMILIES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--width", type=int, default=832)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--frames", type=int, default=49)
    parser.add_argument("--small-only", action="store_true", help="only the --small renders")
    parser.add_argument("--full-only", action="store_true", help="only the full-size renders")
    args = parser.parse_args(argv)

    results = []
    for family in args.families:
        if not args.full_only:
            results.append(time_render(family, args.seed, True, None, None, None))
        if not args.small_only:
            results.append(time_render(family, args.seed, False, args.width, args.height, args.frames))
        print(json.dumps(results[-1]), file=sys.stderr)
    report = {
        "benchmark": "synth",
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_1min": os.getloadavg()[0],
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "results": results,
    }
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
