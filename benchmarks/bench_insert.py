"""End-to-end benchmark of `insert` with the compositing backend on synthetic GT scenes (and real clips).

Per family: PSNR and SSIM inside the GT object region (the GT object's box, shadow included, grown by 25%
per side) against the GT render; PSNR outside our own object-and-shadow region against the input (the
rest of the video untouched); end-to-end seconds. The light is given as the scene's true sun (in the
`--light` convention) unless --estimate-light.

    python benchmarks/bench_insert.py                      # 81 frames at 832x480, every family
    python benchmarks/bench_insert.py --quick              # small scenes
    python benchmarks/bench_insert.py --real OUT_DIR       # also run every clip of ../shared/data/videos

Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from insertanywhere.conventions import Placement
from insertanywhere.data.synthetic import load_synthetic_case, render_case_cached
from insertanywhere.eval.gt_metrics import object_region_box, psnr, ssim_in_box
from insertanywhere.io.images import read_sequence
from insertanywhere.io.video import read_video
from insertanywhere.pipeline import InsertConfig, run_insert
from insertanywhere.render.light import Light

FAMILIES = ["static", "pan", "dolly", "orbit", "moving_occluder", "static_occluder", "moving_support", "low_light"]
DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def true_light(case) -> tuple[float, float]:
    """The scene's sun as (azimuth, elevation) in the --light convention (about the support, from the camera)."""
    light = Light(np.asarray(case.meta["light"]["direction"], np.float64))
    normal = np.asarray(case.meta["support_plane"]["normal"], np.float64)
    return light.angles(normal, case.cameras[case.placement.frame])


def region_scores(case, ours: np.ndarray, layers: list[np.ndarray], shadows: list[np.ndarray]) -> dict:
    gt = case.inserted()
    inside_psnr, inside_ssim, outside_psnr = [], [], []
    kernel = np.ones((5, 5), np.uint8)
    for t in range(case.n_frames):
        box = object_region_box(case.masks[t] | (case.shadow[t] > 0.05))
        if box is not None:
            x0, y0, x1, y1 = box
            region = np.zeros(case.masks[t].shape, bool)
            region[y0:y1, x0:x1] = True
            inside_psnr.append(psnr(ours[t], gt[t], region))
            inside_ssim.append(ssim_in_box(ours[t], gt[t], box))
        touched = cv2.dilate(((layers[t][..., 3] > 0) | (shadows[t] > 0)).astype(np.uint8), kernel) > 0
        outside_psnr.append(psnr(ours[t], case.background[t], ~touched))
    finite = [v for v in outside_psnr if v is not None and np.isfinite(v)]
    return {
        "object_psnr": float(np.mean(inside_psnr)) if inside_psnr else None,
        "object_ssim": float(np.mean(inside_ssim)) if inside_ssim else None,
        "outside_psnr": float(np.mean(finite)) if finite else float("inf"),
    }


def run_synthetic(folder: Path, work: Path, estimate_light: bool, oracle: bool = False) -> dict:
    case = load_synthetic_case(folder)
    scene = None
    if oracle:
        from insertanywhere.data.gt_scene import scene_from_gt

        scene = scene_from_gt(case)
    config = InsertConfig(
        video=case.paths["background"],
        object_path=case.paths["object"],
        placement=case.placement,
        out=work / folder.name,
        light=None if estimate_light else true_light(case),
        overwrite=True,
    )
    start = time.perf_counter()
    result = run_insert(config, scene=scene)
    seconds = time.perf_counter() - start
    ours, _ = read_video(result.inserted_video)
    layers = read_sequence(result.layers_dir, "rgba")
    shadows = read_sequence(result.shadow_dir, "gray")
    scores = region_scores(case, ours, layers, shadows)
    scores.update(
        {
            "seconds": seconds,
            "stage_seconds": result.report["seconds"],
            "camera_model": result.report["camera_model"],
            "support_moves": result.report["support_moves"],
        }
    )
    return scores


def run_real(out_dir: Path) -> dict:
    """Every clip of ../shared/data/videos with its first suggested box; previews land in out_dir."""
    placements = json.loads((DATA / "placements.json").read_text())
    objects = sorted((DATA / "objects" / "images").glob("*.png"))
    results = {}
    for i, (name, entries) in enumerate(sorted(k for k in placements.items() if k[0].startswith("videos/"))):
        entry = entries[0]
        clip = Path(name).stem
        config = InsertConfig(
            video=DATA / name,
            object_path=objects[i % len(objects)],
            placement=Placement(frame=0, box=tuple(float(v) for v in entry["box"])),
            out=out_dir / clip,
            overwrite=True,
        )
        start = time.perf_counter()
        try:
            result = run_insert(config)
            results[clip] = {
                "seconds": time.perf_counter() - start,
                "camera_model": result.report["camera_model"],
                "warnings": result.report["warnings"],
                "preview": str(result.preview_path),
            }
        except Exception as err:
            results[clip] = {"error": f"{err.__class__.__name__}: {err}"}
        print(f"{clip}: {json.dumps(results[clip])}", file=sys.stderr)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small scenes (about 160x96, 9 frames)")
    parser.add_argument("--families", nargs="*", default=None)
    parser.add_argument("--frames", type=int, default=81)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--estimate-light", action="store_true", help="estimate the light instead of the true sun")
    parser.add_argument("--scene", choices=["reconstructed", "oracle"], default="reconstructed")
    parser.add_argument("--real", type=Path, default=None, help="also run the real clips, previews into this folder")
    args = parser.parse_args()
    size = {} if args.quick else {"width": 832, "height": 480, "n_frames": args.frames}
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for family in args.families or FAMILIES:
            folder = render_case_cached(family, args.seed, small=args.quick, **size)
            results[family] = run_synthetic(folder, Path(tmp), args.estimate_light, args.scene == "oracle")
            print(
                f"{family}: {json.dumps({k: v for k, v in results[family].items() if k != 'stage_seconds'})}",
                file=sys.stderr,
            )
    summary = {
        key: float(np.mean([r[key] for r in results.values() if r[key] is not None]))
        for key in ("object_psnr", "object_ssim", "outside_psnr", "seconds")
    }
    report = {"scene": args.scene, "size": size or "small", "summary": summary, "families": results}
    if args.real is not None:
        report["real"] = run_real(args.real)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
