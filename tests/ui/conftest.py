"""Fixtures of the UI tests: a tiny clip, an RGBA object, and a 2D sticker backend.

``StickerBackend`` is a test double of the pipeline (``InsertBackend``): it pastes the
object into the placement box on every frame and writes the output-folder contract,
so the page's plumbing (uploads, previews, progress, cancel, downloads) is tested
without the 4D pipeline. The real pipeline is exercised by the tests that import it.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from insertanywhere.io.images import write_sequence_frame
from insertanywhere.io.video import read_video, write_video
from insertanywhere.ui.backend import InsertRequest

CLIP_SIZE = (96, 64)  # width, height
CLIP_FRAMES = 8


def make_clip(n_frames: int = CLIP_FRAMES, size: tuple[int, int] = CLIP_SIZE) -> np.ndarray:
    """(T, H, W, 3) uint8: a horizontal gradient floor with a square drifting right."""
    width, height = size
    xs = np.linspace(40, 200, width, dtype=np.float32)
    frames = np.empty((n_frames, height, width, 3), dtype=np.uint8)
    for t in range(n_frames):
        frame = np.empty((height, width, 3), dtype=np.float32)
        frame[...] = xs[None, :, None]
        frame[: height // 2] *= 0.6
        x = 8 + 4 * t
        frame[10:26, x : x + 16] = (220, 60, 40)
        frames[t] = frame.astype(np.uint8)
    return frames


def make_rgba(width: int = 24, height: int = 36) -> np.ndarray:
    """(H, W, 4) uint8 straight-alpha object: a blue ellipse on transparency."""
    ys, xs = np.mgrid[0:height, 0:width]
    inside = ((xs + 0.5 - width / 2) / (width / 2)) ** 2 + ((ys + 0.5 - height / 2) / (height / 2)) ** 2 <= 1
    rgba = np.zeros((height, width, 4), dtype=np.uint8)
    rgba[inside] = (40, 90, 230, 255)
    return rgba


@pytest.fixture
def clip_path(tmp_path: Path) -> Path:
    path = tmp_path / "inputs" / "clip.mp4"
    write_video(path, make_clip(), fps=12)
    return path


@pytest.fixture
def object_path(tmp_path: Path) -> Path:
    import cv2

    path = tmp_path / "inputs" / "ball.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(make_rgba(), cv2.COLOR_RGBA2BGRA))
    return path


def paste_object(frame: np.ndarray, rgba: np.ndarray, box: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Alpha-blend ``rgba`` resized into ``box`` of ``frame``: (composite (H, W, 3) uint8, mask (H, W) bool)."""
    import cv2

    x0, y0, x1, y1 = (round(float(v)) for v in box)
    sticker = cv2.resize(rgba, (max(1, x1 - x0), max(1, y1 - y0)), interpolation=cv2.INTER_AREA)
    alpha = sticker[..., 3:4].astype(np.float32) / 255
    out = frame.copy()
    region = out[y0:y1, x0:x1].astype(np.float32)
    out[y0:y1, x0:x1] = (region * (1 - alpha) + sticker[..., :3] * alpha).astype(np.uint8)
    mask = np.zeros(frame.shape[:2], dtype=bool)
    mask[y0:y1, x0:x1] = sticker[..., 3] > 127
    return out, mask


class StickerBackend:
    """Test double of the pipeline: a 2D sticker in the box on every frame, output contract written."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.gate = gate  # when set, run() waits for it between frames (to test progress and cancel)
        self.previews: list[list[int]] = []

    def available(self) -> str | None:
        return None

    def _rgba(self, request: InsertRequest) -> np.ndarray:
        from insertanywhere.io.assets import load_object

        asset = load_object(request.object_path)
        assert asset.rgba is not None
        return asset.rgba

    def run(self, request: InsertRequest, progress: Any) -> dict[str, Any]:
        frames, info = read_video(request.video)
        rgba = self._rgba(request)
        composites = []
        for index, frame in enumerate(frames):
            if self.gate is not None:
                assert self.gate.wait(timeout=20)
            composite, mask = paste_object(frame, rgba, request.placement.box)
            composites.append(composite)
            write_sequence_frame(request.out / "masks", index, mask)
            layer = np.zeros((*mask.shape, 4), dtype=np.uint8)
            layer[mask] = (40, 90, 230, 255)
            write_sequence_frame(request.out / "layers", index, layer)
            write_sequence_frame(request.out / "shadow", index, np.zeros(mask.shape, dtype=np.uint8))
            progress("composite", index + 1, len(frames))
        write_video(request.out / "inserted.mp4", np.stack(composites), fps=info.fps)
        (request.out / "scene").mkdir(exist_ok=True)
        (request.out / "scene" / "scene.json").write_text(f'{{"n_frames": {len(frames)}}}\n')
        (request.out / "report.json").write_text('{"backend": "sticker"}\n')
        return {"backend": "sticker"}

    def preview(self, request: InsertRequest, frame_indices: list[int], progress: Any) -> dict[int, np.ndarray]:
        self.previews.append(list(frame_indices))
        progress("preview", 0, len(frame_indices))
        frames, _ = read_video(request.video)
        rgba = self._rgba(request)
        return {i: paste_object(frames[i], rgba, request.placement.box)[0] for i in frame_indices}
