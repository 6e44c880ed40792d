"""LoRA in the VACE backend: loading changes the video, the scale reaches it, unloading restores the base model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("peft")

from insertanywhere.errors import InputError, UserError  # noqa: E402
from insertanywhere.models.wan_vace import load_lora, tiny_wan_vace_components, tiny_wan_vace_pipeline  # noqa: E402
from insertanywhere.synth.vace import VaceConfig, synthesize_vace  # noqa: E402

pytestmark = pytest.mark.torch

ALL_ATTENTION = r".*blocks\.\d+\.attn[12]\.(to_q|to_k|to_v|to_out\.0)"  # main and VACE blocks
MAIN_SELF_ATTENTION = r"blocks\.\d+\.attn1\.(to_q|to_k|to_v|to_out\.0)"  # what the Wan/ComfyUI key names cover


def save_random_lora(folder: Path, target_modules: str, seed: int = 1) -> dict[str, Any]:
    """Train-free LoRA: peft adapters with random (not zero) up-projections on the tiny transformer, saved in
    diffusers format as ``folder/pytorch_lora_weights.safetensors``. Returns the saved state dict."""
    from diffusers import WanVACEPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    transformer = tiny_wan_vace_components(seed=0)["transformer"]
    torch.manual_seed(seed)
    transformer.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=target_modules, init_lora_weights=False))
    state = get_peft_model_state_dict(transformer)
    assert state, "the LoRA must target some layers"
    WanVACEPipeline.save_lora_weights(folder, transformer_lora_layers=state)
    return state


def tiny_clip() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    source = rng.integers(0, 256, (5, 16, 32, 3), dtype=np.uint8)
    masks = np.zeros((5, 16, 32), bool)
    masks[:, 4:12, 10:22] = True
    control = source.copy()
    control[masks] = [200, 40, 40]
    reference = np.full((12, 8, 4), 255, np.uint8)
    reference[..., 1:3] = 40
    return {
        "source_frames": source,
        "control_frames": control,
        "object_masks": masks,
        "shadow_mattes": np.zeros((5, 16, 32), np.float32),
        "reference_rgba": reference,
    }


def config(**overrides: Any) -> VaceConfig:
    settings = {"steps": 1, "window": 5, "overlap": 2, "shadow_band_px": 2, "feather_px": 1.0, "max_sequence_length": 8}
    settings.update(overrides)
    return VaceConfig(**settings)


@pytest.fixture(scope="module")
def pipeline() -> Any:
    return tiny_wan_vace_pipeline(seed=0)


@pytest.fixture(scope="module")
def clip() -> dict[str, np.ndarray]:
    return tiny_clip()


@pytest.fixture(scope="module")
def base(pipeline: Any, clip: dict) -> np.ndarray:
    return synthesize_vace(**clip, config=config(), pipeline=pipeline)


def test_lora_changes_the_output_and_unload_restores_it(
    tmp_path: Path, pipeline: Any, clip: dict, base: np.ndarray
) -> None:
    save_random_lora(tmp_path, ALL_ATTENTION)
    with_lora = synthesize_vace(**clip, config=config(lora=tmp_path), pipeline=pipeline)
    assert not np.array_equal(with_lora, base)
    assert not pipeline.get_list_adapters(), "an injected pipeline gets its LoRA unloaded"
    after = synthesize_vace(**clip, config=config(), pipeline=pipeline)
    assert np.array_equal(after, base)


def test_lora_scale_zero_is_the_base_model_and_a_file_path_works(
    tmp_path: Path, pipeline: Any, clip: dict, base: np.ndarray
) -> None:
    save_random_lora(tmp_path, ALL_ATTENTION)
    lora_file = tmp_path / "pytorch_lora_weights.safetensors"
    off = synthesize_vace(**clip, config=config(lora=lora_file, lora_scale=0.0), pipeline=pipeline)
    assert np.array_equal(off, base)


def test_wan_original_key_names_load_like_diffusers_ones(
    tmp_path: Path, pipeline: Any, clip: dict, base: np.ndarray
) -> None:
    from safetensors.torch import save_file

    state = save_random_lora(tmp_path / "diffusers", MAIN_SELF_ATTENTION)
    # The original Wan / ComfyUI names: diffusion_model.blocks.N.self_attn.{q,k,v,o}.lora_{A,B}.weight
    renames = {"attn1.to_q": "self_attn.q", "attn1.to_k": "self_attn.k", "attn1.to_v": "self_attn.v"}
    renames["attn1.to_out.0"] = "self_attn.o"
    original = {}
    for key, value in state.items():
        for ours, theirs in renames.items():
            key = key.replace(ours, theirs)
        original["diffusion_model." + key.removeprefix("transformer.")] = value.contiguous()
    (tmp_path / "comfy").mkdir()
    save_file(original, tmp_path / "comfy" / "wan_lora.safetensors")
    ours = synthesize_vace(**clip, config=config(lora=tmp_path / "diffusers"), pipeline=pipeline)
    theirs = synthesize_vace(**clip, config=config(lora=tmp_path / "comfy" / "wan_lora.safetensors"), pipeline=pipeline)
    assert not np.array_equal(ours, base)
    assert np.array_equal(ours, theirs)


def test_missing_or_foreign_lora_is_a_user_error(tmp_path: Path, pipeline: Any, clip: dict) -> None:
    with pytest.raises(UserError, match="does not exist"):
        synthesize_vace(**clip, config=config(lora=tmp_path / "nope.safetensors"), pipeline=pipeline)
    from safetensors.torch import save_file

    save_file({"not_a_lora.weight": torch.zeros(2, 2)}, tmp_path / "bad.safetensors")
    with pytest.raises(InputError, match="cannot load LoRA"):
        load_lora(pipeline, tmp_path / "bad.safetensors")
    assert not pipeline.get_list_adapters()
