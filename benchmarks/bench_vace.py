"""Seconds and peak GPU memory of the VACE backend on one synthetic clip, against the documented estimate.

Without ``--model`` it runs the tiny random components on the CPU (a plumbing/overhead figure, seconds only).
With a real model on a GPU it measures what docs/vace.md estimates:

    python benchmarks/bench_vace.py                                           # tiny, CPU
    python benchmarks/bench_vace.py --model Wan-AI/Wan2.1-VACE-1.3B-diffusers --height 480 --width 832 \
        --frames 81 --steps 30 --offload model                                 # real, GPU

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time

from insertanywhere.testing import tiny_insertion_clip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=None, help="hub id or folder; none = tiny random components on the CPU")
    parser.add_argument("--frames", type=int, default=9)
    parser.add_argument("--height", type=int, default=32)
    parser.add_argument("--width", type=int, default=48)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--window", type=int, default=81)
    parser.add_argument("--offload", default="model")
    parser.add_argument("--dtype", default="bf16")
    args = parser.parse_args()

    import torch

    from insertanywhere.models.wan_vace import estimate_vace_memory, tiny_wan_vace_pipeline
    from insertanywhere.synth.vace import VaceConfig, synthesize_vace
    from insertanywhere.synth.vace_region import generation_size

    clip = tiny_insertion_clip(args.frames, args.height, args.width)
    config = VaceConfig(
        model=args.model or "tiny",
        steps=args.steps,
        window=args.window,
        overlap=min(16, args.window - 1),
        offload=args.offload,
        dtype=args.dtype if args.model else "fp32",
        allow_cpu=args.model is None,
        max_area=max(480 * 832, 16 * 16),
        object_name="red box",
        max_sequence_length=512 if args.model else 16,
    )
    notices: list[str] = []
    pipeline = tiny_wan_vace_pipeline() if args.model is None else None
    cuda = torch.cuda.is_available() and args.model is not None
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    out = synthesize_vace(**clip, config=config, pipeline=pipeline, notify=notices.append)
    seconds = time.perf_counter() - start
    gen_height, gen_width = generation_size(args.height, args.width, config.max_area)
    result = {
        "model": args.model or "tiny-random (CPU)",
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "frames": args.frames,
        "size": [args.width, args.height],
        "generation_size": [gen_width, gen_height],
        "steps": args.steps,
        "offload": args.offload if args.model else "none",
        "seconds": round(seconds, 2),
        "seconds_per_frame": round(seconds / args.frames, 3),
        "changed_fraction": float((out != clip["source_frames"]).any(-1).mean()),
        "notices": notices,
    }
    if args.model is not None:
        frames_per_window = min(args.window, 1 + 4 * -(-(args.frames - 1) // 4))
        estimate = estimate_vace_memory(
            args.model, gen_height, gen_width, frames_per_window, args.dtype, args.offload, config.vae_tiling
        )
        result["estimated_peak_gib"] = round(estimate.total_gib, 1)
    if cuda:
        result["measured_peak_gib"] = round(torch.cuda.max_memory_allocated() / 1024**3, 1)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
