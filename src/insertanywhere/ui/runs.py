"""Insertion runs in a background thread, one at a time, with progress the page polls.

Each run owns ``WORKDIR/runs/<id>/`` (the output folder) and a ``run.json``
record written at start and end, so finished runs survive a restart of the page.
Live progress (stage, done, total) is kept in memory and read by
``GET /api/runs/<id>``. A cancel request is honoured at the pipeline's next
progress report (the only place the core yields control).
"""

from __future__ import annotations

import logging
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from insertanywhere.conventions import PlacementError
from insertanywhere.errors import UserError
from insertanywhere.io.atomic import MARKER_NAME, atomic_path
from insertanywhere.ui.backend import InsertBackend, InsertRequest
from insertanywhere.ui.workspace import NotFoundError, Workspace, link_or_copy_tree

log = logging.getLogger(__name__)

RunStatus = Literal["queued", "running", "done", "failed", "cancelled", "interrupted"]
ZIP_PARTS = ("masks", "layers", "shadow", "all")
RESULT_FILES = ("inserted.mp4", "preview.png", "report.json", "track.json")


class RunCancelledError(Exception):
    """Raised inside the pipeline's progress callback to stop a run the user cancelled."""


@dataclass
class RunState:
    """What the page shows about one run."""

    run_id: str
    request: dict[str, Any]
    status: RunStatus = "queued"
    stage: str = ""
    done: int = 0
    total: int = 0
    stages: dict[str, list[int]] = field(default_factory=dict)
    error: str | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "request": self.request,
            "status": self.status,
            "stage": self.stage,
            "done": self.done,
            "total": self.total,
            "stages": dict(self.stages),  # a C-level copy: the worker may add a stage meanwhile
            "error": self.error,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
        }


def describe_error(err: BaseException) -> str:
    """One line for the page: ``ValueError: message`` (or the class name alone when there is no message)."""
    message = " ".join(str(err).split())
    return f"{err.__class__.__name__}: {message}" if message else err.__class__.__name__


def scene_cache_dir(workspace: Workspace, video_id: str, depth: str, flow: str) -> Path:
    """The folder whose ``scene/`` previews and runs of one video (and one depth/flow pair) share."""
    key = f"{depth}-{flow}".replace("/", "_")
    return workspace.folder("videos", video_id) / "scenes" / key


def mark_output_dir(folder: Path) -> None:
    """Create an output folder the pipeline will accept and reuse (io.atomic's marker)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER_NAME).write_text("made by insertanywhere\n")


class RunManager:
    """Queue of insertion runs executed by one worker thread."""

    def __init__(self, workspace: Workspace, backend: InsertBackend) -> None:
        self.workspace = workspace
        self.backend = backend
        self._states: dict[str, RunState] = {}
        self._lock = threading.Lock()
        self._zip_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="insert-run")

    # -- submit and watch -------------------------------------------------------------------------
    def submit(self, request: InsertRequest, video_id: str, record: dict[str, Any]) -> RunState:
        """Queue ``request`` (its ``out`` is replaced by a fresh run folder); return the new state."""
        run_id, out = self.workspace.new_folder("runs")
        mark_output_dir(out)
        request = InsertRequest(**{**request.__dict__, "out": out})
        state = RunState(run_id=run_id, request=record)
        with self._lock:
            self._states[run_id] = state
        self._save(state)
        self._executor.submit(self._execute, state, request, video_id)
        return state

    def get(self, run_id: str) -> dict[str, Any]:
        folder = self.workspace.folder("runs", run_id)
        with self._lock:
            state = self._states.get(run_id)
        data = state.to_dict() if state is not None else self._load(folder)
        data["files"] = self.result_files(folder) if data["status"] == "done" else {}
        return data

    def list_runs(self) -> list[dict[str, Any]]:
        return [self.get(run_id) for run_id in self.workspace.list_ids("runs")]

    def cancel(self, run_id: str) -> dict[str, Any]:
        self.workspace.folder("runs", run_id)
        with self._lock:
            state = self._states.get(run_id)
        if state is None or state.status not in ("queued", "running"):
            raise UserError(f"run {run_id} is not running; nothing to cancel")
        state.cancel.set()
        return self.get(run_id)

    def shutdown(self) -> None:
        with self._lock:
            for state in self._states.values():
                state.cancel.set()
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- the worker ---------------------------------------------------------------------------------
    def _execute(self, state: RunState, request: InsertRequest, video_id: str) -> None:
        if state.cancel.is_set():
            self._finish(state, "cancelled", None)
            return
        state.status = "running"
        state.started = time.time()
        self._save(state)

        def progress(stage: str, done: int, total: int) -> None:
            state.stage, state.done, state.total = stage, int(done), int(total)
            state.stages[stage] = [int(done), int(total)]
            if state.cancel.is_set():
                raise RunCancelledError()

        cache = scene_cache_dir(self.workspace, video_id, request.depth, request.flow)
        try:
            # Reuse the Scene4D an earlier preview or run built for this video (design: scene/ is reused).
            if (cache / "scene").is_dir() and not (request.out / "scene").exists():
                link_or_copy_tree(cache / "scene", request.out / "scene")
            self.backend.run(request, progress)
            if not (cache / "scene").exists() and (request.out / "scene").is_dir():
                mark_output_dir(cache)
                link_or_copy_tree(request.out / "scene", cache / "scene")
        except RunCancelledError:
            self._finish(state, "cancelled", "cancelled by the user")
        except (UserError, PlacementError) as err:
            self._finish(state, "failed", str(err))
        except Exception as err:  # shown on the page in one line; the traceback goes to the server log
            log.exception("run %s failed", state.run_id)
            self._finish(state, "failed", f"the run failed: {describe_error(err)}")
        else:
            self._finish(state, "done", None)

    def _finish(self, state: RunState, status: RunStatus, error: str | None) -> None:
        state.status = status
        state.error = error
        state.finished = time.time()
        self._save(state)

    # -- records ------------------------------------------------------------------------------------
    def _save(self, state: RunState) -> None:
        self.workspace.write_record(self.workspace.root / "runs" / state.run_id / "run.json", state.to_dict())

    def _load(self, folder: Path) -> dict[str, Any]:
        data = self.workspace.read_record(folder / "run.json")
        if data.get("status") in ("queued", "running"):
            data["status"] = "interrupted"  # the page was restarted while it ran
            data["error"] = "the page was stopped while this run was going; run it again"
        return data

    # -- results ------------------------------------------------------------------------------------
    @staticmethod
    def result_files(folder: Path) -> dict[str, Any]:
        """Which outputs exist: the fixed files, and the frame count of each PNG sequence."""
        files: dict[str, Any] = {name: (folder / name).is_file() for name in RESULT_FILES}
        for sequence in ("masks", "layers", "shadow"):
            files[sequence] = len(list((folder / sequence).glob("*.png"))) if (folder / sequence).is_dir() else 0
        return files

    def zip_part(self, run_id: str, part: str) -> Path:
        """Build (once) and return ``downloads/<part>.zip`` of a finished run.

        Parts: masks, layers, shadow (one PNG sequence each) or all (every output but the
        reusable ``scene/`` cache, which is large and internal).
        """
        if part not in ZIP_PARTS:
            raise NotFoundError(f"no download {part!r}; choose one of {', '.join(ZIP_PARTS)}")
        data = self.get(run_id)
        if data["status"] != "done":
            raise UserError(f"run {run_id} is {data['status']}; downloads exist once it is done")
        folder = self.workspace.folder("runs", run_id)
        target = folder / "downloads" / f"{part}.zip"
        with self._zip_lock:
            if not target.is_file():
                members = self._zip_members(folder, part)
                if not members:
                    raise NotFoundError(f"run {run_id} has no {part} to download")
                with atomic_path(target) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as archive:
                    for path in members:
                        # PNG and H.264 are compressed already: storing is as small and much faster.
                        archive.write(path, path.relative_to(folder).as_posix())
        return target

    @staticmethod
    def _zip_members(folder: Path, part: str) -> list[Path]:
        if part != "all":
            return sorted((folder / part).glob("*.png")) if (folder / part).is_dir() else []
        skip = {"scene", "downloads"}
        members = []
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder)
            if relative.parts[0] in skip or not path.is_file() or path.name.startswith("."):
                continue
            if path.name == "run.json":
                continue
            members.append(path)
        return members
