"""A Scene4D made from a synthetic case's ground truth (cameras, depth, movers) plus DIS flow.

The "oracle" reconstruction: it lets the placement, occlusion and compositing stages be
tested and benchmarked apart from the reconstruction's own errors.
"""

from __future__ import annotations

import numpy as np

from insertanywhere.conventions import Scene4D, SceneMeta
from insertanywhere.data.synthetic import SyntheticCase
from insertanywhere.scene.flow import DISFlow, compute_flows


def scene_from_gt(case: SyntheticCase, known_mover_depth: bool = False) -> Scene4D:
    """Scene4D with GT cameras and depth of the background scene and GT dynamic masks.

    Args:
        case: a loaded synthetic case.
        known_mover_depth: keep GT depth on moving pixels (as a depth prior would give);
            False leaves it unknown (0), as the classical reconstruction does.
    """
    depth = np.array(case.depth, dtype=np.float32)
    if not known_mover_depth:
        depth[case.dynamic] = 0.0
    forward, backward = compute_flows(list(case.background), DISFlow())
    meta = SceneMeta(
        width=int(case.meta["width"]),
        height=int(case.meta["height"]),
        fps=float(case.meta["fps"]),
        n_frames=case.n_frames,
        units="metric",
        camera_model=case.meta.get("camera_model", "general"),
        backends={"cameras": "ground-truth", "depth": "ground-truth", "dynamic": "ground-truth", "flow": "dis"},
    )
    return Scene4D(
        meta=meta,
        cameras=list(case.cameras),
        depth=depth,
        depth_confidence=(depth > 0).astype(np.float32),
        dynamic_mask=np.array(case.dynamic, dtype=bool),
        flow_forward=forward,
        flow_backward=backward,
    )
