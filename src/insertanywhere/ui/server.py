"""The placement page's HTTP server (FastAPI): JSON API + the static front end in ``ui/static``.

Safe by default (docs/ui.md): it binds to 127.0.0.1; Host headers are checked
against the loopback names (no DNS rebinding); every state-changing request must
carry the ``X-InsertAnywhere`` header, which a page from another origin cannot
send without a CORS grant we never give; uploads are streamed to generated
names with a size cap; ids are never paths; the few request paths are resolved
and checked to stay inside the work folder.

API (all JSON unless said; errors are ``{"error": "one line"}``):

=======  ==========================================  =================================================
GET      /api/config                                 limits, pipeline availability
POST     /api/videos?name=clip.mp4  (raw body)       upload a video -> its info
GET      /api/videos/{id}/frames/{index}             display frame, JPEG
POST     /api/objects?name=cup.png  (raw body)       upload an object -> its info
GET      /api/objects/{id}/thumb?yaw_deg=0           thumbnail PNG (a mesh is drawn turned by yaw)
GET      /api/library                                cases and files under WORKDIR/library
POST     /api/library/open  {"path": "demo"}         bring a library case/file in -> video/object/placement
POST     /api/preview  {insert body, frames?}        composites of a few frames (data URIs)
GET      /api/preview/status                         stage of the preview computing now
POST     /api/runs  {insert body}                    queue an insertion -> run state
GET      /api/runs, /api/runs/{id}                   run states with progress and result files
POST     /api/runs/{id}/cancel                       stop a run at its next progress report
GET      /api/runs/{id}/files/{path}                 a result file (inserted.mp4, masks/00000.png, ...)
GET      /api/runs/{id}/zip/{masks|layers|shadow|all}  a zip of a finished run's outputs
=======  ==========================================  =================================================
"""

import contextlib
import functools
import logging
import math
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

from insertanywhere.conventions import Placement, PlacementError
from insertanywhere.errors import InputError, MissingDependencyError, UserError, require
from insertanywhere.io.atomic import read_json
from insertanywhere.io.images import frame_name
from insertanywhere.ui.backend import InsertBackend, InsertRequest, PipelineBackend
from insertanywhere.ui.media import copy_into, crop_to_alpha, mesh_front_view, prepare_object, prepare_video
from insertanywhere.ui.previews import PreviewService, choose_preview_frames
from insertanywhere.ui.runs import RunManager, describe_error, scene_cache_dir
from insertanywhere.ui.workspace import (
    OBJECT_SUFFIXES,
    VIDEO_SUFFIXES,
    Limits,
    NotFoundError,
    PathRefusedError,
    TooLargeError,
    Workspace,
    display_name,
    resolve_inside,
    safe_suffix,
)

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
CSRF_HEADER = "x-insertanywhere"
MAX_JSON_BYTES = 1 << 20
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
UPLOAD_CHUNK_BYTES = 1 << 20


def default_allowed_hosts(host: str) -> list[str]:
    """Host headers accepted: the loopback names when bound to loopback, else any (the user opened it)."""
    if host in LOOPBACK_HOSTS:
        return ["127.0.0.1", "localhost", "[::1]"]
    return ["*"]


def host_name(host_header: str) -> str:
    """The name part of a Host header: ``127.0.0.1:8765`` -> ``127.0.0.1``, ``[::1]:8765`` -> ``[::1]``."""
    host_header = host_header.strip().lower()
    if host_header.startswith("["):
        return host_header[: host_header.find("]") + 1] if "]" in host_header else host_header
    return host_header.split(":", 1)[0]


def _status_of(err: Exception) -> int:
    if isinstance(err, NotFoundError):
        return 404
    if isinstance(err, PathRefusedError):
        return 403
    if isinstance(err, TooLargeError):
        return 413
    if isinstance(err, MissingDependencyError):
        return 503
    return 400


def create_app(
    workdir: str | Path,
    limits: Limits | None = None,
    backend: InsertBackend | None = None,
    allowed_hosts: list[str] | None = None,
) -> Any:
    """Build the FastAPI app serving the page for one work folder.

    Args:
        workdir: the work folder (created, or reused when the UI made it).
        limits: upload size, frame count and display width limits.
        backend: the pipeline calls (default: ``insertanywhere.pipeline``).
        allowed_hosts: accepted Host headers (default: loopback names).
    """
    require("fastapi", "ui")
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse, Response
    from fastapi.staticfiles import StaticFiles
    from pydantic import BaseModel, Field
    from starlette.concurrency import run_in_threadpool

    workspace = Workspace(workdir, limits).prepare()
    limits = workspace.limits
    backend = backend or PipelineBackend()
    runs = RunManager(workspace, backend)
    previews = PreviewService(backend, max_width=limits.max_display_width)

    @contextlib.asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        yield
        runs.shutdown()

    app = FastAPI(title="InsertAnywhere", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.workspace = workspace
    app.state.runs = runs

    # ------------------------------------------------------------------ errors and guards
    @app.exception_handler(UserError)
    async def _user_error(request: Request, err: UserError) -> JSONResponse:
        return JSONResponse({"error": str(err)}, status_code=_status_of(err))

    @app.exception_handler(PlacementError)
    async def _placement_error(request: Request, err: PlacementError) -> JSONResponse:
        return JSONResponse({"error": str(err)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0] if err.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return JSONResponse({"error": f"bad request: {where}: {first.get('msg', 'invalid')}"}, status_code=422)

    accepted_hosts = set(allowed_hosts or default_allowed_hosts("127.0.0.1"))

    @app.middleware("http")
    async def _guard(request: Request, call_next: Any) -> Any:
        if "*" not in accepted_hosts and host_name(request.headers.get("host", "")) not in accepted_hosts:
            # A page whose domain was rebound to 127.0.0.1 still sends its own name as Host (DNS rebinding).
            return JSONResponse({"error": "unknown Host header; open the page as http://127.0.0.1:PORT/"}, 400)
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            if request.headers.get(CSRF_HEADER) != "1":
                return JSONResponse(
                    {"error": f"missing the {CSRF_HEADER} header; use the page, or send '{CSRF_HEADER}: 1'"},
                    status_code=403,
                )
            declared = request.headers.get("content-length")
            is_upload = request.url.path in ("/api/videos", "/api/objects")
            if declared is not None and declared.isdigit() and not is_upload and int(declared) > MAX_JSON_BYTES:
                return JSONResponse({"error": "request body too large"}, status_code=413)
        response = await call_next(request)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
            "style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'"
        )
        return response

    # ------------------------------------------------------------------ page
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/api/config")
    async def config() -> dict[str, Any]:
        return {
            "limits": limits.to_dict(),
            "pipeline": backend.available(),
            "video_suffixes": VIDEO_SUFFIXES,
            "object_suffixes": OBJECT_SUFFIXES,
        }

    # ------------------------------------------------------------------ uploads
    async def save_upload(request: Request, target: Path, shown: str) -> None:
        limit = limits.max_upload_bytes
        limit_text = f"{limit / 2**20:.0f} MiB"
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise TooLargeError(f"{shown}: {int(declared) / 2**20:.1f} MiB is over the upload limit of {limit_text}")
        size = 0
        with open(target, "wb") as sink:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise TooLargeError(
                        f"{shown}: over the upload limit of {limit_text}; start the page with a higher --max-upload-mb"
                    )
                sink.write(chunk)
        if size == 0:
            raise InputError(f"{shown}: the file is empty")

    def video_record(video_id: str) -> dict[str, Any]:
        record = workspace.read_record(workspace.folder("videos", video_id) / "info.json")
        return {"video_id": video_id, **record}

    def object_record(object_id: str) -> dict[str, Any]:
        record = workspace.read_record(workspace.folder("objects", object_id) / "info.json")
        return {"object_id": object_id, **record}

    async def ingest(kind: Literal["videos", "objects"], shown: str, fill: Any) -> dict[str, Any]:
        """Make a folder, let ``fill(folder) -> source`` put the file there, validate, record."""
        item_id, folder = workspace.new_folder(kind)
        try:
            source = await fill(folder)
            if kind == "videos":
                record = await run_in_threadpool(prepare_video, folder, source, shown, limits)
            else:
                record = await run_in_threadpool(prepare_object, folder, source, shown)
            workspace.write_record(folder / "info.json", record)
        except BaseException:
            workspace.remove(kind, item_id)
            raise
        return video_record(item_id) if kind == "videos" else object_record(item_id)

    @app.post("/api/videos")
    async def upload_video(request: Request, name: str = "") -> dict[str, Any]:
        shown = display_name(name)
        suffix = safe_suffix(name, VIDEO_SUFFIXES, "video")

        async def fill(folder: Path) -> Path:
            await save_upload(request, folder / f"source{suffix}", shown)
            return folder / f"source{suffix}"

        return await ingest("videos", shown, fill)

    @app.post("/api/objects")
    async def upload_object(request: Request, name: str = "") -> dict[str, Any]:
        shown = display_name(name)
        suffix = safe_suffix(name, OBJECT_SUFFIXES, "object")

        async def fill(folder: Path) -> Path:
            await save_upload(request, folder / f"object{suffix}", shown)
            return folder / f"object{suffix}"

        return await ingest("objects", shown, fill)

    @app.get("/api/videos")
    async def list_videos() -> list[dict[str, Any]]:
        return [video_record(i) for i in workspace.list_ids("videos")]

    @app.get("/api/videos/{video_id}")
    async def get_video(video_id: str) -> dict[str, Any]:
        return video_record(video_id)

    @app.get("/api/videos/{video_id}/frames/{index}")
    async def video_frame(video_id: str, index: int) -> FileResponse:
        record = video_record(video_id)
        if not 0 <= index < int(record["n_frames"]):
            raise NotFoundError(f"frame {index} is out of range 0..{int(record['n_frames']) - 1}")
        path = workspace.file_in("videos", video_id, "frames/" + frame_name(index).replace(".png", ".jpg"))
        return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"})

    @app.get("/api/objects")
    async def list_objects() -> list[dict[str, Any]]:
        return [object_record(i) for i in workspace.list_ids("objects")]

    @app.get("/api/objects/{object_id}")
    async def get_object(object_id: str) -> dict[str, Any]:
        return object_record(object_id)

    @functools.lru_cache(maxsize=4)
    def load_mesh(path: Path) -> Any:
        from insertanywhere.io.assets import load_object

        return load_object(path)

    @app.get("/api/objects/{object_id}/thumb")
    async def object_thumb(object_id: str, yaw_deg: float = 0.0) -> Response:
        if not math.isfinite(yaw_deg):
            raise InputError("yaw_deg must be a finite number of degrees")
        record = object_record(object_id)
        if record["kind"] != "mesh" or abs(yaw_deg) < 1e-6:
            return FileResponse(workspace.file_in("objects", object_id, "thumb.png"), media_type="image/png")
        import cv2

        source = workspace.file_in("objects", object_id, record["source"])
        view = await run_in_threadpool(lambda: crop_to_alpha(mesh_front_view(load_mesh(source), yaw_deg)))
        _, encoded = cv2.imencode(".png", cv2.cvtColor(view, cv2.COLOR_RGBA2BGRA))
        return Response(encoded.tobytes(), media_type="image/png")

    # ------------------------------------------------------------------ library (open without uploading)
    def library_entries() -> dict[str, list[dict[str, str]]]:
        root = workspace.library.resolve()
        cases, videos, objects = [], [], []
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root)
            if len(relative.parts) > 3 or any(part.startswith(".") for part in relative.parts):
                continue
            try:
                resolve_inside(root, relative.as_posix())
            except PathRefusedError:
                continue  # a symlink out of the library is never listed (nor opened)
            entry = {"path": relative.as_posix(), "name": relative.as_posix()}
            if path.is_dir() and _case_files(path) is not None:
                cases.append(entry)
            elif path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
                videos.append(entry)
            elif path.is_file() and path.suffix.lower() in OBJECT_SUFFIXES:
                objects.append(entry)
        return {"cases": cases, "videos": videos, "objects": objects}

    @app.get("/api/library")
    async def library() -> dict[str, Any]:
        return {"folder": str(workspace.library), **library_entries()}

    class OpenBody(BaseModel):
        path: str = Field(max_length=1000)

    async def open_file(kind: Literal["videos", "objects"], path: Path, stem: str) -> dict[str, Any]:
        async def fill(folder: Path) -> Path:
            target = folder / f"{stem}{path.suffix.lower()}"
            await run_in_threadpool(copy_into, path, target)
            return target

        if path.stat().st_size > limits.max_upload_bytes:
            raise TooLargeError(f"{path.name}: over the size limit of {limits.max_upload_bytes / 2**20:.0f} MiB")
        return await ingest(kind, path.name, fill)

    @app.post("/api/library/open")
    async def library_open(body: OpenBody) -> dict[str, Any]:
        target = resolve_inside(workspace.library, body.path)
        if not target.exists():
            raise NotFoundError(f"no {body.path!r} in the library folder {workspace.library}")
        opened: dict[str, Any] = {"video": None, "object": None, "placement": None}
        if target.is_dir():
            files = _case_files(target)
            if files is None:
                raise InputError(f"{body.path}: a case folder needs a video and an object (or a placement.json)")
            video_path, object_path, placement_path = files
            opened["video"] = await open_file("videos", video_path, "source")
            if object_path is not None:
                opened["object"] = await open_file("objects", object_path, "object")
            if placement_path is not None:
                placement = Placement.from_dict(read_json(placement_path))
                video = opened["video"]
                placement.validate(video["width"], video["height"], video["n_frames"])
                opened["placement"] = placement.to_dict()
        elif target.suffix.lower() in VIDEO_SUFFIXES:
            opened["video"] = await open_file("videos", target, "source")
        elif target.suffix.lower() in OBJECT_SUFFIXES:
            opened["object"] = await open_file("objects", target, "object")
        else:
            raise InputError(f"{body.path}: neither a video ({', '.join(VIDEO_SUFFIXES)}) nor an object")
        return opened

    # ------------------------------------------------------------------ preview and runs
    class InsertBody(BaseModel):
        video_id: str
        object_id: str
        placement: dict[str, Any]
        synth: Literal["composite", "vace"] = "composite"
        depth: str = Field(default="classical", pattern=r"^[a-z0-9_\-]{1,40}$")
        flow: str = Field(default="dis", pattern=r"^[a-z0-9_\-]{1,40}$")
        light: tuple[float, float] | None = None
        frames: list[int] | None = Field(default=None, max_length=12)

    def to_request(body: InsertBody, out: Path) -> tuple[InsertRequest, dict[str, Any]]:
        video = video_record(body.video_id)
        obj = object_record(body.object_id)
        placement = Placement.from_dict(body.placement).validate(video["width"], video["height"], video["n_frames"])
        if body.light is not None and not (math.isfinite(body.light[0]) and 0.0 <= body.light[1] <= 90.0):
            raise InputError(f"light {list(body.light)}: give an azimuth in degrees and 0 <= elevation <= 90")
        request = InsertRequest(
            video=workspace.file_in("videos", body.video_id, video["source"]),
            object_path=workspace.file_in("objects", body.object_id, obj["source"]),
            placement=placement,
            out=out,
            synth=body.synth,
            depth=body.depth,
            flow=body.flow,
            light=body.light,
        )
        record = {
            "video_id": body.video_id,
            "object_id": body.object_id,
            "video_name": video["name"],
            "object_name": obj["name"],
            "placement": placement.to_dict(),
            "synth": body.synth,
            "depth": body.depth,
            "flow": body.flow,
            "light": list(body.light) if body.light else None,
        }
        return request, record

    @app.post("/api/preview")
    async def preview(body: InsertBody) -> Any:
        missing = backend.available()
        if missing is not None:
            raise MissingDependencyError(missing)
        cache = scene_cache_dir(workspace, body.video_id, body.depth, body.flow)
        request, _ = to_request(body.model_copy(update={"synth": "composite"}), cache)
        n_frames = int(video_record(body.video_id)["n_frames"])
        if body.frames:
            bad = [i for i in body.frames if not 0 <= i < n_frames]
            if bad:
                raise InputError(f"preview frames {bad} are out of range 0..{n_frames - 1}")
            indices = list(dict.fromkeys(body.frames))
        else:
            indices = choose_preview_frames(request.placement.frame, n_frames)
        start = time.perf_counter()
        try:
            frames = await run_in_threadpool(previews.render, request, indices)
        except (UserError, PlacementError):
            raise
        except Exception as err:  # one line on the page; the traceback goes to the server's log
            log.exception("preview failed")
            return JSONResponse({"error": f"the preview failed: {describe_error(err)}"}, status_code=500)
        return {"frames": frames, "seconds": round(time.perf_counter() - start, 3)}

    @app.get("/api/preview/status")
    async def preview_status() -> dict[str, Any]:
        return previews.status

    @app.post("/api/runs")
    async def start_run(body: InsertBody) -> dict[str, Any]:
        missing = backend.available()
        if missing is not None:
            raise MissingDependencyError(missing)
        request, record = to_request(body, workspace.root / "runs")
        state = runs.submit(request, body.video_id, record)
        return runs.get(state.run_id)

    @app.get("/api/runs")
    async def list_runs() -> list[dict[str, Any]]:
        return runs.list_runs()

    @app.get("/api/runs/{run_id}")
    async def get_run(run_id: str) -> dict[str, Any]:
        return runs.get(run_id)

    @app.post("/api/runs/{run_id}/cancel")
    async def cancel_run(run_id: str) -> dict[str, Any]:
        return runs.cancel(run_id)

    @app.get("/api/runs/{run_id}/files/{relative:path}")
    async def run_file(run_id: str, relative: str) -> FileResponse:
        return FileResponse(workspace.file_in("runs", run_id, relative))

    @app.get("/api/runs/{run_id}/zip/{part}")
    async def run_zip(run_id: str, part: str) -> FileResponse:
        path = await run_in_threadpool(runs.zip_part, run_id, part)
        return FileResponse(path, media_type="application/zip", filename=f"insertanywhere-{run_id}-{part}.zip")

    return app


def _case_files(folder: Path) -> tuple[Path, Path | None, Path | None] | None:
    """(video, object or None, placement.json or None) of a case folder, or None when it is not one.

    A synthetic case (``insertanywhere synth``) holds background.mp4, object.png and placement.json;
    any folder with exactly one video and an object or a placement counts.
    """
    if not folder.is_dir():
        return None
    files = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
    videos = sorted(p for p in files if p.suffix.lower() in VIDEO_SUFFIXES)
    background = folder / "background.mp4"
    video = background if background in videos else (videos[0] if len(videos) == 1 else None)
    objects = sorted(p for p in files if p.suffix.lower() in OBJECT_SUFFIXES)
    preferred = [p for p in objects if p.stem == "object"]
    obj = (preferred or objects or [None])[0]
    placement = folder / "placement.json"
    placement_path = placement if placement.is_file() else None
    if video is None or (obj is None and placement_path is None):
        return None
    return video, obj, placement_path


def serve(
    host: str = "127.0.0.1",
    port: int = 8765,
    workdir: str | Path = "insertanywhere-ui",
    limits: Limits | None = None,
    log_level: str = "warning",
    backend: InsertBackend | None = None,
) -> None:
    """Serve the page until interrupted (``insertanywhere ui``); ``backend`` as in ``create_app``."""
    require("uvicorn", "ui")
    import uvicorn

    app = create_app(workdir, limits, backend=backend, allowed_hosts=default_allowed_hosts(host))
    uvicorn.run(app, host=host, port=port, log_level=log_level)


__all__ = ["create_app", "default_allowed_hosts", "serve"]
