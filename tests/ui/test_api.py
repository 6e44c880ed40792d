"""The page's JSON API through FastAPI's TestClient: uploads, limits, refusals, previews, runs."""

from __future__ import annotations

import io
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient

from insertanywhere.ui.server import CSRF_HEADER, create_app
from insertanywhere.ui.workspace import Limits
from tests.ui.conftest import CLIP_FRAMES, CLIP_SIZE, StickerBackend

HEADERS = {CSRF_HEADER: "1"}


def make_client(workdir: Path, backend: Any = None, limits: Limits | None = None) -> TestClient:
    app = create_app(workdir, limits=limits, backend=backend or StickerBackend(), allowed_hosts=["testserver"])
    return TestClient(app)


def upload(client: TestClient, kind: str, path: Path, name: str | None = None) -> Any:
    return client.post(f"/api/{kind}", params={"name": name or path.name}, content=path.read_bytes(), headers=HEADERS)


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    return make_client(tmp_path / "work")


def test_page_and_config(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "InsertAnywhere" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/static/app.js").status_code == 200
    config = client.get("/api/config").json()
    assert config["pipeline"] is None and config["limits"]["max_frames"] == Limits().max_frames


def test_upload_video_and_object(client: TestClient, clip_path: Path, object_path: Path) -> None:
    video = upload(client, "videos", clip_path, name="../../my clip.mp4").json()
    assert (video["width"], video["height"], video["n_frames"]) == (*CLIP_SIZE, CLIP_FRAMES)
    assert video["name"] == "my clip.mp4" and video["source"] == "source.mp4"
    frame = client.get(f"/api/videos/{video['video_id']}/frames/3")
    assert frame.status_code == 200 and frame.content[:2] == b"\xff\xd8"
    assert client.get(f"/api/videos/{video['video_id']}/frames/{CLIP_FRAMES}").status_code == 404
    obj = upload(client, "objects", object_path).json()
    assert obj["kind"] == "image" and obj["thumb_width"] == 24
    thumb = client.get(f"/api/objects/{obj['object_id']}/thumb")
    assert thumb.status_code == 200 and thumb.content[:4] == b"\x89PNG"
    assert [v["video_id"] for v in client.get("/api/videos").json()] == [video["video_id"]]


def test_mesh_object_gets_a_turned_thumbnail(client: TestClient, tmp_path: Path) -> None:
    import cv2
    import numpy as np
    import trimesh

    path = tmp_path / "box.glb"
    mesh = trimesh.creation.box(extents=(1.0, 2.0, 0.5))
    mesh.visual.vertex_colors = [200, 120, 40, 255]
    mesh.export(path)
    obj = upload(client, "objects", path).json()
    assert obj["kind"] == "mesh" and obj["thumb_height"] > obj["thumb_width"]
    front = client.get(f"/api/objects/{obj['object_id']}/thumb").content
    thumb = cv2.imdecode(np.frombuffer(front, np.uint8), cv2.IMREAD_UNCHANGED)
    centre = thumb[thumb.shape[0] // 2, thumb.shape[1] // 2]  # BGRA: the box's own colour, shaded
    assert centre[3] == 255 and centre[2] > centre[1] > centre[0]
    turned = client.get(f"/api/objects/{obj['object_id']}/thumb", params={"yaw_deg": 90}).content
    assert front[:4] == turned[:4] == b"\x89PNG" and front != turned


def test_bad_files_get_one_line_messages(client: TestClient, tmp_path: Path) -> None:
    not_video = tmp_path / "notes.mp4"
    not_video.write_bytes(b"this is not a video at all" * 10)
    response = upload(client, "videos", not_video)
    assert response.status_code == 400
    message = response.json()["error"]
    assert message.startswith("notes.mp4:") and "\n" not in message and str(tmp_path) not in message
    assert client.get("/api/videos").json() == []  # the failed upload left nothing behind

    opaque = tmp_path / "photo.png"
    import cv2
    import numpy as np

    cv2.imwrite(str(opaque), np.full((8, 8, 3), 128, np.uint8))
    response = upload(client, "objects", opaque)
    assert response.status_code == 400 and "alpha" in response.json()["error"]

    wrong_kind = upload(client, "videos", opaque)
    assert wrong_kind.status_code == 400 and "must be one of" in wrong_kind.json()["error"]
    empty = client.post("/api/videos", params={"name": "x.mp4"}, content=b"", headers=HEADERS)
    assert empty.status_code == 400 and "empty" in empty.json()["error"]


def test_upload_limits(tmp_path: Path, clip_path: Path) -> None:
    small = make_client(tmp_path / "w1", limits=Limits(max_upload_bytes=1000))
    response = upload(small, "videos", clip_path)
    assert response.status_code == 413 and "upload limit" in response.json()["error"]

    def chunks() -> Any:  # no Content-Length: the streamed size is counted instead
        data = clip_path.read_bytes()
        for start in range(0, len(data), 256):
            yield data[start : start + 256]

    streamed = small.post("/api/videos", params={"name": "c.mp4"}, content=chunks(), headers=HEADERS)
    assert streamed.status_code == 413
    short = make_client(tmp_path / "w2", limits=Limits(max_frames=CLIP_FRAMES - 1))
    response = upload(short, "videos", clip_path)
    assert response.status_code == 413 and "--max-frames" in response.json()["error"]
    assert list((tmp_path / "w2" / "videos").iterdir()) == []


def test_requests_without_the_page_header_or_from_other_hosts_are_refused(tmp_path: Path, clip_path: Path) -> None:
    client = make_client(tmp_path / "work")
    response = client.post("/api/videos", params={"name": "a.mp4"}, content=clip_path.read_bytes())
    assert response.status_code == 403 and CSRF_HEADER in response.json()["error"]
    loopback_only = TestClient(create_app(tmp_path / "work", backend=StickerBackend()))
    assert loopback_only.get("/api/config").status_code == 400  # Host "testserver" is not a loopback name
    assert loopback_only.get("/api/config", headers={"host": "127.0.0.1:8765"}).status_code == 200
    assert loopback_only.get("/api/config", headers={"host": "evil.example:8765"}).status_code == 400
    assert loopback_only.get("/api/config", headers={"host": "[::1]:8765"}).status_code == 200
    assert loopback_only.get("/api/config", headers={"host": "localhost.evil.example"}).status_code == 400


def test_traversal_is_refused(client: TestClient, tmp_path: Path, clip_path: Path, object_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("secret")
    for path in ["../../secret.txt", "/etc/passwd", "..", "a/../../..", "..%2F..%2Fsecret.txt"]:
        response = client.post("/api/library/open", json={"path": path}, headers=HEADERS)
        assert response.status_code in (403, 404), path
        assert "secret" not in response.text or "secret.txt" in path
    video = upload(client, "videos", clip_path).json()
    run = start_run(client, video["video_id"], upload(client, "objects", object_path).json()["object_id"])
    wait_for(client, run["run_id"])
    base = f"/api/runs/{run['run_id']}"
    assert client.get(f"{base}/files/inserted.mp4").status_code == 200
    for path in ["../../../secret.txt", "..%2F..%2F..%2Fsecret.txt", "masks/../../../../secret.txt", "%2Fetc%2Fpasswd"]:
        response = client.get(f"{base}/files/{path}")
        assert response.status_code in (403, 404), path
        assert response.content != b"secret"
    assert client.get("/api/runs/..%2F..%2Fvideos/files/x").status_code == 404
    assert client.get("/api/videos/..%2F..%2F/frames/0").status_code == 404
    assert client.get(f"{base}/zip/..%2Fsecret").status_code == 404


def test_library_case_opens_with_its_placement(
    client: TestClient, tmp_path: Path, clip_path: Path, object_path: Path
) -> None:
    import json
    import shutil

    case = tmp_path / "work" / "library" / "demo"
    case.mkdir(parents=True)
    shutil.copy(clip_path, case / "background.mp4")
    shutil.copy(object_path, case / "object.png")
    (case / "placement.json").write_text(json.dumps({"frame": 2, "box": [30, 20, 54, 56], "yaw_deg": 15}))
    os_link_out = case / "escape.mp4"
    os_link_out.symlink_to(clip_path)
    library = client.get("/api/library").json()
    assert [c["path"] for c in library["cases"]] == ["demo"]
    assert "demo/escape.mp4" not in [v["path"] for v in library["videos"]]
    opened = client.post("/api/library/open", json={"path": "demo"}, headers=HEADERS).json()
    assert opened["placement"] == {"frame": 2, "box": [30.0, 20.0, 54.0, 56.0], "yaw_deg": 15.0}
    assert opened["video"]["n_frames"] == CLIP_FRAMES and opened["object"]["kind"] == "image"
    refused = client.post("/api/library/open", json={"path": "demo/escape.mp4"}, headers=HEADERS)
    assert refused.status_code == 403


def insert_body(video_id: str, object_id: str, **extra: Any) -> dict[str, Any]:
    return {"video_id": video_id, "object_id": object_id, "placement": {"frame": 1, "box": [30, 20, 54, 56]}, **extra}


def start_run(client: TestClient, video_id: str, object_id: str) -> dict[str, Any]:
    response = client.post("/api/runs", json=insert_body(video_id, object_id), headers=HEADERS)
    assert response.status_code == 200, response.text
    return response.json()


def wait_for(client: TestClient, run_id: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.get(f"/api/runs/{run_id}").json()
        if run["status"] not in ("queued", "running"):
            return run
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} did not finish")


def test_preview_composites_the_placement_frame_first(tmp_path: Path, clip_path: Path, object_path: Path) -> None:
    backend = StickerBackend()
    client = make_client(tmp_path / "work", backend=backend)
    video = upload(client, "videos", clip_path).json()
    obj = upload(client, "objects", object_path).json()
    response = client.post("/api/preview", json=insert_body(video["video_id"], obj["object_id"]), headers=HEADERS)
    assert response.status_code == 200, response.text
    frames = response.json()["frames"]
    assert [f["index"] for f in frames] == backend.previews[0] and frames[0]["index"] == 1 and len(frames) == 4
    assert all(f["image"].startswith("data:image/jpeg;base64,") for f in frames)
    assert client.get("/api/preview/status").json() == {"busy": False, "stage": "", "done": 0, "total": 0}
    bad_box = insert_body(video["video_id"], obj["object_id"])
    bad_box["placement"]["box"] = [30, 20, 500, 56]
    response = client.post("/api/preview", json=bad_box, headers=HEADERS)
    assert response.status_code == 400 and "not inside the 96x64 frame" in response.json()["error"]
    unknown = client.post("/api/preview", json=insert_body("0" * 16, obj["object_id"]), headers=HEADERS)
    assert unknown.status_code == 404


def test_run_progress_results_and_downloads(tmp_path: Path, clip_path: Path, object_path: Path) -> None:
    gate = threading.Event()
    client = make_client(tmp_path / "work", backend=StickerBackend(gate=gate))
    video = upload(client, "videos", clip_path).json()
    obj = upload(client, "objects", object_path).json()
    run = start_run(client, video["video_id"], obj["object_id"])
    assert run["status"] in ("queued", "running") and run["files"] == {}
    gate.set()
    run = wait_for(client, run["run_id"])
    assert run["status"] == "done", run
    assert run["stages"]["composite"] == [CLIP_FRAMES, CLIP_FRAMES]
    assert run["files"]["inserted.mp4"] and run["files"]["masks"] == CLIP_FRAMES
    base = f"/api/runs/{run['run_id']}"
    video_bytes = client.get(f"{base}/files/inserted.mp4")
    assert video_bytes.status_code == 200 and b"ftyp" in video_bytes.content[:16]
    masks = zipfile.ZipFile(io.BytesIO(client.get(f"{base}/zip/masks").content))
    assert masks.namelist() == [f"masks/{i:05d}.png" for i in range(CLIP_FRAMES)]
    everything = zipfile.ZipFile(io.BytesIO(client.get(f"{base}/zip/all").content)).namelist()
    assert "inserted.mp4" in everything and "report.json" in everything
    assert not any(name.startswith("scene/") for name in everything)
    # The run's scene is kept for later previews and runs of the same video.
    assert (tmp_path / "work" / "videos" / video["video_id"] / "scenes" / "classical-dis" / "scene").is_dir()
    assert [r["run_id"] for r in client.get("/api/runs").json()] == [run["run_id"]]


def test_run_can_be_cancelled_and_survives_a_restart(tmp_path: Path, clip_path: Path, object_path: Path) -> None:
    gate = threading.Event()
    client = make_client(tmp_path / "work", backend=StickerBackend(gate=gate))
    video = upload(client, "videos", clip_path).json()
    obj = upload(client, "objects", object_path).json()
    run = start_run(client, video["video_id"], obj["object_id"])
    cancelled = client.post(f"/api/runs/{run['run_id']}/cancel", headers=HEADERS)
    assert cancelled.status_code == 200
    gate.set()
    run = wait_for(client, run["run_id"])
    assert run["status"] == "cancelled" and run["files"] == {}
    again = client.post(f"/api/runs/{run['run_id']}/cancel", headers=HEADERS)
    assert again.status_code == 400 and "not running" in again.json()["error"]
    assert client.get(f"/api/runs/{run['run_id']}/zip/all").status_code == 400
    restarted = make_client(tmp_path / "work")
    assert restarted.get(f"/api/runs/{run['run_id']}").json()["status"] == "cancelled"


def test_missing_pipeline_is_one_clear_line(tmp_path: Path, clip_path: Path, object_path: Path) -> None:
    class NoPipeline(StickerBackend):
        def available(self) -> str | None:
            return "the insertion pipeline cannot be imported (No module named 'x'); install it"

    client = make_client(tmp_path / "work", backend=NoPipeline())
    assert client.get("/api/config").json()["pipeline"].startswith("the insertion pipeline")
    video = upload(client, "videos", clip_path).json()
    obj = upload(client, "objects", object_path).json()
    response = client.post("/api/runs", json=insert_body(video["video_id"], obj["object_id"]), headers=HEADERS)
    assert response.status_code == 503 and "cannot be imported" in response.json()["error"]


def test_bad_numbers_are_refused(client: TestClient, clip_path: Path, object_path: Path) -> None:
    video = upload(client, "videos", clip_path).json()
    obj = upload(client, "objects", object_path).json()
    body = insert_body(video["video_id"], obj["object_id"], light=[45, 120])
    response = client.post("/api/preview", json=body, headers=HEADERS)
    assert response.status_code == 400 and "elevation" in response.json()["error"]
    body = insert_body(video["video_id"], obj["object_id"])
    body["placement"]["frame"] = CLIP_FRAMES
    response = client.post("/api/runs", json=body, headers=HEADERS)
    assert response.status_code == 400 and "out of range" in response.json()["error"]
    thumb = client.get(f"/api/objects/{obj['object_id']}/thumb", params={"yaw_deg": "nan"})
    assert thumb.status_code == 400
    missing_field = client.post("/api/runs", json={"video_id": video["video_id"]}, headers=HEADERS)
    assert missing_field.status_code == 422 and missing_field.json()["error"].startswith("bad request:")


def test_failed_runs_and_previews_report_one_line(tmp_path: Path, clip_path: Path, object_path: Path) -> None:
    from insertanywhere.errors import InputError

    class Broken(StickerBackend):
        def run(self, request: Any, progress: Any) -> dict[str, Any]:
            progress("reconstruct", 1, 3)
            raise RuntimeError("solver diverged\nat iteration 7")

        def preview(self, request: Any, frame_indices: list[int], progress: Any) -> Any:
            raise InputError("there is no scene surface under the box's bottom edge; put it on a floor")

    client = make_client(tmp_path / "work", backend=Broken())
    video = upload(client, "videos", clip_path).json()
    obj = upload(client, "objects", object_path).json()
    run = wait_for(client, start_run(client, video["video_id"], obj["object_id"])["run_id"])
    assert run["status"] == "failed" and run["stages"] == {"reconstruct": [1, 3]}
    assert run["error"] == "the run failed: RuntimeError: solver diverged at iteration 7"
    preview = client.post("/api/preview", json=insert_body(video["video_id"], obj["object_id"]), headers=HEADERS)
    assert preview.status_code == 400 and preview.json()["error"].startswith("there is no scene surface")
