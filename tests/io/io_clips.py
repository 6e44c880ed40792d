"""Tiny synthetic clips written with PyAV, so the I/O tests need no data files (imported by tests/io)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")


def numbered_frame(index: int, width: int, height: int) -> np.ndarray:
    """(H, W, 3) uint8 frame whose flat grey level encodes ``index`` (survives lossy coding),
    with a white 4x4 marker at the top-left corner to check orientation."""
    frame = np.full((height, width, 3), 20 + 10 * index, dtype=np.uint8)
    frame[:4, :4] = 255
    return frame


def frame_index_of(frame: np.ndarray) -> int:
    """Decode ``numbered_frame``'s index from the frame's median grey level."""
    return round((float(np.median(frame)) - 20) / 10)


def make_clip(
    path: Path,
    n_frames: int = 6,
    width: int = 64,
    height: int = 48,
    fps: Fraction = Fraction(30000, 1001),
    codec: str = "libx264",
    container_format: str | None = None,
    options: dict[str, str] | None = None,
    rotation: tuple[int, bool, bool] | None = None,
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
) -> Path:
    """Write ``n_frames`` numbered frames; ``rotation`` = (degrees CCW, hflip, vflip) display metadata;
    ``pts`` with ``time_base`` make a variable frame rate clip."""
    container = av.open(str(path), "w", format=container_format, options=options or {})
    stream = container.add_stream(codec, rate=fps)
    stream.width, stream.height = width, height
    stream.pix_fmt = "yuv420p"
    if time_base is not None:
        stream.codec_context.time_base = time_base
    if rotation is not None:
        stream.set_display_rotation(*rotation)
    for index in range(n_frames):
        frame = av.VideoFrame.from_ndarray(numbered_frame(index, width, height), format="rgb24")
        frame.pts = pts[index] if pts is not None else index
        if time_base is not None:
            frame.time_base = time_base
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path
