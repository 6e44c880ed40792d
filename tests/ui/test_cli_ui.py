"""`insertanywhere ui` from the command line: it serves the page, and refuses a foreign work folder in one line."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from insertanywhere.cli import main; main()", *args]


def test_ui_command_serves_the_page(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        cli("ui", "--port", str(port), "--workdir", str(tmp_path / "work"), "--max-frames", "50"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/config", timeout=2) as response:
                    config = json.load(response)
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError(f"the page did not start: {process.communicate(timeout=5)}") from None
                time.sleep(0.2)
        assert config["limits"]["max_frames"] == 50
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            assert b"InsertAnywhere" in response.read()
        assert (tmp_path / "work" / ".insertanywhere-ui").is_file()
    finally:
        process.terminate()
        process.communicate(timeout=10)


def test_ui_command_refuses_a_foreign_work_folder(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    result = subprocess.run(cli("ui", "--workdir", str(tmp_path)), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "not made by `insertanywhere ui`" in result.stderr


def test_ui_reconstruction_options_are_checked_at_start(tmp_path: Path) -> None:
    """A learned backend without weights (or weights without one) is one line and exit 2, before serving."""
    for extra, words in ((["--depth", "depth-anything-v2"], "needs --model-path"), (["--model-path", "w"], "none")):
        run = subprocess.run(
            cli("ui", "--workdir", str(tmp_path / "work"), *extra), capture_output=True, text=True, timeout=120
        )
        assert run.returncode == 2 and words in run.stderr and len(run.stderr.strip().splitlines()) == 1


def test_the_servers_reconstruction_options_reach_every_job(tmp_path: Path) -> None:
    """`ui --depth depth-anything-v2 --model-path DIR --device D` applies to the page's jobs; a request that names
    its own backend keeps it, and the weights go only with a learned backend."""
    from dataclasses import replace

    from insertanywhere.conventions import Placement
    from insertanywhere.ui.backend import InsertRequest, PipelineBackend

    placement = Placement(0, (1, 1, 9, 9))
    request = InsertRequest(tmp_path / "clip.mp4", tmp_path / "obj.png", placement, tmp_path)
    served = PipelineBackend({"depth": "depth-anything-v2", "model_path": "weights", "device": "cpu"})
    config = served._config(request)
    assert (config.depth, config.flow, config.dynamic) == ("depth-anything-v2", "dis", "residual")
    assert config.model_path == "weights" and config.device == "cpu"
    own = served._config(replace(request, depth="files:depths"))
    assert own.depth == "files:depths" and own.model_path is None
    plain = PipelineBackend()._config(request)
    assert (plain.depth, plain.model_path, plain.device) == ("classical", None, "auto")
