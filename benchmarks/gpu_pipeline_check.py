"""Device check of the learned reconstruction backends through the commands a user types (prints JSON).

``benchmarks/gpu_check.py`` checks each learned model's own wrapper on a GPU. This one checks the path from the
command line to the model: ``insertanywhere masks VIDEO ... --depth depth-anything-v2 | --flow raft |
--dynamic sam2 --model-path DIR --device D`` and ``insertanywhere reconstruct ... --device D``, each run as a
subprocess the way a user runs it, with a tiny randomly initialised model saved to a folder (nothing downloads).

Per backend and device it reports: the exit code (and the last stderr line on failure), the warnings it printed,
the wall time, the device the report and ``scene.json`` say the model ran on, and, against the CPU run of the
same backend, the largest camera-centre difference (% of the trajectory length), the median relative depth
difference on pixels both runs give a depth, and the mean Jaccard index of the two runs' object masks. It also
checks that a device this machine lacks (``cuda:7``) is refused in one line with exit code 2.

A random model's depth and flow are noise, so the figures say whether the GPU and CPU runs of the *same* model
agree (plumbing, placement on the device, dtype), not whether the result is good.

Usage::

    # here (has PyAV): write the clip as PNG frames, the object and the placement into a folder
    python benchmarks/gpu_pipeline_check.py --prepare .devcheck/clip
    # on the GPU machine (needs pycolmap and trimesh besides torch and transformers; PyAV is not needed)
    python benchmarks/gpu_pipeline_check.py --clip .devcheck/clip --devices cpu,cuda --out result.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

BACKENDS = {"depth-anything-v2": "--depth", "raft": "--flow", "sam2": "--dynamic"}


def prepare(folder: Path, family: str, width: int, height: int, n_frames: int, suffix: str = ".png") -> None:
    """Render a synthetic case and write it as ``frames/NNNNN{suffix}``, ``object.png`` and ``placement.json``
    (``.jpg`` frames at quality 95 keep an 81-frame 832x480 clip small enough to carry to a GPU machine)."""
    import cv2

    from insertanywhere.data.synthetic import load_synthetic_case, render_case_cached

    rendered = render_case_cached(family, 0, small=False, width=width, height=height, n_frames=n_frames)
    case = load_synthetic_case(rendered)
    (folder / "frames").mkdir(parents=True, exist_ok=True)
    options = [cv2.IMWRITE_JPEG_QUALITY, 95] if suffix == ".jpg" else []
    for index, frame in enumerate(case.background):
        cv2.imwrite(str(folder / "frames" / f"{index:05d}{suffix}"), frame[..., ::-1], options)
    shutil.copy(case.paths["object"], folder / "object.png")
    (folder / "placement.json").write_text(json.dumps(case.placement.to_dict()))


def add_prepare_arguments(parser: argparse.ArgumentParser, size: str, family: str = "dolly") -> None:
    """The options that write a clip folder here (where PyAV renders it) to carry to the GPU machine."""
    parser.add_argument("--prepare", type=Path, help="write the clip folder (frames/, object, placement) and stop")
    parser.add_argument("--family", default=family)
    parser.add_argument("--size", default=size, help="WIDTHxHEIGHTxFRAMES of the prepared clip")
    parser.add_argument("--format", choices=["png", "jpg"], default="png", help="the prepared frames' format")
    parser.add_argument("--clip", type=Path, help="a folder --prepare wrote")


def prepared(args: argparse.Namespace) -> bool:
    """Write the clip folder when ``--prepare`` asks for it; True when that was the whole job."""
    if args.prepare is None:
        return False
    width, height, n_frames = (int(v) for v in args.size.split("x"))
    prepare(args.prepare, args.family, width, height, n_frames, "." + args.format)
    print(json.dumps({"prepared": str(args.prepare)}))
    return True


def build_model(backend: str, folder: Path) -> Path:
    """A tiny randomly initialised model of ``backend`` saved where its loader finds it (seeded)."""
    import torch

    torch.manual_seed(0)
    folder.mkdir(parents=True)
    if backend == "raft":
        from insertanywhere.models.raft import RAFT_SMALL, build_raft

        torch.save(build_raft(RAFT_SMALL).state_dict(), folder / "raft_small.pth")
    elif backend == "depth-anything-v2":
        from transformers import DepthAnythingForDepthEstimation

        from insertanywhere.testing import tiny_depth_anything_config

        DepthAnythingForDepthEstimation(tiny_depth_anything_config()).save_pretrained(folder)
    else:
        from transformers import Sam2VideoModel

        from insertanywhere.testing import tiny_sam2_config

        Sam2VideoModel(tiny_sam2_config()).save_pretrained(folder)
    return folder


def cli(*args: str | Path) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "insertanywhere.cli", *map(str, args)], capture_output=True, text=True, timeout=900
    )
    return run, time.perf_counter() - start


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def warning_lines(text: str) -> list[str]:
    """The warnings a run printed (Python's ``...Warning: ...`` lines), at most three."""
    return [line.strip() for line in text.splitlines() if "Warning:" in line][:3]


def read_run(out: Path) -> dict[str, Any]:
    """What a finished ``masks`` run left: cameras, depth and masks (arrays) and the recorded backends."""
    from insertanywhere.io.images import read_sequence
    from insertanywhere.io.scene_store import load_scene

    scene = load_scene(out / "scene")
    report = json.loads((out / "report.json").read_text())
    return {
        "centres": np.stack([camera.center_world for camera in scene.cameras]),
        "depth": np.asarray(scene.depth, np.float32),
        "masks": np.stack(read_sequence(out / "masks")) > 127,
        "report_backends": report["backends"],
        "scene_device": scene.meta.backends.get("device"),
    }


def compare(run: dict[str, Any], reference: dict[str, Any]) -> dict[str, float]:
    """Agreement of two runs of the same model: camera centres (% of the reference's trajectory length), depth
    (median relative difference where both are > 0) and masks (mean Jaccard over frames with either mask)."""
    length = float(np.linalg.norm(np.diff(reference["centres"], axis=0), axis=1).sum())
    gap = float(np.linalg.norm(run["centres"] - reference["centres"], axis=1).max())
    both = (run["depth"] > 0) & (reference["depth"] > 0)
    relative = np.abs(run["depth"][both] - reference["depth"][both]) / reference["depth"][both]
    union = (run["masks"] | reference["masks"]).reshape(len(run["masks"]), -1).sum(axis=1)
    inter = (run["masks"] & reference["masks"]).reshape(len(run["masks"]), -1).sum(axis=1)
    shown = union > 0
    return {
        "camera_centre_gap_percent": round(100.0 * gap / length, 4) if length > 0 else gap,
        "depth_median_relative_diff": round(float(np.median(relative)), 5) if relative.size else float("nan"),
        "mask_jaccard": round(float((inter[shown] / union[shown]).mean()), 4) if shown.any() else 1.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_prepare_arguments(parser, size="320x192x17")
    parser.add_argument("--devices", default="cpu,cuda")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if prepared(args):
        return

    import torch

    devices = args.devices.split(",")
    result: dict[str, Any] = {
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": sys.version.split()[0],
        "runs": [],
    }
    clip = args.clip
    common = ["--object", clip / "object.png", "--placement", clip / "placement.json"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for backend in args.backends.split(","):
            model = build_model(backend, work / "models" / backend)
            reference = None
            for device in devices:
                out = work / f"{backend}-{device}"
                run, seconds = cli("masks", clip / "frames", *common, "-o", out, BACKENDS[backend], backend,
                                   "--model-path", model, "--device", device)  # fmt: skip
                row: dict[str, Any] = {"command": "masks", "backend": backend, "device": device,
                                       "rc": run.returncode, "seconds": round(seconds, 2),
                                       "warnings": warning_lines(run.stderr)}  # fmt: skip
                if run.returncode != 0:
                    row["error"] = last_line(run.stderr)
                else:
                    outputs = read_run(out)
                    row["report_device"] = outputs["report_backends"].get("device")
                    row["scene_device"] = outputs["scene_device"]
                    row["reconstruct_s"] = json.loads((out / "report.json").read_text())["seconds"].get("reconstruct")
                    if reference is None:
                        reference = outputs
                    else:
                        row["vs_" + devices[0]] = compare(outputs, reference)
                result["runs"].append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
        gpu = next((d for d in devices if d != "cpu"), None)
        if gpu is not None:
            depth_model = work / "models" / "depth-anything-v2"
            run, seconds = cli("reconstruct", clip / "frames", "-o", work / "reconstruct", "--depth",
                               "depth-anything-v2", "--model-path", depth_model, "--device", gpu)  # fmt: skip
            scene = json.loads((work / "reconstruct" / "scene.json").read_text()) if run.returncode == 0 else {}
            result["reconstruct_command"] = {
                "rc": run.returncode,
                "seconds": round(seconds, 2),
                "scene_device": scene.get("backends", {}).get("device"),
                "stdout": last_line(run.stdout),
                "stderr": last_line(run.stderr),
                "warnings": warning_lines(run.stderr),
            }
            run, _ = cli("reconstruct", clip / "frames", "-o", work / "refused", "--depth", "depth-anything-v2",
                         "--model-path", depth_model, "--device", "cuda:7")  # fmt: skip
            lines = [line for line in run.stderr.splitlines() if line.strip()]
            result["unusable_device"] = {"rc": run.returncode, "lines": len(lines), "line": last_line(run.stderr)}
    text = json.dumps(result, indent=1)
    print(text)
    if args.out is not None:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
