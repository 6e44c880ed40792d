"""Stage 1: dense optical flow, forward and backward, with a forward-backward consistency mask.

Backends share the ``FlowBackend`` protocol and are found by name in ``FLOW_BACKENDS``. Flow is
computed at the working resolution (``scale`` of the clip) and upsampled to full resolution only
when stored (vectors multiplied by the size ratio; pixel-corner convention, so ``x_full = x_work / scale``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from insertanywhere.progress import Progress, null_progress


class FlowBackend(Protocol):
    """Computes flow between two frames at one resolution."""

    name: str

    def __call__(self, image_a: np.ndarray, image_b: np.ndarray) -> np.ndarray:
        """Flow from ``image_a`` to ``image_b``.

        Args:
            image_a, image_b: (h, w, 3) uint8 RGB frames of the same size.

        Returns:
            (h, w, 2) float32 displacement ``(dx, dy)`` in pixels from a to b.
        """


def to_gray(image: np.ndarray) -> np.ndarray:
    """(h, w, 3) uint8 RGB -> (h, w) uint8 luma."""
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


@dataclass
class DISFlow:
    """OpenCV's Dense Inverse Search flow (Kroeger et al., ECCV 2016); CPU, no weights.

    ``preset`` is one of ``ultrafast``, ``fast``, ``medium``.
    """

    preset: str = "medium"
    name: str = "dis"

    def __post_init__(self) -> None:
        presets = {
            "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
            "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
            "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
        }
        self._dis = cv2.DISOpticalFlow_create(presets[self.preset])

    def __call__(self, image_a: np.ndarray, image_b: np.ndarray) -> np.ndarray:
        flow = self._dis.calc(to_gray(image_a), to_gray(image_b), None)
        return flow.astype(np.float32, copy=False)

    def concurrent_copy(self) -> DISFlow:
        """A second instance with its own buffers, safe to call at the same time as this one."""
        return DISFlow(preset=self.preset)


FLOW_BACKENDS: dict[str, Callable[..., FlowBackend]] = {"dis": DISFlow}
"""Flow backends by name. ``raft`` is registered by ``insertanywhere.scene.config`` (it needs weights)."""


def compute_flows(
    frames: Sequence[np.ndarray], backend: FlowBackend, progress: Progress = null_progress
) -> tuple[np.ndarray, np.ndarray]:
    """Forward and backward flow of consecutive frames.

    Args:
        frames: T frames, each (h, w, 3) uint8 RGB, at the working resolution.
        backend: a FlowBackend.

    Returns:
        forward (T-1, h, w, 2) float32, displacement t -> t+1, and backward (T-1, h, w, 2)
        float32, displacement t+1 -> t, indexed by t.
    """
    stream = FlowStream(frames, backend, progress)
    stream.wait()
    return stream.forward, stream.backward


class FlowStream:
    """Forward and backward flow of consecutive frames, computed on a background thread and readable pair
    by pair as they arrive, with each pair's forward-backward consistency masks.

    The tracker follows the flow a pair behind it (``stream.forward_pairs[t]`` waits for pair t), so its
    single-threaded KLT fills the core that DIS leaves idle. When the backend offers ``concurrent_copy()``
    (DIS), the backward flow of a pair runs on a second thread beside the forward one: DIS's own threading
    uses two cores only about 65 % of the time (15.3 -> 13.4 ms a call at 416x312, 2 cores).

    Attributes:
        forward, backward: (T-1, h, w, 2) float32 flow t -> t+1 and t+1 -> t, pixels, indexed by t.
        consistent_forward, consistent_backward: (T-1, h, w) bool, ``fb_consistency`` of each direction.
        seconds: wall time from the start to the last pair.
    """

    def __init__(self, frames: Sequence[np.ndarray], backend: FlowBackend, progress: Progress = null_progress) -> None:
        """Start computing at once.

        Args:
            frames: T frames, each (h, w, 3) uint8 RGB, at the working resolution.
            backend: a FlowBackend (used from the background threads only).
        """
        n_pairs = max(len(frames) - 1, 0)
        height, width = frames[0].shape[:2]
        # np.zeros, not zeros_like: calloc'd pages are mapped as the pairs fill them, not all written up front.
        self.forward = np.zeros((n_pairs, height, width, 2), np.float32)
        self.backward = np.zeros((n_pairs, height, width, 2), np.float32)
        self.consistent_forward = np.zeros((n_pairs, height, width), bool)
        self.consistent_backward = np.zeros((n_pairs, height, width), bool)
        self.seconds = 0.0
        self.forward_pairs = _PairsAsTheyArrive(self)
        self._ready = [threading.Event() for _ in range(n_pairs)]
        self._error: BaseException | None = None
        self._done = threading.Event()
        copy = getattr(backend, "concurrent_copy", None)
        self._thread = threading.Thread(
            target=self._run, args=(frames, backend, copy() if copy else None, progress), daemon=True
        )
        self._thread.start()

    def _run(
        self, frames: Sequence[np.ndarray], backend: FlowBackend, second: FlowBackend | None, progress: Progress
    ) -> None:
        start = time.perf_counter()
        pool = ThreadPoolExecutor(max_workers=1) if second is not None else None
        try:
            for t in range(len(self._ready)):
                if pool is not None and second is not None:
                    backward = pool.submit(second, frames[t + 1], frames[t])
                    self.forward[t] = backend(frames[t], frames[t + 1])
                    self.backward[t] = backward.result()
                else:
                    self.forward[t] = backend(frames[t], frames[t + 1])
                    self.backward[t] = backend(frames[t + 1], frames[t])
                self._ready[t].set()
                self.consistent_forward[t] = fb_consistency(self.forward[t], self.backward[t])
                self.consistent_backward[t] = fb_consistency(self.backward[t], self.forward[t])
                progress("flow", t + 1, len(self._ready))
        except BaseException as err:  # handed to the reader's thread by wait() and forward_pairs
            self._error = err
        finally:
            if pool is not None:
                pool.shutdown()
            self.seconds = time.perf_counter() - start
            for event in self._ready:
                event.set()
            self._done.set()

    def pair_ready(self, t: int) -> None:
        """Block until pair t's flows are computed (raises the backend's error if it failed)."""
        self._ready[t].wait()
        if self._error is not None:
            raise self._error

    def wait(self) -> FlowStream:
        """Block until every pair and its consistency masks are computed; raise the backend's error if any."""
        self._done.wait()
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self


class _PairsAsTheyArrive(Sequence[np.ndarray]):
    """``stream.forward[t]`` once pair t is computed: a (T-1)-long sequence of (h, w, 2) float32 flows."""

    def __init__(self, stream: FlowStream) -> None:
        self._stream = stream

    def __len__(self) -> int:
        return len(self._stream.forward)

    def __getitem__(self, t):  # type: ignore[override]
        if not isinstance(t, int):
            raise TypeError("flows are read one pair at a time")
        self._stream.pair_ready(t)
        return self._stream.forward[t]


def warp_by_flow(values: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample ``values`` at ``x + flow(x)`` (bilinear, border replicated).

    Args:
        values: (h, w) or (h, w, C) float32 image to sample.
        flow: (h, w, 2) float32 displacement in pixels.

    Returns:
        array shaped like ``values``: ``values[x + flow(x)]`` for every pixel x.
    """
    height, width = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    # Pixel indices and pixel-centre coordinates differ by 0.5 in both, so the displacement is the same.
    return cv2.remap(
        values, grid_x + flow[..., 0], grid_y + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def fb_consistency(forward: np.ndarray, backward: np.ndarray, alpha: float = 0.01, beta: float = 0.5) -> np.ndarray:
    """Forward-backward consistency test (Sundaram et al., ECCV 2010): a pixel is consistent when
    ``|f(x) + b(x + f(x))|^2 < alpha (|f|^2 + |b(x+f)|^2) + beta``.

    Args:
        forward: (h, w, 2) float32 flow t -> t+1, pixels.
        backward: (h, w, 2) float32 flow t+1 -> t, pixels.

    Returns:
        (h, w) bool, True where the forward flow is consistent (not occluded, not wrong).
    """
    back = warp_by_flow(backward, forward)
    fx, fy, bx, by = forward[..., 0], forward[..., 1], back[..., 0], back[..., 1]
    # Channel-wise arithmetic: numpy's reductions over a length-2 last axis are slow.
    loop_sq = (fx + bx) ** 2 + (fy + by) ** 2
    magnitude_sq = fx * fx + fy * fy + bx * bx + by * by
    return loop_sq < alpha * magnitude_sq + beta
