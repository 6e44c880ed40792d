"""Latency of the placement page's calls on a synthetic case, through the real app and pipeline; prints JSON.

    python benchmarks/bench_ui.py [--family demo] [--seed 0] [--full-size]

Measures: upload (video + display frames), the first preview (builds the Scene4D),
a warm preview (placement moved, scene reused), and a full insertion run that
reuses the cached scene.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from insertanywhere.data.synthetic.loader import render_case_cached
from insertanywhere.ui.server import CSRF_HEADER, create_app

HEADERS = {CSRF_HEADER: "1"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--family", default="demo")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--full-size", action="store_true", help="the case's full size instead of --small")
    args = parser.parse_args()
    case = render_case_cached(args.family, args.seed, small=not args.full_size)
    placement = json.loads((case / "placement.json").read_text())
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as workdir:
        client = TestClient(create_app(Path(workdir) / "work", allowed_hosts=["testserver"]))

        def timed(name: str, call: Callable[[], Any]) -> Any:
            start = time.perf_counter()
            response = call()
            timings[name] = round(time.perf_counter() - start, 3)
            if response.status_code != 200:
                raise SystemExit(f"{name}: {response.status_code} {response.text}")
            return response.json()

        video = timed(
            "upload_video_s",
            lambda: client.post(
                "/api/videos", params={"name": "background.mp4"}, content=(case / "background.mp4").read_bytes(),
                headers=HEADERS,
            ),
        )  # fmt: skip
        obj = timed(
            "upload_object_s",
            lambda: client.post(
                "/api/objects", params={"name": "object.png"}, content=(case / "object.png").read_bytes(),
                headers=HEADERS,
            ),
        )  # fmt: skip
        body = {"video_id": video["video_id"], "object_id": obj["object_id"], "placement": placement}
        timed("first_preview_s", lambda: client.post("/api/preview", json=body, headers=HEADERS))
        moved = dict(placement, yaw_deg=placement.get("yaw_deg", 0.0) + 30.0)
        timed("warm_preview_s", lambda: client.post("/api/preview", json=dict(body, placement=moved), headers=HEADERS))
        start = time.perf_counter()
        run = client.post("/api/runs", json=body, headers=HEADERS).json()
        while run["status"] in ("queued", "running"):
            time.sleep(0.05)
            run = client.get(f"/api/runs/{run['run_id']}").json()
        timings["run_with_cached_scene_s"] = round(time.perf_counter() - start, 3)
    print(
        json.dumps(
            {
                "case": f"{args.family}-seed{args.seed}",
                "size": [video["width"], video["height"], video["n_frames"]],
                "run_status": run["status"],
                **timings,
            }
        )
    )


if __name__ == "__main__":
    main()
