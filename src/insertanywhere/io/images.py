"""PNG images and PNG sequences: masks (0/255), RGBA layers (straight alpha), shadow mattes.

A sequence is a folder of ``00000.png``, ``00001.png``, ... one file per frame of the
clip (docs/design.md, "Output folder"). Every file is written atomically (temp name,
then rename), so a crash never leaves a half-written frame under a final name.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np

from insertanywhere.errors import InputError
from insertanywhere.io.atomic import atomic_path

SequenceKind = Literal["mask", "gray", "rgb", "rgba"]
"""What a sequence holds: ``mask`` (H, W) bool -> 0/255; ``gray`` (H, W) uint8 (a shadow matte);
``rgb`` (H, W, 3) uint8; ``rgba`` (H, W, 4) uint8 straight (not premultiplied) alpha."""

_SEQUENCE_GLOB = "[0-9][0-9][0-9][0-9][0-9].png"


def frame_name(index: int) -> str:
    """The file name of frame ``index`` in a sequence folder: ``00000.png``."""
    if index < 0:
        raise ValueError(f"frame index must be >= 0, got {index}")
    return f"{index:05d}.png"


def _check_image(image: np.ndarray) -> None:
    if image.dtype != bool and image.dtype != np.uint8:
        raise ValueError(f"PNG images are uint8 (or bool masks), got {image.dtype}")
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3, 4))):
        raise ValueError(f"expected (H, W), (H, W, 3) or (H, W, 4), got shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"cannot write an empty image of shape {image.shape}")


def write_png(path: str | os.PathLike[str], image: np.ndarray) -> None:
    """Write an image as PNG, atomically.

    Args:
        path: the final file name.
        image: (H, W) bool (written 0/255) or uint8, (H, W, 3) RGB uint8 or (H, W, 4) RGBA uint8
            (straight alpha).
    """
    import cv2

    image = np.asarray(image)
    _check_image(image)
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA)
    with atomic_path(path) as tmp:
        # Level 1 and libpng's "up" filter only: masks and layers are written every frame, and trying every
        # filter on every row (libpng's default) took 15-25 ms for an 832x480 RGBA layer against 5 ms, for files
        # within 10 % of the size; the PNG writers' threads share the 2 cores with the frame renderers.
        params = [cv2.IMWRITE_PNG_COMPRESSION, 1]
        if hasattr(cv2, "IMWRITE_PNG_FILTER"):  # OpenCV >= 4.11; older ones keep libpng's default filters
            params += [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP]
        if not cv2.imwrite(str(tmp), np.ascontiguousarray(image), params):
            raise OSError(f"cannot write {path}")


def read_png(path: str | os.PathLike[str], mode: str = "unchanged") -> np.ndarray:
    """Read a PNG (or any image OpenCV reads).

    Args:
        path: the file.
        mode: "mask" -> (H, W) bool (value > 127), "gray" -> (H, W) uint8, "rgb" -> (H, W, 3) uint8,
            "rgba" -> (H, W, 4) uint8 (opaque alpha added when the file has none),
            "unchanged" -> as stored, channels in RGB(A) order.

    Raises:
        InputError: the file is missing or not a readable image.
    """
    import cv2

    if mode not in ("mask", "gray", "rgb", "rgba", "unchanged"):
        raise ValueError(f"unknown mode {mode!r}; use mask, gray, rgb, rgba or unchanged")
    flags = {"mask": cv2.IMREAD_GRAYSCALE, "gray": cv2.IMREAD_GRAYSCALE, "rgb": cv2.IMREAD_COLOR}.get(
        mode, cv2.IMREAD_UNCHANGED
    )
    if not Path(path).is_file():
        raise InputError(f"{path}: no such image file")
    image = cv2.imread(str(path), flags)
    if image is None:
        raise InputError(f"{path}: not a readable image")
    if mode == "mask":
        return image > 127
    if mode == "rgba":
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGRA)
        elif image.shape[2] == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2BGRA)
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    return image


def write_sequence_frame(folder: str | os.PathLike[str], index: int, image: np.ndarray) -> Path:
    """Write one frame of a PNG sequence (``folder/00000.png``); returns its path."""
    path = Path(folder) / frame_name(index)
    write_png(path, image)
    return path


def sequence_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The ``NNNNN.png`` files of a sequence folder, in frame order (empty when the folder is missing)."""
    folder = Path(folder)
    return sorted(folder.glob(_SEQUENCE_GLOB)) if folder.is_dir() else []


def iter_sequence(folder: str | os.PathLike[str], mode: str = "unchanged") -> Iterator[np.ndarray]:
    """Yield the frames of a sequence folder one at a time (bounded memory); ``mode`` as in ``read_png``."""
    for file in sequence_files(folder):
        yield read_png(file, mode)


def read_sequence(folder: str | os.PathLike[str], mode: str = "unchanged") -> list[np.ndarray]:
    """Read every ``NNNNN.png`` of a sequence folder, in order. Short sequences only; else ``iter_sequence``."""
    return list(iter_sequence(folder, mode))


class PngSequenceWriter:
    """Write a PNG sequence of one kind and one size, checking every frame.

    Usage::

        writer = PngSequenceWriter(out / "masks", "mask", width, height)
        for visible_mask in masks:          # (H, W) bool
            writer.write(visible_mask)      # -> masks/00000.png, 00001.png, ...

    Frames go to consecutive indices from ``start``; ``write_at`` writes a given index
    (a resumed job). A frame of the wrong kind, dtype or size raises ValueError before
    anything is written, so a sequence never mixes sizes.
    """

    def __init__(
        self, folder: str | os.PathLike[str], kind: SequenceKind, width: int, height: int, start: int = 0
    ) -> None:
        if kind not in ("mask", "gray", "rgb", "rgba"):
            raise ValueError(f"unknown sequence kind {kind!r}; use mask, gray, rgb or rgba")
        self.folder = Path(folder)
        self.kind = kind
        self.width = int(width)
        self.height = int(height)
        self.next_index = int(start)
        self.n_written = 0
        self.folder.mkdir(parents=True, exist_ok=True)

    def _check(self, image: np.ndarray) -> None:
        expected_shape: tuple[int, ...] = {
            "mask": (self.height, self.width),
            "gray": (self.height, self.width),
            "rgb": (self.height, self.width, 3),
            "rgba": (self.height, self.width, 4),
        }[self.kind]
        if image.shape != expected_shape:
            raise ValueError(f"{self.folder}: a {self.kind} frame must be {expected_shape}, got {image.shape}")
        if self.kind == "mask":
            if image.dtype != bool:
                raise ValueError(f"{self.folder}: a mask frame must be bool (True = object), got {image.dtype}")
        elif image.dtype != np.uint8:
            raise ValueError(f"{self.folder}: a {self.kind} frame must be uint8, got {image.dtype}")

    def write(self, image: np.ndarray) -> Path:
        """Write the next frame; returns its path."""
        return self.write_at(self.next_index, image)

    def write_at(self, index: int, image: np.ndarray) -> Path:
        """Write frame ``index`` (and continue from ``index + 1``); returns its path."""
        image = np.asarray(image)
        self._check(image)
        path = write_sequence_frame(self.folder, index, image)
        self.next_index = index + 1
        self.n_written += 1
        return path
