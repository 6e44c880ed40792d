"""CLI error contract: a UserError is one line on stderr and exit code 2; usage errors exit 2;
--verbose adds the traceback; typer.Exit codes are kept."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

import insertanywhere.data.synthetic as synthetic
from insertanywhere import cli
from insertanywhere.errors import InputError

SRC = Path(__file__).resolve().parents[1] / "src"


def _run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.run(
        [sys.executable, "-m", "insertanywhere.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=env,
        check=False,
    )


def _main(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["insertanywhere", *args])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    return int(exit_info.value.code or 0)


def test_user_error_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = _run_cli("synth", str(tmp_path / "out"), "--scene", "no_such_family", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "no_such_family" in lines[0]


def test_verbose_shows_the_traceback_and_keeps_exit_2(tmp_path: Path) -> None:
    result = _run_cli("--verbose", "synth", str(tmp_path / "out"), "--scene", "no_such_family", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")


def test_unknown_option_is_a_usage_error(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    assert _main(monkeypatch, "synth", "--no-such-option") == 2
    err = capsys.readouterr().err
    assert "No such option" in err and "Traceback" not in err


def test_bad_option_value_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    assert _main(monkeypatch, "synth", str(tmp_path), "--frames", "many") == 2
    assert "--frames" in capsys.readouterr().err


def test_unknown_command_and_no_arguments_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    assert _main(monkeypatch, "no-such-command") == 2
    assert "No such command" in capsys.readouterr().err
    assert _main(monkeypatch) == 2  # prints the help, like Click's no_args_is_help


def test_help_exits_0(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(sys, "argv", ["insertanywhere", "--help"])
    try:
        cli.main()
        code = 0
    except SystemExit as exit_info:
        code = int(exit_info.code or 0)
    assert code == 0
    assert "Usage" in capsys.readouterr().out


def _patch_synth(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    def raise_error(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(synthetic, "render_scene_to_folder", raise_error)


def test_multi_line_message_is_printed_on_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    _patch_synth(monkeypatch, InputError("the video is broken\nre-encode it"))
    assert _main(monkeypatch, "synth", str(tmp_path)) == 2
    assert capsys.readouterr().err == "error: the video is broken re-encode it\n"


def test_typer_exit_code_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _patch_synth(monkeypatch, typer.Exit(3))
    assert _main(monkeypatch, "synth", str(tmp_path)) == 3


def test_interrupt_exits_130(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    _patch_synth(monkeypatch, KeyboardInterrupt())
    assert _main(monkeypatch, "synth", str(tmp_path)) == 130
    assert "interrupted" in capsys.readouterr().err


def test_a_bug_is_not_hidden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _patch_synth(monkeypatch, ZeroDivisionError("a bug"))
    monkeypatch.setattr(sys, "argv", ["insertanywhere", "synth", str(tmp_path)])
    with pytest.raises(ZeroDivisionError):
        cli.main()


def test_full_disk_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    import errno

    _patch_synth(monkeypatch, OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "depth.npy")))
    assert _main(monkeypatch, "synth", str(tmp_path)) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "disk is full" in err and "depth.npy" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "args",
    [
        ("eval", "OUT", "--device", "gpu0"),
        ("bench", "CASES", "-o", "REPORT", "--device", "gpu0"),
        ("reconstruct", "VIDEO", "-o", "SCENE", "--device", "gpu0"),
        ("train-lora", "DATASET", "-o", "RUN", "--tiny", "--device", "gpu0"),
        ("dataset", "build", "CASES", "-o", "DATASET", "--device", "gpu0"),
    ],
)
def test_a_bad_device_name_is_one_line(
    args: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """Every command with --device checks the name the same way, before it reads anything."""
    (tmp_path / "VIDEO").mkdir()
    (tmp_path / "CASES").mkdir()
    monkeypatch.chdir(tmp_path)
    assert _main(monkeypatch, *args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--device 'gpu0'" in err and "Traceback" not in err
