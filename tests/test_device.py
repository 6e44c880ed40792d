"""The --device name: checked without torch, resolved against what torch sees, refused in one line."""

from __future__ import annotations

import pytest

from insertanywhere.errors import InputError
from insertanywhere.models.device import check_device_name, resolve_torch_device

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch


@pytest.mark.parametrize("name", ["auto", "cpu", "cuda", "cuda:0", "cuda:12", "mps"])
def test_known_names_pass(name: str) -> None:
    assert check_device_name(name) == name


@pytest.mark.parametrize("name", ["", "gpu", "CUDA", "cuda:", "cuda:x", "cpu ", "tpu:0"])
def test_unknown_names_are_one_line(name: str) -> None:
    with pytest.raises(InputError) as info:
        check_device_name(name)
    assert "\n" not in str(info.value) and "auto, cpu, cuda, cuda:N or mps" in str(info.value)


def _machine(monkeypatch: pytest.MonkeyPatch, gpus: int, mps: bool = False) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)


def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    _machine(monkeypatch, gpus=0)
    assert resolve_torch_device("auto") == "cpu"
    _machine(monkeypatch, gpus=0, mps=True)
    assert resolve_torch_device("auto") == "mps"
    _machine(monkeypatch, gpus=2, mps=True)
    assert resolve_torch_device("auto") == "cuda"


def test_a_device_this_machine_lacks_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    _machine(monkeypatch, gpus=0)
    assert resolve_torch_device("cpu") == "cpu"
    with pytest.raises(InputError, match="no CUDA GPU"):
        resolve_torch_device("cuda")
    with pytest.raises(InputError, match="MPS is not available"):
        resolve_torch_device("mps")
    _machine(monkeypatch, gpus=2)
    assert resolve_torch_device("cuda:1") == "cuda:1"
    with pytest.raises(InputError, match="numbered 0-1"):
        resolve_torch_device("cuda:2")
