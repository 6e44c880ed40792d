"""Composite previews of a placement on a few frames, for the page.

Previews always use the CPU composite path (VACE is a minutes-long GPU job) and
write into the video's scene cache folder, so the Scene4D built by the first
preview is reused by every later preview and run of the same video. One preview
computes at a time: the page sends only its latest request once the previous one
returns, and two reconstructions of one clip would only fight for the CPU.
"""

from __future__ import annotations

import base64
import threading

import numpy as np

from insertanywhere.ui.backend import InsertBackend, InsertRequest
from insertanywhere.ui.runs import mark_output_dir

JPEG_QUALITY = 88


def choose_preview_frames(placement_frame: int, n_frames: int, count: int = 4) -> list[int]:
    """The placement frame first, then up to ``count - 1`` others spread evenly over the clip.

    Args:
        placement_frame: index of the frame the box is drawn on, in [0, n_frames).
        n_frames: number of frames of the clip.
        count: how many frames at most.

    Returns:
        Distinct frame indices, the placement frame first, the rest ascending.
    """
    others = {round(float(v)) for v in np.linspace(0, n_frames - 1, num=max(count, 2))}
    others.discard(placement_frame)
    # Keep the ones farthest from the placement frame: they show the tracking best.
    ranked = sorted(sorted(others), key=lambda i: -abs(i - placement_frame))[: max(count - 1, 0)]
    return [placement_frame, *sorted(ranked)]


def encode_jpeg_data_uri(image: np.ndarray, max_width: int) -> str:
    """A ``data:image/jpeg;base64,...`` URI of an (H, W, 3) uint8 RGB image scaled to at most ``max_width``."""
    import cv2

    if image.shape[1] > max_width:
        scale = max_width / image.shape[1]
        image = cv2.resize(image, (max_width, max(2, round(image.shape[0] * scale))), interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError("cannot encode a preview frame")
    return "data:image/jpeg;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")


class PreviewService:
    """Runs ``backend.preview`` one request at a time."""

    def __init__(self, backend: InsertBackend, max_width: int) -> None:
        self.backend = backend
        self.max_width = max_width
        self._lock = threading.Lock()
        self._status: dict[str, object] = {"busy": False, "stage": "", "done": 0, "total": 0}

    @property
    def status(self) -> dict[str, object]:
        """``{"busy", "stage", "done", "total"}`` of the preview computing now (the page polls it)."""
        return dict(self._status)

    def _progress(self, stage: str, done: int, total: int) -> None:
        self._status = {"busy": True, "stage": stage, "done": int(done), "total": int(total)}

    def render(self, request: InsertRequest, frame_indices: list[int]) -> list[dict[str, object]]:
        """Composite ``frame_indices``; return ``[{"index": i, "image": data_uri}]`` in the given order."""
        mark_output_dir(request.out)
        with self._lock:
            self._status = {"busy": True, "stage": "", "done": 0, "total": 0}
            try:
                frames = self.backend.preview(request, frame_indices, self._progress)
            finally:
                self._status = {"busy": False, "stage": "", "done": 0, "total": 0}
        return [
            {"index": index, "image": encode_jpeg_data_uri(np.asarray(frames[index]), self.max_width)}
            for index in frame_indices
            if index in frames
        ]
