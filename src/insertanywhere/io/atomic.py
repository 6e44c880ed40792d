"""Atomic output writing and the output-folder guard.

Every file the tool writes goes to a temporary name in the same folder and is
renamed into place, so a crash never leaves a half-written file under a final name.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from insertanywhere.errors import InputError

MARKER_NAME = ".insertanywhere"
"""File that marks a folder as made by this tool (so it may be reused or overwritten)."""


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    The temporary name keeps the suffix so libraries that pick a format by suffix work.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=f".tmp{final.suffix}", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike[str], data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=1) + "\n")


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read JSON, or raise InputError with the file and the parse error in one line."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not valid JSON ({err})") from None


@contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it replaces ``path`` whole."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def prepare_output_dir(path: str | os.PathLike[str], overwrite: bool = False, inputs: tuple[Path, ...] = ()) -> Path:
    """Make ``path`` ready to receive outputs.

    A missing or empty folder is created; a folder this tool made (it holds the
    marker) is reused, so cached stages can be resumed; a non-empty folder not
    made by this tool is refused unless ``overwrite``. An output folder that
    contains one of the ``inputs`` is always refused, so inputs are never overwritten.
    """
    out = Path(path).resolve()
    for source in inputs:
        source = Path(source).resolve()
        if source == out or out in source.parents:
            raise InputError(f"output folder {out} contains the input {source}; choose another output folder")
    if out.exists() and not out.is_dir():
        raise InputError(f"output {out} exists and is not a folder; choose a folder path")
    if out.exists() and any(out.iterdir()) and not (out / MARKER_NAME).exists() and not overwrite:
        raise InputError(
            f"output folder {out} is not empty and was not made by insertanywhere; "
            "choose an empty folder or pass --overwrite"
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER_NAME).write_text("made by insertanywhere\n")
    return out
