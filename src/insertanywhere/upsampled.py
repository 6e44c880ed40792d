"""Per-frame stacks kept at the reconstruction's working resolution and made full size on access.

The reconstruction works at a long side of 416 pixels. Its depth, confidence, dynamic masks and flows used to
be upsampled to the clip's full size once, for the whole clip, and kept so in memory and in ``scene/``:
300 frames of 1080p took 8.7 GB there and 12.4 GB of peak memory. An ``UpsampledStack`` keeps the working
array (about 20x smaller at 1080p) and upsamples one frame when it is read, by the rule of its kind:

* ``depth`` (float32 z-depth, 0 = unknown): bilinear inside known regions, nearest at the border of unknown
  ones, so a known depth is never blended with the 0 that means unknown;
* ``confidence`` (kept as float16 in [0, 1], read as float32): bilinear, clipped to [0, 1];
* ``mask`` (bool): bilinear on 0/255, thresholded at half;
* ``flow`` (kept as float16 pixels, (h, w, 2), read as float32): bilinear, vectors scaled by the size ratio
  (``resize_flow``).

A stack keeps what ``scene/`` stores, so a fresh run and one that reuses the saved scene read the same values.

Every consumer reads a scene frame by frame (``scene.depth[t]``), so nothing else changes; a whole-array
numpy operation (``np.asarray(scene.depth)``, ``scene.depth > 0``) materialises the full-size stack, as
the tests and benchmarks do on short clips. Frames are returned read-only and the last few are cached:
the compositor reads a frame's depth several times (its own, the propagation's, the multi-view check's).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import cv2
import numpy as np

StackKind = Literal["depth", "confidence", "mask", "flow"]
# What a stack keeps (and scene/ stores) at the working resolution ...
STORED_DTYPES: dict[str, np.dtype] = {
    "depth": np.dtype(np.float32),
    "confidence": np.dtype(np.float16),
    "mask": np.dtype(np.bool_),
    "flow": np.dtype(np.float16),
}
# ... and what its full-size frames are.
FRAME_DTYPES: dict[str, np.dtype] = {
    "depth": np.dtype(np.float32),
    "confidence": np.dtype(np.float32),
    "mask": np.dtype(np.bool_),
    "flow": np.dtype(np.float32),
}


def resize_flow(flow: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize a (h, w, 2) float32 flow to (height, width, 2), scaling the vectors by the size ratio."""
    h, w = flow.shape[:2]
    if (h, w) == (height, width):
        return flow.astype(np.float32, copy=False)
    # Bilinear resizing commutes with scaling each channel: scale the small flow (a strided per-channel
    # product on a 1080p frame cost 5 ms, more than the resize).
    scaled = np.asarray(flow, np.float32) * np.array([width / w, height / h], np.float32)
    return cv2.resize(scaled, (width, height), interpolation=cv2.INTER_LINEAR)


def to_float16(values: np.ndarray) -> np.ndarray:
    """float32 -> float16 (round to nearest even), with what float16 would store as a subnormal (below
    6.1e-5) flushed to +0: subnormals are ~50x slower in numpy (a static clip's near-zero flow took 14 s to
    store), and 6e-5 px is far below any flow's precision. OpenCV converts (F16C, 2-3x numpy's cast); the
    values are one channel for it, so no OpenCV version can read the 1.0 as a per-channel scalar."""
    flat = np.ascontiguousarray(values, np.float32).reshape(-1, 1)
    half = cv2.multiply(flat, 1.0, dtype=cv2.CV_16F)
    bits = half.view(np.uint16)
    bits[(bits & 0x7C00) == 0] = 0  # exponent 0: subnormal or -0
    return half.reshape(values.shape)


def as_stored(work: np.ndarray, kind: StackKind) -> np.ndarray:
    """A working-resolution stack in the dtype an ``UpsampledStack`` of ``kind`` keeps (and ``scene/`` stores):
    depth float32, confidence float16 clipped to [0, 1], mask bool, flow float16 (subnormals flushed)."""
    if kind == "depth":
        return np.asarray(work, np.float32)
    if kind == "confidence":
        return to_float16(np.clip(np.asarray(work, np.float32), 0.0, 1.0))
    if kind == "mask":
        return np.asarray(work, bool)
    return to_float16(np.asarray(work, np.float32))


def upsample_frame(work: np.ndarray, kind: StackKind, width: int, height: int) -> np.ndarray:
    """One working-resolution frame ((h, w) or (h, w, 2) for flow) made (height, width[, 2]) by ``kind``'s rule
    (float32, or bool for masks). OpenCV's per-pixel operations, not numpy's: a 1080p depth frame takes about
    10 ms instead of 40."""
    size = (width, height)
    if kind == "depth":
        values = np.asarray(work, np.float32)
        nearest = cv2.resize(values, size, interpolation=cv2.INTER_NEAREST)
        linear = cv2.resize(values, size, interpolation=cv2.INTER_LINEAR)
        # Linear inside known regions, nearest at the unknown border (never blend with 0):
        # linear where |linear - nearest| < 0.5 nearest + 1e-6.
        limit = cv2.multiply(nearest, 0.5)
        cv2.add(limit, 1e-6, dst=limit)
        keep = cv2.compare(cv2.absdiff(linear, nearest), limit, cv2.CMP_LT)
        cv2.copyTo(linear, keep, nearest)
        return nearest
    if kind == "confidence":
        resized = cv2.resize(np.asarray(work, np.float32), size, interpolation=cv2.INTER_LINEAR)
        return np.clip(resized, 0.0, 1.0, out=resized)
    if kind == "mask":
        mask = np.asarray(work, np.uint8) * np.uint8(255)
        return cv2.resize(mask, size, interpolation=cv2.INTER_LINEAR) > 127
    return resize_flow(np.asarray(work, np.float32), width, height)


# Upsampled frames kept per stack: at most CACHE_FRAMES of the kind and CACHE_BYTES. A clip whose frames all fit
# is made full size once, up front (``fill_caches``; 81 frames of 832x480 keep depth in 130 MB and each flow in
# 260 MB). A longer one is upsampled where read: the mask stage reads each frame's flows, depth and movers two or
# three times over (support hypotheses, drift check, compositing), and the compositor reads frame t's depth and
# movers with those of frames t-8 to t+8 in steps of 4 and the placement frame's (the multi-view occluder
# check); with 8 frames kept, a 300-frame 1080p insert upsampled every depth frame six times (45 s). 1080p keeps
# 38 depth frames and 19 of each flow.
CACHE_FRAMES: dict[str, int] = {"depth": 128, "mask": 128, "confidence": 8, "flow": 96}
CACHE_BYTES = 320 * 2**20


class UpsampledStack(np.lib.mixins.NDArrayOperatorsMixin):
    """A (T, H, W) or (T, H, W, 2) stack that holds its (T, h, w[, 2]) working-resolution array and upsamples
    a frame when it is read (module docstring). Indexing with a frame number gives that frame, read-only;
    ``stack[t, rows, cols]`` indexes into it; any other index or numpy operation works on the materialised
    full-size stack.

    Args:
        work: (T, h, w) or, for flow, (T, h, w, 2) working-resolution values (converted by ``as_stored``).
        kind: "depth" | "confidence" | "mask" | "flow".
        size: the full (width, height) in pixels.
        cache_frames: how many upsampled frames to keep (default: ``CACHE_FRAMES`` for the kind, at most
            ``CACHE_BYTES`` of them).
    """

    def __init__(
        self, work: np.ndarray, kind: StackKind, size: tuple[int, int], cache_frames: int | None = None
    ) -> None:
        if kind not in STORED_DTYPES:
            raise ValueError(f"unknown stack kind {kind!r}")
        expected_ndim = 4 if kind == "flow" else 3
        if work.ndim != expected_ndim or (kind == "flow" and work.shape[-1] != 2):
            raise ValueError(f"a {kind} stack needs a {'(T, h, w, 2)' if kind == 'flow' else '(T, h, w)'} array")
        stored = STORED_DTYPES[kind]
        self.work = work if work.dtype == stored else as_stored(work, kind)
        self.kind: StackKind = kind
        self.width, self.height = int(size[0]), int(size[1])
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        if cache_frames is None:
            frame_bytes = int(np.prod(self.shape[1:])) * self.dtype.itemsize
            cache_frames = min(CACHE_FRAMES[kind], CACHE_BYTES // max(frame_bytes, 1))
        self._cache_frames = max(2, int(cache_frames))
        self._lock = threading.Lock()

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.work), self.height, self.width, *self.work.shape[3:])

    @property
    def dtype(self) -> np.dtype:
        return FRAME_DTYPES[self.kind]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def __len__(self) -> int:
        return len(self.work)

    def __repr__(self) -> str:
        return f"UpsampledStack({self.kind}, shape={self.shape}, working={self.work.shape[1:3]})"

    def frame(self, t: int) -> np.ndarray:
        """(H, W) or (H, W, 2) frame ``t`` at full size, read-only (negative indices count from the end)."""
        index = range(len(self.work))[t]  # IndexError when out of range, as numpy
        with self._lock:
            cached = self._cache.get(index)
            if cached is not None:
                self._cache.move_to_end(index)
                return cached
        full = upsample_frame(self.work[index], self.kind, self.width, self.height)
        full.flags.writeable = False
        with self._lock:
            self._cache[index] = full
            while len(self._cache) > self._cache_frames:
                self._cache.popitem(last=False)
        return full

    @property
    def fits_cache(self) -> bool:
        """Whether every frame can be kept upsampled at once."""
        return len(self.work) <= self._cache_frames

    def __iter__(self):
        for t in range(len(self.work)):
            yield self.frame(t)

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            return self.frame(int(key))
        if isinstance(key, tuple) and key and isinstance(key[0], (int, np.integer)):
            return self.frame(int(key[0]))[key[1:]]
        if isinstance(key, slice):
            frames = [self.frame(t) for t in range(len(self.work))[key]]
            return np.stack(frames) if frames else np.empty((0, *self.shape[1:]), self.dtype)
        return np.asarray(self)[key]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        full = np.empty(self.shape, self.dtype)
        for t in range(len(self.work)):
            with self._lock:
                cached = self._cache.get(t)
            # Kept frames are copied; the others are made without entering the cache (no churn on a long clip).
            full[t] = cached if cached is not None else upsample_frame(self.work[t], self.kind, self.width, self.height)
        return full if dtype is None else full.astype(dtype, copy=False)

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        inputs = tuple(np.asarray(x) if isinstance(x, UpsampledStack) else x for x in inputs)
        return getattr(ufunc, method)(*inputs, **kwargs)

    def astype(self, dtype: Any, copy: bool = True) -> np.ndarray:
        """The materialised full-size stack as ``dtype`` (a numpy array, as ``ndarray.astype`` gives)."""
        return np.asarray(self).astype(dtype, copy=False)


def upsampled_or_array(work: np.ndarray, kind: StackKind, size: tuple[int, int]) -> np.ndarray | UpsampledStack:
    """``work`` itself when its frames are already ``size`` (width, height), else an ``UpsampledStack``."""
    if tuple(work.shape[1:3]) == (int(size[1]), int(size[0])):
        return work
    return UpsampledStack(work, kind, size)


def fill_caches(stacks: Sequence[np.ndarray | UpsampledStack | None], threads: int = 2) -> int:
    """Upsample every frame of each ``UpsampledStack`` among ``stacks`` whose whole clip fits its cache, on
    ``threads`` threads (OpenCV and numpy release the GIL), so a short clip is made full size once, up front,
    as when the reconstruction upsampled the whole clip: ``insert``'s single-threaded mask stage then finds
    every frame ready (81 frames of 832x480: made lazily there, they cost it 0.6-1 s). A long clip's stacks
    stay lazy.

    Returns:
        The number of frames made.
    """
    short = [stack for stack in stacks if isinstance(stack, UpsampledStack) and stack.fits_cache]
    jobs = [(stack, t) for stack in short for t in range(len(stack))]
    if jobs:
        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            list(pool.map(lambda job: job[0].frame(job[1]), jobs))
    return len(jobs)
