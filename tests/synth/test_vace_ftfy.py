"""Without ftfy, the Wan pipeline fails at its first prompt with a NameError inside diffusers (seen by
benchmarks/gpu_check.py on a GPU image without ftfy); the loaders and the preflight say so in one line instead."""

from __future__ import annotations

import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from insertanywhere.errors import MissingDependencyError
from insertanywhere.models.wan_vace import load_wan_vace_pipeline, tiny_wan_vace_components
from insertanywhere.synth.vace import VaceConfig, preflight_vace

pytestmark = pytest.mark.torch


def test_missing_ftfy_is_a_one_line_missing_dependency(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ftfy", None)  # import ftfy -> ImportError
    for call in (
        lambda: load_wan_vace_pipeline("no-such-org/no-such-vace-model", device="cpu", local_files_only=True),
        lambda: tiny_wan_vace_components(),
        lambda: preflight_vace(VaceConfig(allow_cpu=True, device="cpu")),
    ):
        with pytest.raises(MissingDependencyError, match="ftfy") as info:
            call()
        assert "\n" not in str(info.value) and "insertanywhere[diffusion]" in str(info.value)
