"""Extended optics mask vs the synthetic scenes' GT shadow matte: recall and precision per family.

Usage: python benchmarks/optics_mask.py [--families static,low_light] [--seeds 0,1] [--full-size]
Prints one JSON object. Recall: GT shadow pixels (matte >= 0.1, outside the object mask) inside the extended
mask. Precision: added pixels (extended minus object mask) that lie on GT shadow (matte >= 0.02) or within 2 px
of the object's anti-aliased coverage (alpha > 0.02), both legitimately changed by the object.
"""

from __future__ import annotations

import argparse
import json
import time

import cv2
import numpy as np

from insertanywhere.data.dataset_optics import OpticsMaskConfig, extended_optics_mask_frame
from insertanywhere.data.synthetic import FAMILIES, load_synthetic_case, render_case_cached


def score_case(folder, config: OpticsMaskConfig) -> dict:
    case = load_synthetic_case(folder)
    inserted = case.inserted()
    hits = shadow_px = added = legit = 0
    for t in range(case.n_frames):
        mask = case.masks[t]
        extended = extended_optics_mask_frame(case.background[t], inserted[t], mask, config)
        shadow = (case.shadow[t] >= 0.1) & ~mask
        rim = cv2.dilate(((case.alpha[t] > 0.02) | mask).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        extra = extended & ~mask
        hits += int((extended & shadow).sum())
        shadow_px += int(shadow.sum())
        added += int(extra.sum())
        legit += int((extra & ((case.shadow[t] >= 0.02) | rim)).sum())
    return {
        "shadow_px": shadow_px,
        "recall": round(hits / shadow_px, 4) if shadow_px else None,
        "precision": round(legit / added, 4) if added else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default=",".join(f for f in FAMILIES if f != "demo"))
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--full-size", action="store_true", help="render the families' default sizes (slow)")
    args = parser.parse_args()
    config = OpticsMaskConfig()
    results = {}
    start = time.perf_counter()
    for family in args.families.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            folder = render_case_cached(family, seed, small=not args.full_size)
            results[f"{family}/seed{seed}"] = score_case(folder, config)
    recalls = [r["recall"] for r in results.values() if r["recall"] is not None]
    print(
        json.dumps(
            {
                "benchmark": "optics_mask",
                "cases": results,
                "min_recall": min(recalls) if recalls else None,
                "mean_recall": round(float(np.mean(recalls)), 4) if recalls else None,
                "seconds": round(time.perf_counter() - start, 2),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
