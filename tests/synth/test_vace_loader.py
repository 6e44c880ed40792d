"""The Wan2.1-VACE loader (local folder, missing weights), device choice, flow shift and the memory estimate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from insertanywhere.errors import InputError, MissingDependencyError, UserError  # noqa: E402
from insertanywhere.models.wan_vace import (  # noqa: E402
    KNOWN_TRANSFORMERS,
    estimate_vace_memory,
    load_wan_vace_pipeline,
    resolve_device,
    set_flow_shift,
    tiny_wan_vace_pipeline,
    transformer_shape,
)
from insertanywhere.synth.vace import VaceConfig, synthesize_vace  # noqa: E402

pytestmark = pytest.mark.torch


def tiny_clip() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(2)
    source = rng.integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
    masks = np.zeros((5, 16, 16), bool)
    masks[:, 4:12, 4:12] = True
    return {
        "source_frames": source,
        "control_frames": source,
        "object_masks": masks,
        "shadow_mattes": np.zeros((5, 16, 16), np.float32),
        "reference_rgba": np.full((8, 8, 4), 255, np.uint8),
    }


def test_saved_tiny_pipeline_loads_back_from_its_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    original = tiny_wan_vace_pipeline(seed=0)
    original.save_pretrained(tmp_path / "tiny-vace")
    loaded = load_wan_vace_pipeline(str(tmp_path / "tiny-vace"), dtype="fp32", device="cpu", offload="model")
    assert type(loaded).__name__ == "WanVACEPipeline"
    assert loaded.vae.dtype == torch.float32 and loaded.vae.use_tiling
    config = VaceConfig(steps=1, window=5, overlap=2, shadow_band_px=1, feather_px=1.0, max_sequence_length=8)
    clip = tiny_clip()
    expected = synthesize_vace(**clip, config=config, pipeline=original)
    assert np.array_equal(synthesize_vace(**clip, config=config, pipeline=loaded), expected)
    # The local folder's own transformer config drives the memory estimate.
    assert transformer_shape(str(tmp_path / "tiny-vace")).dim == 24


def test_folder_without_a_pipeline_and_absent_weights_are_one_line_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(InputError, match=r"model_index\.json"):
        load_wan_vace_pipeline(str(tmp_path), dtype="fp32", device="cpu")
    with pytest.raises(MissingDependencyError, match=r"cannot load Wan2\.1-VACE"):
        load_wan_vace_pipeline("no-such-org/no-such-vace-model", device="cpu", local_files_only=True)
    with pytest.raises(UserError, match="offload"):
        load_wan_vace_pipeline(str(tmp_path), device="cpu", offload="disk")


def test_resolve_device_refuses_cpu_unless_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(UserError, match="--allow-cpu"):
        resolve_device(None, allow_cpu=False)
    assert resolve_device(None, allow_cpu=True) == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device(None, allow_cpu=False) == "cuda"
    assert resolve_device("cuda:0", allow_cpu=False) == "cuda:0"
    with pytest.raises(UserError, match=r"--device cpu was asked for.*--allow-cpu"):
        resolve_device("cpu", allow_cpu=False)
    with pytest.raises(UserError, match="numbered 0-0"):
        resolve_device("cuda:1", allow_cpu=False)


def test_flow_shift_is_3_at_480p_and_5_at_720p() -> None:
    pipeline = tiny_wan_vace_pipeline()
    assert set_flow_shift(pipeline, 480, 832) == 3.0
    assert pipeline.scheduler.config.flow_shift == 3.0
    assert set_flow_shift(pipeline, 720, 1280) == 5.0
    assert pipeline.scheduler.config.flow_shift == 5.0
    assert set_flow_shift(pipeline, 480, 832, flow_shift=2.0) == 2.0


@pytest.mark.parametrize("size", ["1.3B", "14B"])
def test_parameter_formula_matches_the_real_architecture(size: str) -> None:
    from diffusers import WanVACETransformer3DModel

    shape = KNOWN_TRANSFORMERS[size]
    every = 2 if size == "1.3B" else 5
    with torch.device("meta"):  # the real architecture without allocating its weights
        model = WanVACETransformer3DModel(
            patch_size=(1, 2, 2),
            num_attention_heads=shape.dim // 128,
            attention_head_dim=128,
            in_channels=16,
            out_channels=16,
            text_dim=4096,
            freq_dim=256,
            ffn_dim=shape.ffn_dim,
            num_layers=shape.num_layers,
            cross_attn_norm=True,
            qk_norm="rms_norm_across_heads",
            vace_layers=list(range(0, shape.num_layers, every)),
            vace_in_channels=96,
        )
    actual = sum(parameter.numel() for parameter in model.parameters())
    assert abs(shape.parameter_count() - actual) / actual < 0.03


def test_memory_estimate_orders_models_resolutions_and_offload_modes() -> None:
    small = "Wan-AI/Wan2.1-VACE-1.3B-diffusers"
    large = "Wan-AI/Wan2.1-VACE-14B-diffusers"
    at_480: dict[str, Any] = {"height": 480, "width": 832, "frames": 81}
    estimates = {
        offload: estimate_vace_memory(large, **at_480, offload=offload) for offload in ("none", "model", "group")
    }
    assert estimates["none"].total_gib > estimates["model"].total_gib > estimates["group"].total_gib
    assert estimate_vace_memory(large, **at_480).total_gib > estimate_vace_memory(small, **at_480).total_gib
    assert estimate_vace_memory(large, 720, 1280, 81).total_gib > estimate_vace_memory(large, 480, 832, 81).total_gib
    line = estimates["model"].line(large, 480, 832, 81, "model")
    assert "GiB" in line and "832x480" in line
    # 14B in bf16 cannot fit a 24 GiB card without group offloading; 1.3B with model offload fits in 16 GiB.
    assert estimates["model"].total_gib > 24
    assert estimate_vace_memory(small, **at_480, offload="model").total_gib < 16
