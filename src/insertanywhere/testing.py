"""Tiny inputs and model configs shared by the test suite and the device check (benchmarks/gpu_check.py).

Nothing here downloads: models are built from configs with random weights, clips are drawn with numpy.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def tiny_depth_anything_config() -> Any:
    """A transformers ``DepthAnythingConfig`` with a 4-layer, 32-wide DINOv2 backbone (patch 14)."""
    from transformers import DepthAnythingConfig, Dinov2Config

    backbone = Dinov2Config(
        hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64, patch_size=14,
        image_size=56, out_features=["stage1", "stage2", "stage3", "stage4"], reshape_hidden_states=False,
    )  # fmt: skip
    return DepthAnythingConfig(
        backbone_config=backbone, reassemble_hidden_size=32, neck_hidden_sizes=[8, 16, 32, 32],
        fusion_hidden_size=16, head_hidden_size=8, patch_size=14,
    )  # fmt: skip


def tiny_sam2_config() -> Any:
    """A ~1M-parameter transformers ``Sam2VideoConfig`` at 64x64 input. The memory path needs memory channels
    64 (hard-wired in transformers' memory attention) and a hidden size that is a multiple of it. Sub-configs
    are config objects, not dicts: transformers 5.17 builds a dict ``mask_decoder_config`` as a
    prompt-encoder config."""
    from transformers import Sam2VideoConfig
    from transformers.models.sam2.configuration_sam2 import Sam2HieraDetConfig, Sam2VisionConfig
    from transformers.models.sam2_video.configuration_sam2_video import (
        Sam2VideoMaskDecoderConfig,
        Sam2VideoPromptEncoderConfig,
    )

    backbone = Sam2HieraDetConfig(
        hidden_size=8, image_size=[64, 64], blocks_per_stage=[1, 2, 1, 1], embed_dim_per_stage=[8, 16, 32, 64],
        num_attention_heads_per_stage=[1, 1, 1, 1], window_size_per_stage=[4, 4, 2, 1], global_attention_blocks=[2],
        window_positional_embedding_background_size=[2, 2],
    )  # fmt: skip
    vision = Sam2VisionConfig(
        backbone_config=backbone, backbone_channel_list=[64, 32, 16, 8],
        backbone_feature_sizes=[[16, 16], [8, 8], [4, 4]], fpn_hidden_size=128,
    )  # fmt: skip
    return Sam2VideoConfig(
        vision_config=vision,
        prompt_encoder_config=Sam2VideoPromptEncoderConfig(
            hidden_size=128, image_size=64, patch_size=16, mask_input_channels=4
        ),
        mask_decoder_config=Sam2VideoMaskDecoderConfig(
            hidden_size=128, mlp_dim=64, num_attention_heads=2, iou_head_hidden_dim=32
        ),
        image_size=64, memory_attention_hidden_size=128, memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=64, memory_attention_rope_feat_sizes=[4, 4],
        memory_encoder_hidden_size=128, memory_encoder_output_channels=64, mask_downsampler_embed_dim=128,
        memory_fuser_embed_dim=128, memory_fuser_intermediate_dim=64, num_maskmem=3, max_object_pointers_in_encoder=4,
    )  # fmt: skip


def moving_squares(n_frames: int = 6, height: int = 48, width: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """A bright square moving right from frame 0, a second one entering at frame 3, over a noisy grey floor.

    Returns:
        frames (T, H, W, 3) uint8 RGB and coarse (T, H, W) bool: the squares' pixels (residual-like masks).
    """
    rng = np.random.default_rng(0)
    frames = np.repeat(rng.integers(40, 90, (1, height, width, 3), dtype=np.uint8), n_frames, axis=0)
    coarse = np.zeros((n_frames, height, width), bool)
    for t in range(n_frames):
        x = 6 + 4 * t
        frames[t, 10:22, x : x + 12] = (230, 200, 40)
        coarse[t, 10:22, x : x + 12] = True
        if t >= 3:
            frames[t, 30:42, 44:56] = (40, 200, 230)
            coarse[t, 30:42, 44:56] = True
    return frames, coarse


def tiny_insertion_clip(n_frames: int = 9, height: int = 32, width: int = 48, seed: int = 0) -> dict[str, np.ndarray]:
    """A textured clip with a red box moving right (the composited object) and a shadow strip under it.

    Returns:
        the keyword arguments of ``synth.vace.synthesize_vace``'s clip: source_frames and control_frames
        (T, H, W, 3) uint8, object_masks (T, H, W) bool, shadow_mattes (T, H, W) float32 in [0, 1],
        reference_rgba (24, 16, 4) uint8.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 4, yy * 6, np.full_like(xx, 90)], -1).astype(np.int32)
    source = np.clip(base[None] + rng.integers(-20, 20, (n_frames, height, width, 3)), 0, 255).astype(np.uint8)
    masks = np.zeros((n_frames, height, width), bool)
    shadows = np.zeros((n_frames, height, width), np.float32)
    top, bottom, size = height // 4, height * 5 // 8, max(4, width // 4)
    for t in range(n_frames):
        x0 = width // 4 + t % max(1, width // 2 - size)
        masks[t, top:bottom, x0 : x0 + size] = True
        shadows[t, bottom : bottom + 3, x0 - 2 : x0 + size + 2] = 0.6
    control = source.copy()
    control[masks] = [220, 30, 30]
    control[shadows > 0] = (control[shadows > 0] * 0.4).astype(np.uint8)
    reference = np.zeros((24, 16, 4), np.uint8)
    reference[..., 0] = 220
    reference[..., 1:3] = 30
    reference[2:22, 2:14, 3] = 255
    return {
        "source_frames": source,
        "control_frames": control,
        "object_masks": masks,
        "shadow_mattes": shadows,
        "reference_rgba": reference,
    }
