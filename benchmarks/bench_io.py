"""Video I/O throughput and memory: encode, probe, decode and decode + re-encode, with peak RSS.

Each measurement runs in its own child process so its peak RSS (``resource.getrusage``)
is its own. Prints one JSON object.

    python benchmarks/bench_io.py                              # 832x480 and 1920x1080, 120 frames each
    python benchmarks/bench_io.py --sizes 1920x1080 --frames 600   # the memory bound of docs/io.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

FPS = Fraction(30000, 1001)


def synthetic_frames(width: int, height: int, n_frames: int):
    """(H, W, 3) uint8 frames: a colour gradient with a moving square and mild noise (camera-like, compressible)."""
    rng = np.random.default_rng(0)
    ys, xs = np.mgrid[0:height, 0:width]
    base = np.stack([xs * 255 // max(width - 1, 1), ys * 255 // max(height - 1, 1), (xs + ys) % 256], -1)
    base = base.astype(np.uint8)
    noise = rng.integers(0, 6, (height, width, 3), dtype=np.uint8)
    side = max(8, height // 6)
    for index in range(n_frames):
        frame = base + np.roll(noise, index * 3, axis=1)
        x0 = (index * 7) % max(width - side, 1)
        frame[height // 3 : height // 3 + side, x0 : x0 + side] = (240, 40, 40)
        yield frame


def _peak_rss_mb() -> float:
    # Linux reports ru_maxrss in KiB (macOS in bytes).
    scale = 1 / 1024 if platform.system() == "Linux" else 1 / 1024 / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def child(task: str, path: Path, width: int, height: int, n_frames: int, out: Path | None) -> dict[str, float]:
    """Run one measurement in this (child) process; returns seconds, frames/s and peak RSS."""
    from insertanywhere.io.video import VideoReader, VideoWriter

    start = time.perf_counter()
    cpu_start = time.process_time()
    count = 0
    if task == "encode":
        with VideoWriter(path, width, height, FPS, preset="veryfast") as writer:
            for frame in synthetic_frames(width, height, n_frames):
                writer.write(frame)
                count += 1
    elif task == "probe":
        count = VideoReader(path).info.n_frames
    elif task in ("decode", "decode_fast"):
        for _ in VideoReader(path, accurate_color=task == "decode"):
            count += 1
    elif task == "reencode":
        reader = VideoReader(path)
        assert out is not None
        with VideoWriter(out, reader.info.width, reader.info.height, reader.info.fps) as writer:
            for frame in reader:
                writer.write(frame)
                count += 1
    else:
        raise ValueError(task)
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start  # all threads; on a shared machine wall time mostly waits
    return {
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu_seconds, 3),
        "frames": count,
        "fps": round(count / seconds, 2) if task != "probe" else None,
        "frames_per_cpu_second": round(count / cpu_seconds, 2) if task != "probe" and cpu_seconds > 0 else None,
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }


def _run_child(task: str, path: Path, width: int, height: int, n_frames: int, out: Path | None) -> dict:
    command = [sys.executable, __file__, "--child", task, str(path), str(width), str(height), str(n_frames)]
    if out is not None:
        command.append(str(out))
    result = subprocess.run(command, capture_output=True, text=True, check=True, timeout=3600)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="832x480,1920x1080", help="comma-separated WxH")
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        task, path, width, height, n_frames, *rest = args.child
        out = Path(rest[0]) if rest else None
        print(json.dumps(child(task, Path(path), int(width), int(height), int(n_frames), out)))
        return
    import av

    results: dict[str, object] = {
        "frames": args.frames,
        "fps": f"{FPS.numerator}/{FPS.denominator}",
        "cpu_count": os.cpu_count(),
        "pyav": av.__version__,
        "sizes": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes.split(","):
            width, height = (int(v) for v in size.lower().split("x"))
            source = Path(tmp) / f"src_{width}x{height}.mp4"
            rows = {"encode": _run_child("encode", source, width, height, args.frames, None)}
            rows["file_mb"] = round(source.stat().st_size / 1e6, 2)
            for task in ("probe", "decode", "decode_fast"):
                rows[task] = _run_child(task, source, width, height, args.frames, None)
            rows["reencode"] = _run_child("reencode", source, width, height, args.frames, Path(tmp) / "re.mp4")
            results["sizes"][f"{width}x{height}"] = rows  # type: ignore[index]
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
