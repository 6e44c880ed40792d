"""Atomic outputs and the output-folder guard."""

from __future__ import annotations

import json
import os
import stat
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from insertanywhere.errors import InputError
from insertanywhere.io.atomic import (
    MARKER_NAME,
    atomic_dir,
    atomic_path,
    prepare_output_dir,
    read_json,
    write_json_atomic,
    write_text_atomic,
)


def test_failure_mid_write_leaves_no_final_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "result.json"
    with pytest.raises(RuntimeError, match="crash"), atomic_path(target) as tmp:
        tmp.write_text('{"half": ')
        raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []


def test_failure_keeps_the_previous_version(tmp_path: Path) -> None:
    target = tmp_path / "result.txt"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("new but broken")
        raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["result.txt"]


def test_temp_name_is_a_hidden_sibling_with_the_suffix(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "sub" / "a.png") as tmp:
        assert tmp.parent == tmp_path / "sub" and tmp.name.startswith(".a.") and tmp.name.endswith(".png")
        tmp.write_bytes(b"x")
    assert (tmp_path / "sub" / "a.png").read_bytes() == b"x"


def test_outputs_get_umask_permissions_not_mkstemp_ones(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "f.txt", "x")
        with atomic_dir(tmp_path / "d") as tmp:
            (tmp / "inner.txt").write_text("y")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f.txt").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o755


def test_json_round_trip_with_numpy_values(tmp_path: Path) -> None:
    data = {"k": np.eye(3), "n": np.int64(4), "x": np.float32(0.5), "p": tmp_path, "fps": Fraction(30000, 1001)}
    write_json_atomic(tmp_path / "d.json", data)
    back = read_json(tmp_path / "d.json")
    assert back["k"] == np.eye(3).tolist() and back["n"] == 4 and back["x"] == 0.5
    assert back["p"] == str(tmp_path) and back["fps"] == pytest.approx(29.97002997)
    with pytest.raises(TypeError):
        write_json_atomic(tmp_path / "e.json", {"bad": object()})
    assert not (tmp_path / "e.json").exists()


def test_read_json_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_json(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text('{"frame": 0,\n "box": [1, 2')
    with pytest.raises(InputError, match="not valid JSON") as err:
        read_json(tmp_path / "bad.json")
    assert "\n" not in str(err.value)
    assert json.loads('{"a": 1}') == {"a": 1}


def test_atomic_dir_replaces_whole_or_not_at_all(tmp_path: Path) -> None:
    final = tmp_path / "scene"
    with atomic_dir(final) as tmp:
        (tmp / "a.npy").write_bytes(b"1")
    with pytest.raises(RuntimeError), atomic_dir(final) as tmp:
        (tmp / "b.npy").write_bytes(b"2")
        raise RuntimeError("crash")
    assert [p.name for p in final.iterdir()] == ["a.npy"]
    assert [p.name for p in tmp_path.iterdir()] == ["scene"]  # no temp folder left behind


def test_prepare_output_dir_creates_and_marks(tmp_path: Path) -> None:
    out = prepare_output_dir(tmp_path / "new" / "out")
    assert out.is_dir() and (out / MARKER_NAME).is_file()
    (out / "inserted.mp4").write_bytes(b"x")
    assert prepare_output_dir(out) == out  # our own folder is reused (resume)


def test_prepare_output_dir_accepts_an_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert (prepare_output_dir(tmp_path / "empty") / MARKER_NAME).is_file()


def test_foreign_non_empty_folder_needs_overwrite(tmp_path: Path) -> None:
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"precious")
    with pytest.raises(InputError, match="--overwrite"):
        prepare_output_dir(foreign)
    assert not (foreign / MARKER_NAME).exists()
    prepare_output_dir(foreign, overwrite=True)
    assert (foreign / "holiday.jpg").read_bytes() == b"precious"  # overwrite deletes nothing by itself


def test_output_containing_an_input_is_refused_even_with_overwrite(tmp_path: Path) -> None:
    video = tmp_path / "clips" / "in.mp4"
    video.parent.mkdir()
    video.write_bytes(b"video")
    for out in (tmp_path / "clips", tmp_path):
        with pytest.raises(InputError, match="contains the input"):
            prepare_output_dir(out, overwrite=True, inputs=(video,))
    frames = tmp_path / "frames"
    frames.mkdir()
    with pytest.raises(InputError, match="contains the input"):
        prepare_output_dir(frames, overwrite=True, inputs=(frames,))
    assert video.read_bytes() == b"video"


def test_output_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "out").write_text("a file")
    with pytest.raises(InputError, match="not a folder"):
        prepare_output_dir(tmp_path / "out", overwrite=True)
