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
