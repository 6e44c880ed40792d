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
from fractions import Fraction
from pathlib import Path
from typing import Any

from insertanywhere.errors import InputError

MARKER_NAME = ".insertanywhere"
"""File that marks a folder as made by this tool (so it may be reused or overwritten)."""


def _current_umask() -> int:
    # os.umask can only be read by setting it; set it straight back (a process-wide value, read once per call).
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _give_default_permissions(path: Path, is_dir: bool) -> None:
    """mkstemp/mkdtemp create 0600/0700 entries; give the final output the permissions a plain open() would."""
    base = 0o777 if is_dir else 0o666
    os.chmod(path, base & ~_current_umask())


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
        if tmp.exists():  # a writer may have replaced the file; keep what it made
            _give_default_permissions(tmp, is_dir=False)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


def _json_default(value: Any) -> Any:
    """JSON for the numpy scalars and arrays, paths and fractions that containers hold."""
    import numpy as np

    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Fraction):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def write_json_atomic(path: str | os.PathLike[str], data: Any) -> None:
    """Write ``data`` as indented JSON atomically; numpy values, paths and fractions are converted.

    Python's NaN/Infinity spelling is kept for non-finite floats (strict parsers reject it: write None instead).
    A value that cannot be serialised raises TypeError before the file is touched.
    """
    text = json.dumps(data, indent=1, default=_json_default)
    write_text_atomic(path, text + "\n")


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
        _give_default_permissions(tmp, is_dir=True)
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
    made by this tool is refused unless ``overwrite`` (which lets the tool write
    into it, replacing files of the same names; nothing else is deleted). An output
    folder that is or contains one of the ``inputs`` is always refused, so inputs
    are never overwritten.

    Args:
        path: the output folder.
        overwrite: accept a non-empty folder not made by this tool.
        inputs: the input files or folders of the run.

    Returns:
        The resolved output folder, holding the marker file.
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
    if not (out / MARKER_NAME).exists():
        write_text_atomic(out / MARKER_NAME, "made by insertanywhere\n")
    return out
