"""What the learned reconstruction backends cost at their released size, on a GPU (prints JSON; a benchmark).

No weights can be downloaded here, so each backend runs a randomly initialised model of its released
architecture: Depth Anything V2 Small and Large (DINOv2 ViT-S/14 and ViT-L/14 with the DPT head), RAFT large
(torchvision's layout, 5.3 M parameters) and SAM 2.1 hiera-tiny (transformers' default ``Sam2VideoConfig``, 39 M).
The compute and memory are the real models'; the outputs are noise, so only seconds and memory are reported,
not accuracy. Each model is saved to a folder and loaded back through the project's own loader, then
``reconstruct`` runs the clip with that backend on ``--device``, after a run with the classical default.

Reported per run: the stage seconds ``reconstruct`` records, the total, the model's parameter count and the peak
GPU memory (``torch.cuda.max_memory_allocated``). The CPU stages run on whatever cores the machine has (16 on
the lent H100 machine, 2 on ours), so only the learned stage's seconds carry over to another machine.

    python benchmarks/bench_learned_gpu.py --prepare .devcheck/clip81 --format jpg   # here (needs PyAV)
    python benchmarks/bench_learned_gpu.py --clip .devcheck/clip81 --device cuda --out result.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_pipeline_check import add_prepare_arguments, prepared

BACKENDS = ("depth-anything-v2-small", "depth-anything-v2-large", "raft-large", "sam2-hiera-tiny")


def depth_anything_config(size: str) -> Any:
    """transformers ``DepthAnythingConfig`` of the released V2 Small or Large checkpoint."""
    from transformers import DepthAnythingConfig, Dinov2Config

    small = size == "small"
    backbone = Dinov2Config(
        hidden_size=384 if small else 1024, num_hidden_layers=12 if small else 24,
        num_attention_heads=6 if small else 16, mlp_ratio=4, patch_size=14, image_size=518,
        out_indices=[3, 6, 9, 12] if small else [5, 12, 18, 24], reshape_hidden_states=False, layerscale_value=1.0,
    )  # fmt: skip
    return DepthAnythingConfig(
        backbone_config=backbone, reassemble_hidden_size=backbone.hidden_size, patch_size=14,
        reassemble_factors=[4, 2, 1, 0.5], neck_hidden_sizes=[48, 96, 192, 384] if small else [256, 512, 1024, 1024],
        fusion_hidden_size=64 if small else 256, head_hidden_size=32, depth_estimation_type="relative",
    )  # fmt: skip


def build(backend: str, folder: Path) -> tuple[dict[str, Any], int]:
    """Save a random model of ``backend`` to ``folder``; returns (ReconstructConfig fields, parameter count)."""
    import torch

    torch.manual_seed(0)
    folder.mkdir(parents=True)
    if backend.startswith("depth-anything"):
        from transformers import DepthAnythingForDepthEstimation

        model = DepthAnythingForDepthEstimation(depth_anything_config(backend.rsplit("-", 1)[1]))
        model.save_pretrained(folder)
        fields = {"depth": "depth-anything-v2"}
    elif backend == "raft-large":
        from insertanywhere.models.raft import RAFT_LARGE, build_raft

        model = build_raft(RAFT_LARGE)
        torch.save(model.state_dict(), folder / "raft_large.pth")
        fields = {"flow": "raft"}
    else:
        from transformers import Sam2VideoConfig, Sam2VideoModel

        model = Sam2VideoModel(Sam2VideoConfig())
        model.save_pretrained(folder)
        fields = {"dynamic": "sam2"}
    return {**fields, "model_path": str(folder)}, sum(p.numel() for p in model.parameters())


def run(frames: Any, fields: dict[str, Any], device: str) -> dict[str, Any]:
    import torch

    from insertanywhere.scene import ReconstructConfig, reconstruct

    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    scene = reconstruct(frames, ReconstructConfig(device=device, **fields))
    seconds = time.perf_counter() - start
    row: dict[str, Any] = {
        "seconds_total": round(seconds, 2),
        "seconds": scene.meta.extra["seconds"],
        "camera_model": scene.meta.camera_model,
        "backends": scene.meta.backends,
    }
    if device.startswith("cuda"):
        row["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_prepare_arguments(parser, size="832x480x81")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if prepared(args):
        return

    import numpy as np
    import torch

    from insertanywhere.io.video import VideoReader

    frames = np.stack(list(VideoReader(args.clip / "frames")))
    result: dict[str, Any] = {
        "device": args.device,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "cpu_threads": torch.get_num_threads(),
        "clip": list(frames.shape),
        "runs": {"classical": run(frames, {}, args.device)},
    }
    print(json.dumps({"classical": result["runs"]["classical"]}), file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            fields, n_params = build(backend, Path(tmp) / backend)
            row = {"parameters_millions": round(n_params / 1e6, 1), **run(frames, fields, args.device)}
            result["runs"][backend] = row
            print(json.dumps({backend: row}), file=sys.stderr, flush=True)
    text = json.dumps(result, indent=1)
    print(text)
    if args.out is not None:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
