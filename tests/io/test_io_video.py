"""Video I/O: probing, streaming, orientation, containers, VFR, damaged inputs, the writer."""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from io_clips import frame_index_of, make_clip, numbered_frame

from insertanywhere.errors import InputError
from insertanywhere.io.video import (
    VideoReader,
    VideoWriter,
    apply_orientation,
    as_fps_fraction,
    orientation_from_display_matrix,
    orientation_rotation_deg,
    probe_video,
    read_frames,
    read_video,
    write_video,
)

av = pytest.importorskip("av")


# ----------------------------------------------------------------------------- reading


def test_probe_counts_frames_and_keeps_exact_fps(clip: Path) -> None:
    info = probe_video(clip)
    assert (info.width, info.height, info.n_frames, info.rotation_deg) == (64, 48, 6, 0)
    assert info.fps == Fraction(30000, 1001)


def test_frames_come_out_in_order_as_rgb_uint8(clip: Path) -> None:
    frames, _info = read_video(clip)
    assert frames.shape == (6, 48, 64, 3) and frames.dtype == np.uint8
    assert [frame_index_of(f) for f in frames] == list(range(6))
    assert frames[0, 0, 0].min() > 230  # the white marker stays top-left without rotation metadata


def test_reader_is_lazy(tmp_path: Path) -> None:
    path = make_clip(tmp_path / "long.mp4", n_frames=20)
    reader = VideoReader(path)
    assert reader.frames_decoded == 0  # opening probes by demuxing, it does not decode the clip
    stream = iter(reader)
    first = next(stream)
    assert frame_index_of(first) == 0
    assert reader.frames_decoded == 1  # the first frame arrives before the rest is decoded
    stream.close()


def test_read_frames_random_access(clip: Path) -> None:
    picked = read_frames(clip, [4, 1, 4])
    assert picked.shape == (3, 48, 64, 3)
    assert [frame_index_of(f) for f in picked] == [4, 1, 4]
    with pytest.raises(InputError, match="out of range"):
        read_frames(clip, [6])


@pytest.mark.parametrize(
    ("suffix", "codec", "container_format"),
    [("webm", "libvpx-vp9", "webm"), ("mov", "libx264", "mov"), ("avi", "mpeg4", "avi"), ("mkv", "libx264", None)],
)
def test_other_containers(tmp_path: Path, suffix: str, codec: str, container_format: str | None) -> None:
    path = make_clip(
        tmp_path / f"clip.{suffix}", n_frames=5, fps=Fraction(25), codec=codec, container_format=container_format
    )
    reader = VideoReader(path)
    assert reader.info.n_frames == 5
    assert reader.info.fps == Fraction(25)
    assert [frame_index_of(f) for f in reader] == list(range(5))


def test_variable_frame_rate(tmp_path: Path) -> None:
    # Timestamps in ms with uneven gaps: 0, 33, 100, 110, 200, 233 (a phone dropping frames).
    path = make_clip(
        tmp_path / "vfr.mp4", n_frames=6, fps=Fraction(30), pts=[0, 33, 100, 110, 200, 233], time_base=Fraction(1, 1000)
    )
    reader = VideoReader(path)
    assert reader.info.n_frames == 6
    assert [frame_index_of(f) for f in reader] == list(range(6))  # every frame once: none dropped or repeated
    assert 10 < float(reader.info.fps) < 40  # the average rate


# ----------------------------------------------------------------------------- orientation


def _marker_corner(frame: np.ndarray) -> str:
    """Which corner holds the white marker of ``numbered_frame``."""
    height, width = frame.shape[:2]
    corners = {
        "tl": frame[1, 1],
        "tr": frame[1, width - 2],
        "bl": frame[height - 2, 1],
        "br": frame[height - 2, width - 2],
    }
    return max(corners, key=lambda name: int(corners[name].min()))


@pytest.mark.parametrize(
    ("rotation", "size", "corner", "rotation_deg"),
    [
        ((90, False, False), (48, 64), "bl", 90),  # counter-clockwise: top-left goes to bottom-left
        ((270, False, False), (48, 64), "tr", 270),
        ((180, False, False), (64, 48), "br", 180),
        ((0, True, False), (64, 48), "tr", 0),  # mirrored left-right
        ((0, False, True), (64, 48), "bl", 180),  # a vertical mirror = 180 degrees then a left-right mirror
    ],
)
def test_display_matrix_is_applied(
    tmp_path: Path, rotation: tuple[int, bool, bool], size: tuple[int, int], corner: str, rotation_deg: int
) -> None:
    path = make_clip(tmp_path / "rot.mp4", n_frames=2, rotation=rotation)
    reader = VideoReader(path)
    assert (reader.info.width, reader.info.height) == size
    assert reader.info.rotation_deg == rotation_deg
    frames = reader.read_all()
    assert frames.shape[1:3] == (size[1], size[0])
    assert _marker_corner(frames[0]) == corner


def test_rotation_matches_pyav_frame_rotation(tmp_path: Path) -> None:
    for degrees in (90, 180, 270):
        path = make_clip(tmp_path / f"r{degrees}.mp4", n_frames=1, rotation=(degrees, False, False))
        with av.open(str(path)) as container:
            frame = next(container.decode(video=0))
        assert VideoReader(path).info.rotation_deg == frame.rotation % 360


def test_orientation_helpers_on_hand_cases() -> None:
    one = 65536
    # FFmpeg's av_display_rotation_set(m, -90) (a 90 degree counter-clockwise display turn).
    assert orientation_from_display_matrix([0, -one, 0, one, 0, 0, 0, 0, 1 << 30]) == (0, -1, 1, 0)
    assert orientation_rotation_deg((0, -1, 1, 0)) == 90
    image = np.arange(6).reshape(2, 3)
    np.testing.assert_array_equal(apply_orientation(image, (0, -1, 1, 0)), np.rot90(image))
    np.testing.assert_array_equal(apply_orientation(image, (-1, 0, 0, 1)), image[:, ::-1])
    np.testing.assert_array_equal(apply_orientation(image, (-1, 0, 0, -1)), np.rot90(image, 2))


def test_cover_art_stream_is_skipped() -> None:
    # Muxers here drop or reorder cover-art streams, so the choice is checked on stand-in streams.
    from types import SimpleNamespace

    from insertanywhere.io.video import _main_video_stream

    cover = SimpleNamespace(disposition=av.stream.Disposition.attached_pic, name="cover")
    clip = SimpleNamespace(disposition=av.stream.Disposition.default, name="clip")
    container = SimpleNamespace(streams=SimpleNamespace(video=[cover, clip]))
    assert _main_video_stream(container).name == "clip"
    container.streams.video = [cover]
    assert _main_video_stream(container).name == "cover"  # nothing better: use what there is


# ----------------------------------------------------------------------------- bad inputs


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        VideoReader(tmp_path / "nope.mp4")


def test_text_file_renamed_mp4(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 50)
    with pytest.raises(InputError) as err:
        VideoReader(path)
    assert "\n" not in str(err.value)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        VideoReader(path)


def test_audio_only_file(tmp_path: Path) -> None:
    path = tmp_path / "sound.m4a"
    container = av.open(str(path), "w", format="mp4")
    stream = container.add_stream("aac", rate=8000)
    frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
    frame.sample_rate = 8000
    frame.pts = 0
    for packet in [*stream.encode(frame), *stream.encode()]:
        container.mux(packet)
    container.close()
    with pytest.raises(InputError, match="no video stream"):
        VideoReader(path)


def test_zero_frames(tmp_path: Path) -> None:
    path = tmp_path / "zero.mkv"
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=30)
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
    container.start_encoding()  # header and trailer, no packet
    container.close()
    with pytest.raises(InputError, match=r"no frames|before its first frame"):
        VideoReader(path)


def test_truncated_file_keeps_decodable_frames_and_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "full.mp4"
    # Noisy frames so each packet is large and a cut lands inside the media data; faststart keeps the index first.
    container = av.open(str(path), "w", options={"movflags": "+faststart"})
    stream = container.add_stream("libx264", rate=30)
    stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
    for index in range(20):
        frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8), format="rgb24")
        frame.pts = index
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    with caplog.at_level(logging.WARNING):
        reader = VideoReader(cut)
    assert reader.truncated
    assert 0 < reader.info.n_frames < 20
    assert reader.warnings and "truncated" in reader.warnings[0]
    assert "truncated" in caplog.text
    assert len(reader.read_all()) == reader.info.n_frames  # the promised count is what iteration gives


def test_mp4_without_index_says_so(tmp_path: Path) -> None:
    path = make_clip(tmp_path / "full.mp4", n_frames=10)  # no faststart: the index (moov) is at the end
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="moov"):
        VideoReader(cut)


# ----------------------------------------------------------------------------- image folders


def _write_images(folder: Path, sizes: list[tuple[int, int]], suffix: str = ".png") -> None:
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    for index, (width, height) in enumerate(sizes):
        cv2.imwrite(str(folder / f"frame_{index}{suffix}"), numbered_frame(index, width, height)[..., ::-1])


def test_image_folder_in_natural_order(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    _write_images(folder, [(40, 30)] * 12)
    (folder / "notes.txt").write_text("ignored")
    reader = VideoReader(folder, folder_fps=Fraction(24))
    assert (reader.info.width, reader.info.height, reader.info.n_frames, reader.info.fps) == (40, 30, 12, 24)
    assert [frame_index_of(f) for f in reader] == list(range(12))  # frame_10 after frame_9, not after frame_1
    assert [frame_index_of(f) for f in reader.read_frames([11, 2])] == [11, 2]


def test_folder_without_images(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(InputError, match="no images"):
        VideoReader(tmp_path)


def test_images_of_different_sizes_are_refused_at_open(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    _write_images(folder, [(40, 30), (40, 30), (42, 30)])
    with pytest.raises(InputError, match="differs"):
        VideoReader(folder)


def test_unreadable_image_in_folder(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    _write_images(folder, [(40, 30)])
    (folder / "frame_1.png").write_text("broken")
    with pytest.raises(InputError, match="not a readable image"):
        VideoReader(folder)


# ----------------------------------------------------------------------------- writing


@pytest.mark.parametrize("fps", [Fraction(30000, 1001), Fraction(24000, 1001), Fraction(25), Fraction(60)])
def test_writer_keeps_exact_fps_and_frame_count(tmp_path: Path, fps: Fraction) -> None:
    frames = [numbered_frame(i, 64, 48) for i in range(7)]
    path = tmp_path / "out.mp4"
    write_video(path, frames, fps)
    info = probe_video(path)
    assert info.fps == fps and info.n_frames == 7 and (info.width, info.height) == (64, 48)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        times = [frame.time for frame in container.decode(stream)]
    np.testing.assert_allclose(np.diff(times), float(1 / fps), rtol=1e-6)


def test_writer_round_trip_is_close_and_unbiased(tmp_path: Path) -> None:
    import cv2

    rng = np.random.default_rng(1)
    # A smooth colourful picture (blurred noise), closer to camera footage than hard-edged blocks.
    noise = rng.uniform(0, 255, (3, 96, 128, 3)).astype(np.float32)
    smooth = np.stack([cv2.GaussianBlur(f, (0, 0), 6) for f in noise])
    smooth = np.clip((smooth - smooth.mean()) * 8 + 128, 0, 255).astype(np.uint8)
    path = tmp_path / "out.mp4"
    write_video(path, smooth, 30)
    decoded, _ = read_video(path)
    assert decoded.shape == smooth.shape
    error = decoded.astype(float) - smooth
    assert np.abs(error).mean() < 3.0  # crf 16 and 4:2:0 chroma on strongly saturated colour: ~2.5 levels
    assert np.abs(error.mean(axis=(0, 1, 2))).max() < 0.5  # no colour shift (matrix or rounding bias)
    fast = VideoReader(path, accurate_color=False).read_all().astype(float) - smooth
    assert np.abs(fast).mean() > np.abs(error).mean()  # swscale's default: nearest chroma, truncation


def test_writer_pads_odd_sizes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "odd.mp4"
    with caplog.at_level(logging.WARNING), VideoWriter(path, 33, 21, 30) as writer:
        for index in range(3):
            writer.write(numbered_frame(index, 33, 21))
    assert writer.padded == (1, 1)
    assert "odd" in caplog.text
    info = probe_video(path)
    assert (info.width, info.height, info.n_frames) == (34, 22, 3)


def test_writer_failure_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError, match="boom"), VideoWriter(path, 64, 48, 30) as writer:
        writer.write(numbered_frame(0, 64, 48))
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_writer_without_frames_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "out.mp4"
    with pytest.raises(ValueError, match="no frame"), VideoWriter(path, 64, 48, 30):
        pass
    assert list(tmp_path.iterdir()) == []


def test_writer_rejects_wrong_frames(tmp_path: Path) -> None:
    with VideoWriter(tmp_path / "out.mp4", 64, 48, 30) as writer:
        writer.write(numbered_frame(0, 64, 48))
        with pytest.raises(ValueError, match="expected"):
            writer.write(np.zeros((48, 64, 3), np.float32))


def test_fps_fraction_snaps_ntsc_floats() -> None:
    assert as_fps_fraction(29.97) == Fraction(30000, 1001)
    assert as_fps_fraction(23.976) == Fraction(24000, 1001)
    assert as_fps_fraction(25.0) == Fraction(25)
    assert as_fps_fraction(Fraction(7, 3)) == Fraction(7, 3)
    assert as_fps_fraction("30000/1001") == Fraction(30000, 1001)
    with pytest.raises(InputError):
        as_fps_fraction(0)


def test_reencode_keeps_count_and_rate(clip: Path, tmp_path: Path) -> None:
    reader = VideoReader(clip)
    out = tmp_path / "re.mp4"
    with VideoWriter(out, reader.info.width, reader.info.height, reader.info.fps) as writer:
        for frame in reader:
            writer.write(frame)
    info = probe_video(out)
    assert (info.n_frames, info.fps) == (reader.info.n_frames, reader.info.fps)


# ----------------------------------------------------------------------------- the shared real clips

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
# (width, height, frames, fps) from ../shared/data/SOURCES.md
SHARED_VIDEOS = {
    "videos/cups_table_static.mp4": (1280, 720, 100, 29.97),
    "videos/coffee_table_static.mp4": (1280, 720, 100, 29.97),
    "videos/dog_walkway_static.mp4": (1280, 720, 100, 29.97),
    "videos/juggle_lawn_static.mp4": (1280, 720, 100, 24.0),
    "videos/bedroom_kids_handheld.mp4": (960, 540, 100, 30.0),
    "videos/apple_counter_orbit.mp4": (1296, 720, 50, 10.0),
    "videos/cafe_lady_handheld.mp4": (854, 480, 65, 30.0),
    "videos/bear_rocks_pan.mp4": (854, 480, 82, 30.0),
    "videos/paraglider_hill_pan.mp4": (854, 480, 80, 30.0),
    "sequences_gt/7scenes_redkitchen_table/video_10fps.mp4": (640, 480, 100, 10.0),
}


@pytest.mark.skipif(not DATA.is_dir(), reason="shared test data absent")
@pytest.mark.parametrize("name", sorted(SHARED_VIDEOS))
def test_shared_clips_probe_as_documented(name: str) -> None:
    info = probe_video(DATA / name)
    width, height, n_frames, fps = SHARED_VIDEOS[name]
    assert (info.width, info.height, info.n_frames) == (width, height, n_frames)
    assert float(info.fps) == pytest.approx(fps, abs=0.01)


@pytest.mark.skipif(not DATA.is_dir(), reason="shared test data absent")
def test_shared_clip_packet_count_equals_decoded_count() -> None:
    reader = VideoReader(DATA / "videos/cafe_lady_handheld.mp4", accurate_color=False)
    assert sum(1 for _ in reader) == reader.info.n_frames == 65


@pytest.mark.skipif(not (DATA / "sequences_gt").is_dir(), reason="shared test data absent")
def test_shared_jpeg_folder_reads_as_a_clip() -> None:
    reader = VideoReader(DATA / "sequences_gt/7scenes_redkitchen_table/rgb", folder_fps=10)
    assert (reader.info.width, reader.info.height, reader.info.n_frames) == (640, 480, 100)
    assert reader.read_frames([99]).shape == (1, 480, 640, 3)


def test_writing_the_same_frames_twice_gives_the_same_video(tmp_path):
    """x264's macroblock tree with lookahead threads encoded identical frames differently on every run (up to
    6 levels apart after decoding on this panning texture); the writer turns it off."""
    import cv2

    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.integers(0, 255, (400, 600, 3), dtype=np.uint8), (0, 0), 3)
    frames = [np.ascontiguousarray(texture[10 + t : 202 + t, 5 + 2 * t : 325 + 2 * t]) for t in range(24)]
    decoded = []
    for k in range(3):
        path = tmp_path / f"run{k}.mp4"
        with VideoWriter(path, 320, 192, 24.0, crf=4) as writer:
            for frame in frames:
                writer.write(frame)
        decoded.append(VideoReader(path).read_all())
    assert all(np.array_equal(decoded[0], other) for other in decoded[1:])
