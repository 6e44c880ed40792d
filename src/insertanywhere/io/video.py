"""Video reading and writing on PyAV, streaming: frames are decoded as you iterate.

A clip source is a video file (anything ffmpeg reads: mp4, mov, webm, mkv, avi, ...)
or a folder of images (natural name order: ``f2.png`` before ``f10.png``).
Frames come out as RGB ``uint8`` ``(H, W, 3)`` in display orientation: the
stream's display matrix (rotation and mirroring, e.g. a phone's portrait clip) is
applied, as ``ffmpeg``'s autorotate does.

Probing is cheap: the frame count comes from demuxing packets (no decoding); only
the first frame is decoded, for its display matrix. When the container's index
disagrees with the packets it holds (a truncated file) the reader falls back to
decoding everything once to count the frames that really decode, keeps those and
warns (``VideoReader.warnings``). See docs/io.md for every choice made here.
"""

from __future__ import annotations

import logging
import os
import re
import struct
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from insertanywhere.conventions import ClipInfo
from insertanywhere.errors import InputError

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
DEFAULT_FOLDER_FPS = Fraction(30)
_NTSC_BASES = (24, 30, 48, 60, 120)
_BT709 = 1  # AVCOL_SPC_BT709 = AVCOL_PRI_BT709 = AVCOL_TRC_BT709
_LIMITED_RANGE = 1  # AVCOL_RANGE_MPEG

# A 2x2 signed permutation [[a, c], [b, d]] acting on pixel coordinates (x right, y down):
# the displayed position of a coded pixel is (x', y') = (a x + c y, b x + d y) (FFmpeg's display matrix,
# libavutil/display.h, with the translation dropped). The identity means "show as coded".
Orientation = tuple[int, int, int, int]
IDENTITY_ORIENTATION: Orientation = (1, 0, 0, 1)


# ----------------------------------------------------------------------------- helpers


def as_fps_fraction(fps: Fraction | float | int | str) -> Fraction:
    """An exact frame rate: a Fraction is kept; a float near an NTSC rate (29.97...) becomes ``30000/1001``
    and the like; any other float its nearest fraction with a denominator up to 1001."""
    if isinstance(fps, Fraction):
        rate = fps
    elif isinstance(fps, str):
        rate = Fraction(fps)
    else:
        value = float(fps)
        rate = Fraction(value).limit_denominator(1001)
        for base in _NTSC_BASES:
            ntsc = Fraction(base * 1000, 1001)
            if abs(value - float(ntsc)) < 5e-4:
                rate = ntsc
                break
    if not rate > 0:
        raise InputError(f"frame rate {fps} is not positive; give a rate like 30 or 30000/1001")
    return rate


def _natural_key(path: Path) -> list[object]:
    """Sort key so ``f2.png`` comes before ``f10.png``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        (
            p
            for p in folder.iterdir()
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
        ),
        key=_natural_key,
    )


def _image_display_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image after its EXIF orientation, read from the header only (no decoding)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            width, height = image.size
            orientation = image.getexif().get(0x0112, 1)
    except (UnidentifiedImageError, OSError) as err:
        raise InputError(f"{path}: not a readable image ({err})") from None
    # EXIF orientations 5..8 transpose the image (cv2.imread applies them, see _read_image).
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _read_image(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB, EXIF orientation applied; 16-bit images are reduced to 8 bits."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"{path}: not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def orientation_from_display_matrix(matrix: Sequence[int]) -> Orientation:
    """The display transform of FFmpeg's 3x3 display matrix (9 int32, 16.16 fixed point, row major).

    Only multiples of 90 degrees (with or without mirroring) are supported; other angles are rounded
    to the nearest one, which is what players that cannot rotate arbitrarily do.
    """
    a, b, c, d = (float(v) / 65536.0 for v in (matrix[0], matrix[1], matrix[3], matrix[4]))
    if abs(a) + abs(d) >= abs(b) + abs(c):  # closer to a diagonal (0 or 180 degrees, maybe mirrored)
        return (1 if a >= 0 else -1, 0, 0, 1 if d >= 0 else -1)
    return (0, 1 if b >= 0 else -1, 1 if c >= 0 else -1, 0)


def orientation_rotation_deg(orientation: Orientation) -> int:
    """Counter-clockwise display rotation in degrees (0, 90, 180, 270) of an orientation, mirroring ignored.

    Matches ``av.VideoFrame.rotation`` (FFmpeg's ``av_display_rotation_get``) for unmirrored matrices.
    """
    a, b, c, d = orientation
    if a * d - b * c < 0:  # mirrored: drop the x mirror (negate the first column) to get the rotation part
        a, b = -a, -b
    # (a, b) is where the x axis goes: (1, 0) -> 0, (0, -1) -> 90 CCW (right turns to up in y-down pixels), ...
    return {(1, 0): 0, (0, -1): 90, (-1, 0): 180, (0, 1): 270}[(a, b)]


def apply_orientation(image: np.ndarray, orientation: Orientation) -> np.ndarray:
    """Turn a coded image into its displayed image.

    Args:
        image: (H, W, ...) array as decoded.
        orientation: display transform (see ``Orientation``).

    Returns:
        (H', W', ...) displayed image (H' = W when the orientation transposes), C-contiguous.
    """
    a, b, c, d = orientation
    if (a, b, c, d) == IDENTITY_ORIENTATION:
        return image
    if b == 0 and c == 0:
        shown = image
        x_sign, y_sign = a, d
    else:  # anti-diagonal: swap x and y, then mirror by the signs
        shown = np.swapaxes(image, 0, 1)
        x_sign, y_sign = c, b
    if x_sign < 0:
        shown = shown[:, ::-1]
    if y_sign < 0:
        shown = shown[::-1]
    return np.ascontiguousarray(shown)


def _frame_orientation(frame: object) -> Orientation:
    """The display transform carried by a decoded ``av.VideoFrame`` (identity when it has none)."""
    for side_data in getattr(frame, "side_data", ()):
        if "DISPLAYMATRIX" in str(getattr(side_data, "type", "")):
            raw = bytes(side_data)
            if len(raw) >= 36:
                return orientation_from_display_matrix(struct.unpack("<9i", raw[:36]))
    return IDENTITY_ORIENTATION


def _main_video_stream(container):  # -> av.VideoStream
    """The clip's video stream: the first that is not cover art or a still thumbnail (MKV/MP4 attachments)."""
    import av

    still = av.stream.Disposition.attached_pic | av.stream.Disposition.timed_thumbnails
    for stream in container.streams.video:
        if not stream.disposition & still:
            return stream
    return container.streams.video[0]


def _looks_like_mp4_without_index(path: Path) -> bool:
    """True for an ISO-BMFF file (starts with an ``ftyp`` box) - a reason to mention a missing moov atom."""
    try:
        with path.open("rb") as handle:
            return handle.read(12)[4:8] == b"ftyp"
    except OSError:
        return False


# ----------------------------------------------------------------------------- reader


_PLANAR_8BIT_LUMA = frozenset({"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "nv21"})
_LIMITED_TO_FULL_RANGE = np.clip(np.round((np.arange(256) - 16) * 255.0 / 219.0), 0, 255).astype(np.uint8)


def _luma(frame: Any) -> np.ndarray:
    """(H, W) uint8 full-range luma of a decoded ``av.VideoFrame``.

    For 8-bit planar YUV the first plane is the luma: it is read in place and stretched from the limited
    (16-235) to the full range with a lookup table, 0.1 ms against swscale's 2-4 ms a frame at 832x480
    (within 1-2 levels of swscale's rounding). Other formats go through swscale.
    """
    if frame.format.name not in _PLANAR_8BIT_LUMA:
        return frame.to_ndarray(format="gray")
    plane = frame.planes[0]
    luma = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[: frame.height, : frame.width]
    if frame.format.name.startswith("yuvj") or int(getattr(frame, "color_range", 0) or 0) == 2:  # 2 = JPEG range
        return luma.copy()
    import cv2

    return cv2.LUT(luma, _LIMITED_TO_FULL_RANGE)


class VideoReader:
    """Stream frames of a video file or an image folder.

    Usage::

        with VideoReader(path) as reader:
            info = reader.info            # ClipInfo (display size, exact fps, frame count)
            for frame in reader:          # (H, W, 3) uint8 RGB, decoded lazily, one at a time
                ...
            some = reader.read_frames([0, 10, 20])   # (3, H, W, 3) uint8

    Raises InputError (one line) for a missing path, a non-video, a file without a
    video stream or without frames, a folder without images, images of different
    sizes and frames smaller than 2x2. A truncated file keeps the frames that
    decode; ``truncated`` is set and ``warnings`` says how many were kept.

    Attributes:
        path: the source.
        info: ClipInfo; ``rotation_deg`` is the counter-clockwise rotation the reader applied.
        orientation: the full display transform applied (rotation and mirroring).
        truncated: True when the container promised more frames than decode.
        warnings: one line per problem worth reporting (for report.json).
        frames_decoded: frames decoded so far by the last iteration (shows the reader is lazy).
    """

    def __init__(
        self, path: str | os.PathLike[str], folder_fps: Fraction | float | None = None, accurate_color: bool = True
    ) -> None:
        self.path = Path(path)
        self.accurate_color = accurate_color
        self.truncated = False
        self.warnings: list[str] = []
        self.orientation: Orientation = IDENTITY_ORIENTATION
        self.frames_decoded = 0
        self._image_files: list[Path] | None = None
        if not self.path.exists():
            raise InputError(f"{self.path}: no such file or folder")
        if self.path.is_dir():
            self.info = self._probe_folder(
                as_fps_fraction(folder_fps) if folder_fps is not None else DEFAULT_FOLDER_FPS
            )
        else:
            self.info = self._probe_file()
        if self.info.width < 2 or self.info.height < 2:
            raise InputError(f"{self.path}: frames of {self.info.width}x{self.info.height} are too small to use")

    # -- probing ---------------------------------------------------------------------------
    def _probe_folder(self, fps: Fraction) -> ClipInfo:
        files = _image_files(self.path)
        if not files:
            raise InputError(f"{self.path}: the folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
        sizes = [_image_display_size(f) for f in files]
        for file, size in zip(files, sizes, strict=True):
            if size != sizes[0]:
                raise InputError(
                    f"{file}: size {size[0]}x{size[1]} differs from {files[0].name} ({sizes[0][0]}x{sizes[0][1]}); "
                    "all images of a sequence must have one size"
                )
        self._image_files = files
        return ClipInfo(sizes[0][0], sizes[0][1], fps, len(files), 0)

    def _open(self):  # -> av.container.InputContainer
        import av

        if self.path.stat().st_size == 0:
            raise InputError(f"{self.path}: the file is empty")
        try:
            container = av.open(str(self.path), metadata_errors="ignore")
        except av.error.EOFError:
            raise InputError(
                f"{self.path}: the file ends before its first frame (an empty or truncated video)"
            ) from None
        except (av.error.FFmpegError, UnicodeDecodeError) as err:
            hint = ""
            if _looks_like_mp4_without_index(self.path):
                hint = "; it looks like an MP4/MOV without its index (moov atom), e.g. an unfinished recording"
            raise InputError(f"{self.path}: not a readable video ({err.__class__.__name__}){hint}") from None
        if not container.streams.video:
            container.close()
            raise InputError(f"{self.path}: the file has no video stream (not a video, or a video without frames)")
        return container

    def _probe_file(self) -> ClipInfo:
        import av

        container = self._open()
        try:
            stream = _main_video_stream(container)
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            fps = Fraction(rate) if rate else DEFAULT_FOLDER_FPS
            header_frames = int(stream.frames or 0)
            n_packets = 0
            discarded = 0
            suspicious = ""
            first_frame = None
            try:
                for packet in container.demux(stream):
                    if packet.size == 0:  # the flush packet PyAV appends at the end
                        continue
                    if packet.is_corrupt:
                        suspicious = "a corrupt packet"
                    if first_frame is None:  # decode only until the first frame shows its size and orientation
                        try:
                            for frame in packet.decode():  # a discarded packet decodes to nothing
                                first_frame = frame
                                break
                        except av.error.FFmpegError:
                            suspicious = "a packet that does not decode"
                    if packet.is_discard:  # cut by an MP4 edit list: decoded for references, never shown
                        discarded += 1
                    else:
                        n_packets += 1
            except av.error.FFmpegError as err:
                suspicious = f"a demuxing error ({err.__class__.__name__})"
            if header_frames and header_frames != n_packets + discarded and not suspicious:
                suspicious = f"an index of {header_frames} frames but {n_packets} packets"
            if first_frame is None and n_packets:
                first_frame = self._first_frame_after_flush(container, stream)
        finally:
            container.close()
        if n_packets == 0 and not suspicious:
            raise InputError(f"{self.path}: the video has no frames")
        n_frames = n_packets
        if suspicious or first_frame is None:
            n_frames, first_frame = self._count_by_decoding()
            if n_frames == 0:
                raise InputError(f"{self.path}: no frame of the video can be decoded (a damaged or truncated file?)")
            promised = max(header_frames, n_packets)
            if suspicious or n_frames < promised:
                self.truncated = True
                self._warn(
                    f"{self.path}: damaged or truncated file ({suspicious or 'frames that do not decode'}); "
                    f"using the {n_frames} frames that decode" + (f" of {promised}" if promised > n_frames else "")
                )
        self.orientation = _frame_orientation(first_frame)
        width, height = first_frame.width, first_frame.height
        if self.orientation[0] == 0:  # transposed display
            width, height = height, width
        return ClipInfo(width, height, fps, n_frames, orientation_rotation_deg(self.orientation))

    @staticmethod
    def _first_frame_after_flush(container, stream):  # -> av.VideoFrame | None
        """A decoder with delay (frame threads, B-frames) may hold the first frame until it is flushed."""
        import av

        try:
            for frame in stream.codec_context.decode(None):
                return frame
        except av.error.FFmpegError:
            return None
        return None

    def _count_by_decoding(self):  # -> tuple[int, av.VideoFrame | None]
        """The slow path: decode everything once, tolerating bad packets, and count."""
        count = 0
        first = None
        for frame in self._decode_frames(limit=None, log_errors=False):
            if first is None:
                first = frame
            count += 1
        return count, first

    def _warn(self, message: str) -> None:
        self.warnings.append(message)
        logger.warning(message)

    # -- decoding --------------------------------------------------------------------------
    def _decode_frames(self, limit: int | None, log_errors: bool = True) -> Iterator:  # of av.VideoFrame
        """Yield decoded ``av.VideoFrame``s in presentation order, skipping packets that fail to decode."""
        import av

        container = self._open()
        try:
            stream = _main_video_stream(container)
            stream.thread_type = "AUTO"
            emitted = 0
            bad_packets = 0
            try:
                for packet in container.demux(stream):
                    try:
                        frames = packet.decode()  # the final empty packet flushes the decoder
                    except av.error.FFmpegError:
                        bad_packets += 1
                        continue
                    for frame in frames:
                        yield frame
                        emitted += 1
                        if limit is not None and emitted >= limit:
                            return
            except av.error.FFmpegError:  # the demuxer hit the end of a truncated file: flush what is buffered
                try:
                    for frame in stream.codec_context.decode(None):
                        yield frame
                        emitted += 1
                        if limit is not None and emitted >= limit:
                            return
                except av.error.FFmpegError:
                    pass
            if bad_packets and log_errors:
                self._warn(f"{self.path}: {bad_packets} packets did not decode and were skipped")
        finally:
            container.close()

    def __iter__(self) -> Iterator[np.ndarray]:
        """Yield (H, W, 3) uint8 RGB frames in display orientation, in order, one at a time."""
        self.frames_decoded = 0
        if self._image_files is not None:
            for index in range(len(self._image_files)):
                image = self._read_folder_frame(index)
                self.frames_decoded += 1
                yield image
            return
        for frame in self._decode_frames(limit=self.info.n_frames):
            self.frames_decoded += 1
            yield apply_orientation(self._to_rgb(frame), self.orientation)
        if self.frames_decoded < self.info.n_frames:
            raise InputError(
                f"{self.path}: decoded only {self.frames_decoded} of the {self.info.n_frames} frames its packets "
                "promised; re-encode it first (ffmpeg -i IN -c:v libx264 -pix_fmt yuv420p OUT.mp4)"
            )

    def iter_gray(self) -> Iterator[np.ndarray]:
        """Yield (H, W) uint8 grey frames (ITU-R BT.601 luma of the displayed RGB) in order: for tracking and
        photometric tests, which need no colour; about 5x cheaper than ``__iter__`` plus a conversion."""
        import cv2

        if self._image_files is not None:
            for rgb in self:
                yield cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
            return
        decoded = 0
        for frame in self._decode_frames(limit=self.info.n_frames):
            decoded += 1
            yield apply_orientation(_luma(frame), self.orientation)
        if decoded < self.info.n_frames:
            raise InputError(f"{self.path}: decoded only {decoded} of the {self.info.n_frames} frames")

    def _read_folder_frame(self, index: int) -> np.ndarray:
        assert self._image_files is not None
        file = self._image_files[index]
        image = _read_image(file)
        if image.shape[:2] != (self.info.height, self.info.width):  # the file changed since probing
            raise InputError(f"{file}: size {image.shape[1]}x{image.shape[0]} differs from the first image")
        return image

    def _to_rgb(self, frame) -> np.ndarray:  # frame: av.VideoFrame
        """(H, W, 3) uint8 RGB by the frame's own colour matrix and range tags."""
        if not self.accurate_color:
            return frame.to_ndarray(format="rgb24")
        from av.video.reformatter import Interpolation

        # Interpolated chroma with rounding: unbiased and about half the error of swscale's default
        # (nearest chroma, truncation: -1 level on average) on natural images; ~25 ms more per 1080p frame.
        flags = Interpolation.BICUBIC | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT
        return frame.to_ndarray(format="rgb24", interpolation=flags)

    def read_frames(self, indices: Iterable[int]) -> np.ndarray:
        """A few frames by index, without seeking: decode from the start up to the largest index.

        Seek-free on purpose: seeking lands on key frames and frame-accurate seeking by
        timestamp is unreliable for VFR and edit-listed files; decoding forward is exact.

        Args:
            indices: frame indices in ``[0, n_frames)``, any order, repeats allowed.

        Returns:
            (K, H, W, 3) uint8 RGB frames in the order of ``indices``.
        """
        wanted = [int(i) for i in indices]
        if not wanted:
            return np.zeros((0, self.info.height, self.info.width, 3), dtype=np.uint8)
        bad = [i for i in wanted if not 0 <= i < self.info.n_frames]
        if bad:
            raise InputError(f"{self.path}: frame index {bad[0]} is out of range 0..{self.info.n_frames - 1}")
        if self._image_files is not None:  # a folder is random access already
            return np.stack([self._read_folder_frame(i) for i in wanted])
        needed = set(wanted)
        last = max(needed)
        kept: dict[int, np.ndarray] = {}
        # Frames before the last wanted one are decoded but not converted to RGB (the conversion costs more).
        for index, frame in enumerate(self._decode_frames(limit=last + 1)):
            if index in needed:
                kept[index] = apply_orientation(self._to_rgb(frame), self.orientation)
        missing = sorted(needed - kept.keys())
        if missing:
            raise InputError(f"{self.path}: frame {missing[0]} did not decode (the file ends early); re-encode it")
        return np.stack([kept[i] for i in wanted])

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
    """Read a whole short clip: ((T, H, W, 3) uint8 RGB, ClipInfo)."""
    reader = VideoReader(path)
    return reader.read_all(), reader.info


def read_frames(path: str | os.PathLike[str], indices: Iterable[int]) -> np.ndarray:
    """(K, H, W, 3) uint8 RGB frames ``indices`` of a clip, decoded forward without seeking."""
    return VideoReader(path).read_frames(indices)


def probe_video(path: str | os.PathLike[str]) -> ClipInfo:
    """The ClipInfo of a clip without decoding it (one frame is decoded for its orientation)."""
    return VideoReader(path).info


# ----------------------------------------------------------------------------- writer


class VideoWriter:
    """Write RGB frames to an H.264 yuv420p mp4, atomically (a temp file renamed on success).

    Usage::

        with VideoWriter(path, width, height, Fraction(30000, 1001)) as writer:
            writer.write(frame)     # (H, W, 3) uint8 RGB

    The frame rate is kept exactly (frame ``i`` has pts ``i`` in a time base of ``1/fps``).
    yuv420p needs an even width and height: an odd size is padded by one pixel on the
    right/bottom (edge replicated), with a logged warning; ``padded`` says by how much.
    If the block raises, or no frame was written, no file appears under ``path``.
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
        if int(width) < 2 or int(height) < 2:
            raise InputError(f"cannot write a {width}x{height} video; frames must be at least 2x2")
        self.path = Path(path)
        self.width = int(width)
        self.height = int(height)
        self.fps = as_fps_fraction(fps)
        self.crf = crf
        self.preset = preset
        self.padded = (self.width % 2, self.height % 2)
        self.n_written = 0
        self._container = None
        self._stream = None
        self._tmp: Path | None = None

    def __enter__(self) -> VideoWriter:
        import av

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=".tmp.mp4", dir=self.path.parent)
        os.close(fd)
        self._tmp = Path(tmp_name)
        if any(self.padded):
            logger.warning(
                "%s: %dx%d is odd; yuv420p H.264 needs even sizes, so the video is padded to %dx%d",
                self.path,
                self.width,
                self.height,
                self.width + self.padded[0],
                self.height + self.padded[1],
            )
        self._container = av.open(str(self._tmp), mode="w", format="mp4", options={"movflags": "+faststart"})
        stream = self._container.add_stream("libx264", rate=self.fps)
        stream.width = self.width + self.padded[0]
        stream.height = self.height + self.padded[1]
        stream.pix_fmt = "yuv420p"
        # mbtree=0: x264's macroblock-tree with its lookahead threads made the same frames encode differently on
        # every run (this build; up to 30 levels apart after decoding). Without it the output is reproducible,
        # still multi-threaded, and at the near-lossless CRFs used here (4 for results) mb-tree gains little.
        stream.options = {"crf": str(self.crf), "preset": self.preset, "x264-params": "mbtree=0"}
        stream.codec_context.time_base = 1 / self.fps
        # Tag BT.709, limited range, and convert with that matrix (write()): the reader converts by the tags,
        # so a decode -> encode round trip keeps colours, and players need not guess the matrix from the size.
        codec_context = stream.codec_context
        codec_context.colorspace = codec_context.color_primaries = codec_context.color_trc = _BT709
        codec_context.color_range = _LIMITED_RANGE
        self._stream = stream
        return self

    def write(self, frame: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 RGB frame."""
        import av
        from av.video.reformatter import Interpolation

        if self._container is None:
            raise RuntimeError("VideoWriter.write called outside its `with` block")
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError(f"expected ({self.height}, {self.width}, 3) uint8, got {frame.shape} {frame.dtype}")
        if any(self.padded):
            frame = np.pad(frame, ((0, self.padded[1]), (0, self.padded[0]), (0, 0)), mode="edge")
        rgb_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        # AREA averages each 2x2 block for the 4:2:0 chroma: the smallest round-trip error of swscale's filters
        # (docs/io.md: about a third of the default bilinear's on flat colour regions).
        video_frame = rgb_frame.reformat(
            format="yuv420p",
            dst_colorspace="ITU709",
            dst_color_range="MPEG",
            interpolation=Interpolation.AREA | Interpolation.ACCURATE_RND,
        )
        video_frame.pts = self.n_written
        video_frame.time_base = self._stream.codec_context.time_base
        for packet in self._stream.encode(video_frame):
            self._container.mux(packet)
        self.n_written += 1

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        success = exc_type is None and self.n_written > 0
        try:
            if success:
                for packet in self._stream.encode():
                    self._container.mux(packet)
            self._container.close()
            if success:
                os.replace(self._tmp, self.path)
        finally:
            self._container = None
            if self._tmp is not None and self._tmp.exists():
                self._tmp.unlink()
        if exc_type is None and self.n_written == 0:
            raise ValueError(f"{self.path}: no frame was written, so no video was made")


def write_video(path: str | os.PathLike[str], frames: Iterable[np.ndarray], fps: Fraction | float) -> None:
    """Write a short clip (T, H, W, 3) uint8, or any iterable of (H, W, 3) uint8 frames, in one call."""
    frames_iter = iter(frames)
    try:
        first = next(frames_iter)
    except StopIteration:
        raise ValueError(f"{path}: no frames to write") from None
    height, width = first.shape[:2]
    with VideoWriter(path, width, height, fps) as writer:
        writer.write(first)
        for frame in frames_iter:
            writer.write(frame)
