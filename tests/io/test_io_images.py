"""PNG images and sequences: masks 0/255, RGBA straight alpha, validation, order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from insertanywhere.errors import InputError
from insertanywhere.io.images import (
    PngSequenceWriter,
    frame_name,
    iter_sequence,
    read_png,
    read_sequence,
    sequence_files,
    write_png,
)


def test_mask_is_written_0_255_and_read_back_bool(tmp_path: Path) -> None:
    mask = np.zeros((5, 7), bool)
    mask[1:3, 2:6] = True
    write_png(tmp_path / "m.png", mask)
    stored = read_png(tmp_path / "m.png", "gray")
    assert stored.dtype == np.uint8 and set(np.unique(stored)) == {0, 255}
    np.testing.assert_array_equal(read_png(tmp_path / "m.png", "mask"), mask)


def test_rgba_round_trip_keeps_straight_alpha_and_channel_order(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (6, 8, 4), dtype=np.uint8)
    rgba[0, 0] = (255, 0, 0, 10)  # red, nearly transparent: colour must not be premultiplied away
    write_png(tmp_path / "l.png", rgba)
    back = read_png(tmp_path / "l.png", "rgba")
    np.testing.assert_array_equal(back, rgba)
    np.testing.assert_array_equal(read_png(tmp_path / "l.png"), rgba)


def test_rgb_round_trip_and_rgba_of_rgb(tmp_path: Path) -> None:
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 0] = 200  # red stays in channel 0 (OpenCV stores BGR)
    write_png(tmp_path / "c.png", rgb)
    np.testing.assert_array_equal(read_png(tmp_path / "c.png", "rgb"), rgb)
    rgba = read_png(tmp_path / "c.png", "rgba")
    assert rgba.shape == (4, 4, 4) and (rgba[..., 3] == 255).all() and (rgba[..., 0] == 200).all()


def test_bad_images_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="uint8"):
        write_png(tmp_path / "f.png", np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="shape"):
        write_png(tmp_path / "f.png", np.zeros((4, 4, 2), np.uint8))
    assert not (tmp_path / "f.png").exists()
    with pytest.raises(InputError, match="no such"):
        read_png(tmp_path / "missing.png")
    (tmp_path / "bad.png").write_text("not a png")
    with pytest.raises(InputError, match="not a readable image"):
        read_png(tmp_path / "bad.png")


def test_sequence_writer_names_orders_and_checks(tmp_path: Path) -> None:
    writer = PngSequenceWriter(tmp_path / "masks", "mask", width=6, height=4)
    for index in range(12):
        mask = np.zeros((4, 6), bool)
        mask[0, index % 6] = True
        assert writer.write(mask).name == frame_name(index)
    assert [f.name for f in sequence_files(tmp_path / "masks")][:3] == ["00000.png", "00001.png", "00002.png"]
    frames = read_sequence(tmp_path / "masks", "mask")
    assert len(frames) == 12 and all(f[0, i % 6] and f.sum() == 1 for i, f in enumerate(frames))
    with pytest.raises(ValueError, match="bool"):
        writer.write(np.zeros((4, 6), np.uint8))
    with pytest.raises(ValueError, match=r"\(4, 6\)"):
        writer.write(np.zeros((5, 6), bool))
    assert len(sequence_files(tmp_path / "masks")) == 12  # refused frames wrote nothing


def test_rgba_and_gray_sequences_and_resume(tmp_path: Path) -> None:
    layers = PngSequenceWriter(tmp_path / "layers", "rgba", width=3, height=2)
    layers.write(np.full((2, 3, 4), 7, np.uint8))
    with pytest.raises(ValueError, match="rgba"):
        layers.write(np.full((2, 3, 3), 7, np.uint8))
    shadow = PngSequenceWriter(tmp_path / "shadow", "gray", width=3, height=2, start=5)
    assert shadow.write(np.full((2, 3), 128, np.uint8)).name == "00005.png"
    assert shadow.write_at(9, np.zeros((2, 3), np.uint8)).name == "00009.png"
    assert shadow.next_index == 10
    gray = list(iter_sequence(tmp_path / "shadow", "gray"))
    assert [int(g[0, 0]) for g in gray] == [128, 0]
    assert read_sequence(tmp_path / "nothing") == []


def test_unknown_kind_and_negative_index(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="kind"):
        PngSequenceWriter(tmp_path, "depth", 2, 2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=">= 0"):
        frame_name(-1)
