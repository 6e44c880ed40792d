"""Work-folder safety: generated ids, checked paths, refused folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from insertanywhere.errors import InputError
from insertanywhere.ui.previews import choose_preview_frames
from insertanywhere.ui.workspace import (
    ID_PATTERN,
    NotFoundError,
    PathRefusedError,
    Workspace,
    check_id,
    display_name,
    resolve_inside,
    safe_suffix,
)


@pytest.mark.parametrize(
    "relative",
    ["../secret", "a/../../secret", "/etc/passwd", "~/x", "a\\..\\b", "C:/x", "sub/\x00", "", "  "],
)
def test_resolve_inside_refuses_escapes(tmp_path: Path, relative: str) -> None:
    (tmp_path / "root" / "sub").mkdir(parents=True)
    with pytest.raises(PathRefusedError):
        resolve_inside(tmp_path / "root", relative)


def test_resolve_inside_accepts_inner_paths(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    assert resolve_inside(root, "sub/../sub/file.txt") == (root / "sub" / "file.txt").resolve()
    assert resolve_inside(root, ".") == root.resolve()


def test_resolve_inside_refuses_symlink_out(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "outside.txt").write_text("secret")
    os.symlink(tmp_path / "outside.txt", root / "link.txt")
    with pytest.raises(PathRefusedError, match="leaves the work folder"):
        resolve_inside(root, "link.txt")


@pytest.mark.parametrize("value", ["../../etc", "0123456789abcdeg", "0123456789ABCDEF", "abc", ""])
def test_check_id_refuses_non_ids(value: str) -> None:
    with pytest.raises(NotFoundError):
        check_id(value, "video")


def test_new_folders_get_generated_ids(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path / "work").prepare()
    first, folder = workspace.new_folder("videos")
    second, _ = workspace.new_folder("videos")
    assert ID_PATTERN.match(first) and first != second
    assert folder.parent == workspace.root / "videos"
    assert workspace.folder("videos", first) == folder
    with pytest.raises(NotFoundError):
        workspace.folder("videos", "0" * 16)


def test_prepare_refuses_a_foreign_folder(tmp_path: Path) -> None:
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("x")
    with pytest.raises(InputError, match="not made by"):
        Workspace(foreign).prepare()
    Workspace(tmp_path / "fresh").prepare()
    Workspace(tmp_path / "fresh").prepare()  # a folder the UI made is reused


def test_safe_suffix_and_display_name() -> None:
    assert safe_suffix("My Clip.MP4", (".mp4",), "video") == ".mp4"
    with pytest.raises(InputError, match="must be one of"):
        safe_suffix("evil.sh", (".mp4",), "video")
    with pytest.raises(InputError):
        safe_suffix(None, (".mp4",), "video")
    assert display_name("../../etc/passwd") == "passwd"
    assert display_name("C:\\Users\\me\\clip.mp4") == "clip.mp4"
    assert display_name("a\x1b[31mb.mp4") == "a[31mb.mp4"


@pytest.mark.parametrize(
    ("frame", "n_frames", "expected"),
    [(0, 9, [0, 3, 5, 8]), (4, 9, [4, 0, 3, 8]), (8, 9, [8, 0, 3, 5]), (0, 1, [0]), (1, 2, [1, 0])],
)
def test_choose_preview_frames(frame: int, n_frames: int, expected: list[int]) -> None:
    chosen = choose_preview_frames(frame, n_frames, count=4)
    assert chosen[0] == frame
    assert chosen == expected
    assert len(set(chosen)) == len(chosen)
