"""Benchmark of the 4D-aware mask stage (anchor, scene-flow propagation, occlusion) on synthetic GT scenes.

For each family: mean J, boundary F (DAVIS definitions), J on partly occluded frames, the share of
fully occluded frames predicted empty, centroid jitter beyond the GT motion, and the stage's seconds,
for our scene-flow propagation and for the camera-only baseline (the object fixed in the world).

    python benchmarks/bench_masks.py                 # 81 frames at 832x480, every family
    python benchmarks/bench_masks.py --quick         # small scenes, a few families
    python benchmarks/bench_masks.py --scene oracle  # GT cameras/depth instead of the reconstruction

Prints JSON.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from insertanywhere.data.synthetic import load_synthetic_case, render_case_cached
from insertanywhere.eval.masks import boundary_f, jaccard
from insertanywhere.io.images import read_sequence
from insertanywhere.pipeline import InsertConfig, run_insert

FAMILIES = ["static", "pan", "dolly", "orbit", "moving_occluder", "static_occluder", "moving_support", "low_light"]
STAGES = ("anchor", "propagate", "light", "render")


def centroid(mask: np.ndarray) -> np.ndarray | None:
    ys, xs = np.nonzero(mask)
    return None if len(xs) == 0 else np.array([xs.mean(), ys.mean()])


def centroid_jitter(predicted: list[np.ndarray], truth: list[np.ndarray], visible: list[float]) -> float:
    """RMS (px) of the frame-to-frame change of (predicted centroid - GT centroid) over fully visible frames:
    motion the prediction has that the GT does not."""
    offsets = []
    for p, g, v in zip(predicted, truth, visible, strict=True):
        cp, cg = centroid(p), centroid(g)
        offsets.append(None if (cp is None or cg is None or v < 0.98) else cp - cg)
    steps = [b - a for a, b in itertools.pairwise(offsets) if a is not None and b is not None]
    return float(np.sqrt(np.mean(np.sum(np.square(steps), axis=1)))) if steps else float("nan")


def score(case, predicted: list[np.ndarray]) -> dict[str, float]:
    truth = list(case.masks)
    visible = list(case.visible_fraction)
    j = [jaccard(p, g) for p, g in zip(predicted, truth, strict=True)]
    f = [boundary_f(p, g) for p, g in zip(predicted, truth, strict=True)]
    partly = [jv for jv, v in zip(j, visible, strict=True) if 0.02 < v < 0.98]
    hidden = [not p.any() for p, v in zip(predicted, visible, strict=True) if v <= 0.0]
    return {
        "J_mean": float(np.mean(j)),
        "F_mean": float(np.mean(f)),
        "J_partly_occluded": float(np.mean(partly)) if partly else None,
        "n_partly_occluded": len(partly),
        "fully_occluded_predicted_empty": float(np.mean(hidden)) if hidden else None,
        "n_fully_occluded": len(hidden),
        "centroid_jitter_px": centroid_jitter(predicted, truth, visible),
    }


def run_case(folder: Path, mode: str, scene_source: str, work: Path) -> dict:
    case = load_synthetic_case(folder)
    scene = None
    if scene_source == "oracle":
        from insertanywhere.data.gt_scene import scene_from_gt

        scene = scene_from_gt(case)
    out = work / f"{folder.name}-{scene_source}"  # shared by both modes: the second reuses the scene
    config = InsertConfig(
        video=case.paths["background"],
        object_path=case.paths["object"],
        placement=case.placement,
        out=out,
        propagation=mode,
        write_video=False,
        overwrite=True,
    )
    result = run_insert(config, scene=scene)
    predicted = read_sequence(result.masks_dir, "mask")
    metrics = score(case, predicted)
    seconds = result.report["seconds"]
    metrics["stage_seconds"] = float(sum(seconds.get(k, 0.0) for k in STAGES))
    metrics["reconstruct_seconds"] = float(seconds.get("reconstruct", 0.0))
    metrics["support_moves"] = result.report["support_moves"]
    metrics["camera_model"] = result.report["camera_model"]
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small scenes (about 160x96, 9 frames)")
    parser.add_argument("--families", nargs="*", default=None)
    parser.add_argument("--scene", choices=["reconstructed", "oracle"], default="reconstructed")
    parser.add_argument("--frames", type=int, default=81)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    families = args.families or FAMILIES
    size = {} if args.quick else {"width": 832, "height": 480, "n_frames": args.frames}
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for family in families:
            folder = render_case_cached(family, args.seed, small=args.quick, **size)
            results[family] = {
                mode: run_case(folder, mode, args.scene, Path(tmp)) for mode in ("scene-flow", "camera-only")
            }
            print(f"{family}: {json.dumps(results[family]['scene-flow'])}", file=sys.stderr)
    ours = [r["scene-flow"] for r in results.values()]
    summary = {
        "J_mean": float(np.mean([r["J_mean"] for r in ours])),
        "F_mean": float(np.mean([r["F_mean"] for r in ours])),
        "J_partly_occluded": float(np.nanmean([r["J_partly_occluded"] or np.nan for r in ours])),
        "fully_occluded_predicted_empty": float(
            np.nanmean(
                [r["fully_occluded_predicted_empty"] for r in ours if r["fully_occluded_predicted_empty"] is not None]
                or [np.nan]
            )
        ),
        "centroid_jitter_px": float(np.nanmean([r["centroid_jitter_px"] for r in ours])),
        "stage_seconds_max": float(np.max([r["stage_seconds"] for r in ours])),
    }
    print(json.dumps({"scene": args.scene, "size": size or "small", "summary": summary, "families": results}, indent=1))


if __name__ == "__main__":
    main()
