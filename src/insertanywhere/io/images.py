"""PNG sequences: masks (0/255), RGBA layers (straight alpha), shadow mattes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from insertanywhere.io.atomic import atomic_path


def frame_name(index: int) -> str:
    """The file name of frame ``index`` in a sequence folder: ``00000.png``."""
    return f"{index:05d}.png"


def write_png(path: str | os.PathLike[str], image: np.ndarray) -> None:
    """Write an (H, W) uint8/bool, (H, W, 3) RGB or (H, W, 4) RGBA uint8 image as PNG, atomically.

    Bool masks are written 0/255.
    """
    import cv2

    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA)
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), image, [cv2.IMWRITE_PNG_COMPRESSION, 1]):
            raise OSError(f"cannot write {path}")


def read_png(path: str | os.PathLike[str], mode: str = "unchanged") -> np.ndarray:
    """Read a PNG: ``mode`` "mask" -> (H, W) bool (value > 127), "gray" -> (H, W) uint8,
    "rgb" -> (H, W, 3) uint8, "rgba" -> (H, W, 4) uint8, "unchanged" -> as stored (RGB order)."""
    import cv2

    flags = {"mask": cv2.IMREAD_GRAYSCALE, "gray": cv2.IMREAD_GRAYSCALE, "rgb": cv2.IMREAD_COLOR}.get(
        mode, cv2.IMREAD_UNCHANGED
    )
    image = cv2.imread(str(path), flags)
    if image is None:
        raise OSError(f"cannot read {path}")
    if mode == "mask":
        return image > 127
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    return image


def write_sequence_frame(folder: str | os.PathLike[str], index: int, image: np.ndarray) -> Path:
    """Write one frame of a PNG sequence (``folder/00000.png``)."""
    path = Path(folder) / frame_name(index)
    write_png(path, image)
    return path


def read_sequence(folder: str | os.PathLike[str], mode: str = "unchanged") -> list[np.ndarray]:
    """Read every ``NNNNN.png`` of a sequence folder, in order."""
    files = sorted(Path(folder).glob("[0-9][0-9][0-9][0-9][0-9].png"))
    return [read_png(f, mode) for f in files]
