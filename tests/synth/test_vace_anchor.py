"""First-frame anchor of the VACE backend: an image-inpainting pipeline (tiny, random, saved and loaded back)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from insertanywhere.errors import InputError  # noqa: E402
from insertanywhere.models.inpaint import inpaint_image, load_inpaint_pipeline  # noqa: E402
from insertanywhere.models.wan_vace import tiny_tokenizer, tiny_wan_vace_pipeline  # noqa: E402
from insertanywhere.synth.vace import VaceConfig, synthesize_vace  # noqa: E402
from insertanywhere.synth.vace_region import generation_region  # noqa: E402

pytestmark = pytest.mark.torch


def save_tiny_inpaint_pipeline(folder: Path) -> None:
    """A tiny random StableDiffusionInpaintPipeline (the small values of diffusers' own inpainting tests); it takes
    the same call as FluxFillPipeline and the SDXL inpainting pipeline (prompt, image, mask_image, strength)."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionInpaintPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=16,
        in_channels=9,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        norm_num_groups=8,
    )
    vae = AutoencoderKL(
        block_out_channels=[16, 32],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=4,
        norm_num_groups=8,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=0,
            eos_token_id=1,
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            pad_token_id=0,
            vocab_size=64,
        )
    )
    tokenizer = tiny_tokenizer()
    tokenizer.model_max_length = 77
    pipeline = StableDiffusionInpaintPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=DDIMScheduler(steps_offset=1),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipeline.save_pretrained(folder)


@pytest.fixture(scope="module")
def inpaint_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-inpaint")
    save_tiny_inpaint_pipeline(folder)
    return folder


def tiny_clip() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    source = rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    masks = np.zeros((5, 32, 32), bool)
    masks[:, 8:24, 10:22] = True
    control = source.copy()
    control[masks] = [30, 200, 30]
    return {
        "source_frames": source,
        "control_frames": control,
        "object_masks": masks,
        "shadow_mattes": np.zeros((5, 32, 32), np.float32),
        "reference_rgba": np.full((8, 8, 4), 255, np.uint8),
    }


def test_inpaint_image_repaints_and_keeps_the_input_size(inpaint_folder: Path) -> None:
    pipeline = load_inpaint_pipeline(str(inpaint_folder), dtype="fp32", device="cpu")
    assert type(pipeline).__name__ == "StableDiffusionInpaintPipeline"
    image = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    mask = np.zeros((30, 40), bool)
    mask[5:20, 10:30] = True
    painted = inpaint_image(pipeline, image, mask, "a red cup", seed=0, steps=2, strength=1.0)
    assert painted.shape == image.shape and painted.dtype == np.uint8
    assert np.abs(painted[mask].astype(int) - image[mask]).mean() > 5


def test_anchor_model_makes_frame_zero_and_the_video_keeps_its_pixels(inpaint_folder: Path) -> None:
    clip = tiny_clip()
    config = VaceConfig(
        anchor_model=str(inpaint_folder),
        anchor_steps=2,
        anchor_strength=1.0,
        dtype="fp32",
        steps=1,
        window=5,
        overlap=2,
        shadow_band_px=2,
        feather_px=1.0,
        max_sequence_length=8,
    )
    calls: list[dict[str, Any]] = []
    pipeline = tiny_wan_vace_pipeline()
    original_call = type(pipeline).__call__

    def spy(self: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return original_call(self, **kwargs)

    # Record what the video model receives as frame 0 (patched on a subclass: instances ignore __call__ overrides).
    pipeline.__class__ = type("SpyPipeline", (type(pipeline),), {"__call__": spy})
    out = synthesize_vace(**clip, config=config, pipeline=pipeline)
    region = generation_region(clip["object_masks"], clip["shadow_mattes"], 2)
    mask0 = clip["object_masks"][0]
    assert np.abs(out[0][mask0].astype(int) - clip["control_frames"][0][mask0]).mean() > 5, "frame 0 is repainted"
    assert np.array_equal(out[0][~region[0]], clip["source_frames"][0][~region[0]])
    given_frame0 = np.asarray(calls[0]["video"][0])
    assert np.array_equal(given_frame0, out[0]), "the anchor goes to the video model whole, as a known frame"
    assert not np.asarray(calls[0]["mask"][0]).any()


def test_non_inpainting_folders_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="model_index"):
        load_inpaint_pipeline(str(tmp_path), dtype="fp32", device="cpu")
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "WanVACEPipeline"}))
    with pytest.raises(InputError, match="not an inpainting pipeline"):
        load_inpaint_pipeline(str(tmp_path), dtype="fp32", device="cpu")
