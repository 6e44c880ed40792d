"""Fixtures for the I/O tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from io_clips import make_clip


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    """A 6-frame 64x48 H.264 mp4 at 30000/1001 fps."""
    return make_clip(tmp_path / "clip.mp4")
