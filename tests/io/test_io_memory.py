"""Bounded memory: reading and re-encoding a 1080p, 600-frame clip stays under 1.5 GB peak RSS.

Slow (minutes on a loaded 2-core machine): run with ``pytest -m slow tests/io/test_io_memory.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

_CHILD = textwrap.dedent(
    """
    import json, resource, sys
    import numpy as np
    from insertanywhere.io.video import VideoReader, VideoWriter

    source, target, n_frames = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if n_frames:  # make the source: a gradient with a moving square, fast preset (not what is measured)
        ys, xs = np.mgrid[0:1080, 0:1920]
        base = np.stack([xs * 255 // 1919, ys * 255 // 1079, (xs + ys) % 256], -1).astype(np.uint8)
        with VideoWriter(source, 1920, 1080, 30, preset="ultrafast") as writer:
            for index in range(n_frames):
                frame = base.copy()
                frame[400:560, (index * 3) % 1700 : (index * 3) % 1700 + 160] = (240, 40, 40)
                writer.write(frame)
    else:  # the measured process: stream-decode and re-encode with the defaults
        reader = VideoReader(source)
        with VideoWriter(target, reader.info.width, reader.info.height, reader.info.fps) as writer:
            for frame in reader:
                writer.write(frame)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        print(json.dumps({"frames": reader.info.n_frames, "peak_rss_mb": peak_mb}))
    """
)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss units are Linux's")
def test_reencode_1080p_600_frames_under_1_5_gb(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    source, target = tmp_path / "src.mp4", tmp_path / "out.mp4"
    run = [sys.executable, "-c", _CHILD, str(source), str(target)]
    subprocess.run([*run, "600"], check=True, timeout=1800, env=env)
    result = subprocess.run([*run, "0"], check=True, timeout=1800, env=env, capture_output=True, text=True)
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"\n1080p x 600 decode + re-encode: {measured}")  # the figure docs/io.md refers to (pytest -s)
    assert measured["frames"] == 600
    assert measured["peak_rss_mb"] < 1536, measured
    # The peak must not scale with the clip: a whole 1080p clip in memory would be 600 * 6.2 MB = 3.7 GB.
