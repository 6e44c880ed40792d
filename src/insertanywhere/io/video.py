"""Video reading and writing on PyAV, streaming: frames are decoded as you iterate.

A clip source is a video file (anything ffmpeg reads) or a folder of images
(sorted by name). Frames come out as RGB ``uint8`` ``(H, W, 3)`` with the
file's rotation metadata applied.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import numpy as np

from insertanywhere.conventions import ClipInfo
from insertanywhere.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
DEFAULT_FOLDER_FPS = Fraction(30)


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _apply_rotation(image: np.ndarray, rotation_deg: int) -> np.ndarray:
    """Rotate an (H, W, 3) image so it displays upright; rotation_deg is counter-clockwise (ffmpeg's sign)."""
    turns = (rotation_deg // 90) % 4
    return np.ascontiguousarray(np.rot90(image, k=turns)) if turns else image


class VideoReader:
    """Stream frames of a video file or an image folder.

    Usage::

        with VideoReader(path) as reader:
            info = reader.info            # ClipInfo
            for frame in reader:          # (H, W, 3) uint8, decoded lazily
                ...

    Raises InputError (one line) for a missing path, a non-video, a clip with no
    frames or an odd size.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise InputError(f"{self.path}: no such file or folder")
        self._container = None
        self._image_files: list[Path] | None = None
        if self.path.is_dir():
            files = _image_files(self.path)
            if not files:
                raise InputError(f"{self.path}: the folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
            self._image_files = files
            first = self._read_image(files[0])
            height, width = first.shape[:2]
            self.info = ClipInfo(width, height, DEFAULT_FOLDER_FPS, len(files), 0)
        else:
            self.info = self._probe_file()
        if self.info.width < 2 or self.info.height < 2:
            raise InputError(f"{self.path}: frames of {self.info.width}x{self.info.height} are too small to use")

    # -- file probing -----------------------------------------------------------------
    def _open(self):
        import av

        try:
            container = av.open(str(self.path))
        except (av.error.InvalidDataError, av.error.FFmpegError, UnicodeDecodeError) as err:
            raise InputError(f"{self.path}: not a readable video ({err.__class__.__name__}: {err})") from None
        if not container.streams.video:
            container.close()
            raise InputError(f"{self.path}: the file has no video stream")
        return container

    def _probe_file(self) -> ClipInfo:
        import av

        container = self._open()
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            fps = Fraction(rate) if rate else DEFAULT_FOLDER_FPS
            # Count by demuxing packets (cheap, no decoding); stream.frames is unreliable for VFR or truncated files.
            n_frames = 0
            width = height = 0
            rotation = 0
            try:
                for frame in container.decode(stream):
                    if n_frames == 0:
                        width, height = frame.width, frame.height
                        rotation = int(getattr(frame, "rotation", 0) or 0)
                    n_frames += 1
            except av.error.FFmpegError as err:
                if n_frames == 0:
                    raise InputError(f"{self.path}: the video cannot be decoded ({err})") from None
                # A truncated file: keep the frames that decode.
                self.truncated = True
        finally:
            container.close()
        if n_frames == 0:
            raise InputError(f"{self.path}: the video has no frames")
        if rotation % 180:
            width, height = height, width
        return ClipInfo(width, height, fps, n_frames, rotation % 360)

    @staticmethod
    def _read_image(path: Path) -> np.ndarray:
        import cv2

        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise InputError(f"{path}: not a readable image")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    # -- iteration ----------------------------------------------------------------------
    def __iter__(self) -> Iterator[np.ndarray]:
        """Yield (H, W, 3) uint8 RGB frames in order, one at a time."""
        if self._image_files is not None:
            for file in self._image_files:
                image = self._read_image(file)
                if image.shape[:2] != (self.info.height, self.info.width):
                    raise InputError(f"{file}: size {image.shape[1]}x{image.shape[0]} differs from the first image")
                yield image
            return
        import av

        container = self._open()
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            count = 0
            try:
                for frame in container.decode(stream):
                    image = frame.to_ndarray(format="rgb24")
                    yield _apply_rotation(image, self.info.rotation_deg)
                    count += 1
                    if count >= self.info.n_frames:
                        break
            except av.error.FFmpegError:
                if count < self.info.n_frames:
                    raise
        finally:
            container.close()

    def __len__(self) -> int:
        return self.info.n_frames

    def read_all(self) -> np.ndarray:
        """(T, H, W, 3) uint8: the whole clip. Only for short clips (tests, small scenes)."""
        return np.stack(list(self))

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


def read_video(path: str | os.PathLike[str]) -> tuple[np.ndarray, ClipInfo]:
    """Read a whole short clip: ((T, H, W, 3) uint8, ClipInfo)."""
    reader = VideoReader(path)
    return reader.read_all(), reader.info


class VideoWriter:
    """Write RGB frames to an H.264 yuv420p mp4, atomically (temp file renamed on close).

    Usage::

        with VideoWriter(path, width, height, fps) as writer:
            writer.write(frame)     # (H, W, 3) uint8

    yuv420p needs an even width and height; an odd size is padded by one pixel
    (edge replicated) and recorded with a warning in ``self.padded``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        width: int,
        height: int,
        fps: Fraction | float,
        crf: int = 16,
        preset: str = "veryfast",
    ) -> None:
        self.path = Path(path)
        self.width = width
        self.height = height
        self.fps = Fraction(fps).limit_denominator(1001) if not isinstance(fps, Fraction) else fps
        self.crf = crf
        self.preset = preset
        self.padded = (width % 2, height % 2)
        self.n_written = 0
        self._container = None
        self._stream = None
        self._tmp: Path | None = None

    def __enter__(self) -> VideoWriter:
        import av

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.stem}.tmp{self.path.suffix}")
        self._container = av.open(str(self._tmp), mode="w")
        stream = self._container.add_stream("libx264", rate=self.fps)
        stream.width = self.width + self.padded[0]
        stream.height = self.height + self.padded[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(self.crf), "preset": self.preset}
        stream.codec_context.time_base = Fraction(1, 1) / self.fps
        self._stream = stream
        return self

    def write(self, frame: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 RGB frame."""
        import av

        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError(f"expected ({self.height}, {self.width}, 3) uint8, got {frame.shape} {frame.dtype}")
        if any(self.padded):
            frame = np.pad(frame, ((0, self.padded[1]), (0, self.padded[0]), (0, 0)), mode="edge")
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        video_frame.pts = self.n_written
        for packet in self._stream.encode(video_frame):
            self._container.mux(packet)
        self.n_written += 1

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if exc_type is None:
                for packet in self._stream.encode():
                    self._container.mux(packet)
            self._container.close()
            if exc_type is None:
                os.replace(self._tmp, self.path)
        finally:
            if self._tmp is not None and self._tmp.exists():
                self._tmp.unlink()


def write_video(path: str | os.PathLike[str], frames: np.ndarray | list[np.ndarray], fps: Fraction | float) -> None:
    """Write a short clip (T, H, W, 3) uint8 in one call."""
    frames_iter = iter(frames)
    first = next(frames_iter)
    height, width = first.shape[:2]
    with VideoWriter(path, width, height, fps) as writer:
        writer.write(first)
        for frame in frames_iter:
            writer.write(frame)
