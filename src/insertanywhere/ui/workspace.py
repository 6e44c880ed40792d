"""The UI's work folder: every file the page reads or writes lives inside it.

Layout (each id is 16 random hex digits made here, never a name from a request)::

    WORKDIR/
      .insertanywhere-ui          marks the folder as made by the UI
      library/                    cases and files the user put there to open from the page
      videos/<id>/source.<ext>    an uploaded or opened video, under a generated name
      videos/<id>/info.json       ClipInfo, the original file name, the display scale
      videos/<id>/frames/NNNNN.jpg  display frames for scrubbing (any codec plays in any browser)
      videos/<id>/scenes/<key>/   the output folder previews use, so their Scene4D is reused by later runs
      objects/<id>/object.<ext>   an uploaded or opened object (RGBA image or mesh)
      objects/<id>/info.json, thumb.png
      runs/<id>/                  one insertion's output folder (docs/design.md contract) + run.json

Safety (see docs/ui.md): request paths are never joined blindly. Ids must match
``ID_PATTERN``; the few relative paths a request may name (a library entry, a
file inside a run) go through ``resolve_inside``, which resolves symlinks and
``..`` and refuses anything that leaves its root.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from insertanywhere.errors import InputError, UserError
from insertanywhere.io.atomic import write_json_atomic

UI_MARKER_NAME = ".insertanywhere-ui"
ID_PATTERN = re.compile(r"^[0-9a-f]{16}$")

VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi")
OBJECT_IMAGE_SUFFIXES = (".png", ".webp", ".tif", ".tiff")
OBJECT_MESH_SUFFIXES = (".glb", ".gltf", ".obj", ".ply", ".off", ".stl")
OBJECT_SUFFIXES = OBJECT_IMAGE_SUFFIXES + OBJECT_MESH_SUFFIXES

KINDS = ("videos", "objects", "runs")


class PathRefusedError(UserError):
    """A path from a request that would leave its folder (``..``, an absolute path, a symlink out)."""


class NotFoundError(UserError):
    """An id or file the page asked for does not exist (any more)."""


class TooLargeError(UserError):
    """An upload over the configured size or frame limit."""


@dataclass(frozen=True)
class Limits:
    """What the page accepts; all configurable from ``insertanywhere ui``.

    Attributes:
        max_upload_bytes: largest accepted upload (one file), bytes.
        max_frames: longest accepted video, frames.
        max_display_width: display frames are scaled down to at most this width, pixels.
    """

    max_upload_bytes: int = 512 * 1024 * 1024
    max_frames: int = 600
    max_display_width: int = 1280

    def to_dict(self) -> dict[str, int]:
        return {
            "max_upload_bytes": self.max_upload_bytes,
            "max_frames": self.max_frames,
            "max_display_width": self.max_display_width,
        }


def resolve_inside(root: Path, relative: str) -> Path:
    """Resolve a relative path from a request and check it stays inside ``root``.

    Args:
        root: the folder the path must stay in (resolved here).
        relative: a POSIX-style relative path from the request.

    Returns:
        The resolved absolute path (symlinks followed), inside ``root``.

    Raises:
        PathRefusedError: for an absolute path, a NUL byte, a backslash, or any path whose
            resolution leaves ``root`` (``..``, a symlink pointing out).
    """
    if not isinstance(relative, str) or not relative.strip():
        raise PathRefusedError("empty path; name a file or folder inside the work folder")
    if "\x00" in relative or "\\" in relative or relative.startswith(("/", "~")) or re.match(r"^[A-Za-z]:", relative):
        raise PathRefusedError(f"path {relative!r} is refused: give a relative path inside the work folder")
    root_resolved = root.resolve()
    candidate = (root_resolved / relative).resolve()
    if candidate != root_resolved and root_resolved not in candidate.parents:
        raise PathRefusedError(f"path {relative!r} leaves the work folder and is refused")
    return candidate


def check_id(value: str, what: str) -> str:
    """Return ``value`` if it is a well-formed id, else raise NotFoundError (an id is never a path)."""
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise NotFoundError(f"no {what} {value!r}: ids are 16 hex digits made by this page")
    return value


def safe_suffix(filename: str | None, allowed: tuple[str, ...], what: str) -> str:
    """The lower-case suffix of an uploaded file's name, checked against ``allowed``.

    Only the suffix of the client's name is ever used (to pick a decoder); the
    stored name is generated.
    """
    suffix = Path(filename or "").suffix.lower()
    if suffix not in allowed:
        shown = Path(filename or "").name[:80] or "(no name)"
        raise InputError(f"{shown}: a {what} must be one of {', '.join(allowed)}; choose such a file")
    return suffix


def display_name(filename: str | None) -> str:
    """A short, printable version of a client-given file name, for the page only."""
    name = Path((filename or "").replace("\\", "/")).name
    name = "".join(ch for ch in name if ch.isprintable())
    return name[:120] or "upload"


class Workspace:
    """The work folder: generated names, checked paths, JSON records."""

    def __init__(self, root: str | os.PathLike[str], limits: Limits | None = None) -> None:
        self.root = Path(root).resolve()
        self.limits = limits or Limits()

    # -- setup -----------------------------------------------------------------------------
    def prepare(self) -> Workspace:
        """Create the folder (or reuse one the UI made); refuse a non-empty folder it did not make."""
        if self.root.exists() and not self.root.is_dir():
            raise InputError(f"work folder {self.root} exists and is not a folder; choose a folder path")
        if self.root.exists() and any(self.root.iterdir()) and not (self.root / UI_MARKER_NAME).exists():
            raise InputError(
                f"work folder {self.root} is not empty and was not made by `insertanywhere ui`; "
                "choose an empty or new folder with --workdir"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / UI_MARKER_NAME).write_text("made by insertanywhere ui\n")
        for kind in (*KINDS, "library"):
            (self.root / kind).mkdir(exist_ok=True)
        return self

    @property
    def library(self) -> Path:
        return self.root / "library"

    # -- ids and folders ---------------------------------------------------------------------
    def new_folder(self, kind: str) -> tuple[str, Path]:
        """Make ``WORKDIR/<kind>/<new id>/`` and return (id, folder)."""
        assert kind in KINDS
        for _ in range(8):
            item_id = secrets.token_hex(8)
            folder = self.root / kind / item_id
            try:
                folder.mkdir(parents=True)
            except FileExistsError:
                continue
            return item_id, folder
        raise RuntimeError("could not make a fresh folder id")  # 2^64 ids: unreachable in practice

    def folder(self, kind: str, item_id: str) -> Path:
        """The existing folder of an id; NotFoundError when malformed or absent."""
        assert kind in KINDS
        check_id(item_id, kind[:-1])
        folder = self.root / kind / item_id
        if not folder.is_dir():
            raise NotFoundError(f"no {kind[:-1]} {item_id}; upload or open it again")
        return folder

    def list_ids(self, kind: str) -> list[str]:
        """Ids of ``kind`` that have an ``info.json`` (videos, objects) or ``run.json`` (runs), newest first."""
        record = "run.json" if kind == "runs" else "info.json"
        folders = [p for p in (self.root / kind).iterdir() if ID_PATTERN.match(p.name) and (p / record).is_file()]
        folders.sort(key=lambda p: (p / record).stat().st_mtime, reverse=True)
        return [p.name for p in folders]

    def remove(self, kind: str, item_id: str) -> None:
        shutil.rmtree(self.folder(kind, item_id), ignore_errors=True)

    # -- records -----------------------------------------------------------------------------
    @staticmethod
    def write_record(path: Path, data: dict[str, Any]) -> None:
        write_json_atomic(path, data)

    @staticmethod
    def read_record(path: Path) -> dict[str, Any]:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise NotFoundError(f"{path.parent.name}: its record cannot be read ({err}); upload it again") from None

    # -- files inside a folder ---------------------------------------------------------------
    def file_in(self, kind: str, item_id: str, relative: str) -> Path:
        """An existing file inside an item's folder, from a relative path in a request."""
        path = resolve_inside(self.folder(kind, item_id), relative)
        if not path.is_file():
            raise NotFoundError(f"no file {relative!r} in {kind[:-1]} {item_id}")
        return path


def link_or_copy_tree(source: Path, target: Path) -> None:
    """Copy a folder by hard links where the file system allows, else by copying.

    Hard links are safe here because every writer in the project replaces files by
    rename (io.atomic), never rewriting an inode in place.
    """

    def link_or_copy(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=link_or_copy, dirs_exist_ok=True)
