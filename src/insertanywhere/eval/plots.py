"""Bench plots (matplotlib, Agg): per-frame J/F, camera trajectory vs GT, metric bars.

Every function takes the report dict (as written to report.json) and writes PNGs; the
same code runs in tests and in ``insertanywhere bench``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from insertanywhere.eval.report import METRIC_COLUMNS, metric_value


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_per_frame_j(case: dict[str, Any], path: Path) -> Path | None:
    """Per-frame J and F of one GT case, occluded frames shaded; None when the case has no GT masks."""
    gt = (case.get("eval") or {}).get("gt") or {}
    per_frame = gt.get("per_frame") or {}
    if "J" not in per_frame:
        return None
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7, 3))
    frames = np.arange(len(per_frame["J"]))
    for index in gt.get("partly_occluded_frames", []):
        axis.axvspan(index - 0.5, index + 0.5, color="orange", alpha=0.2, lw=0)
    for index in gt.get("fully_occluded_frames", []):
        axis.axvspan(index - 0.5, index + 0.5, color="grey", alpha=0.3, lw=0)
    axis.plot(frames, per_frame["J"], label="J", color="tab:blue")
    axis.plot(frames, per_frame["F"], label="F", color="tab:green", alpha=0.7)
    axis.set_ylim(-0.02, 1.02)
    axis.set_xlabel("frame (orange: partly occluded, grey: fully)")
    axis.set_title(f"{case['name']}: mask J / F per frame")
    axis.legend(loc="lower left")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def plot_trajectory(case: dict[str, Any], path: Path) -> Path | None:
    """Camera centres (top view on the GT's two main axes) and per-frame rotation / contact errors."""
    gt = (case.get("eval") or {}).get("gt") or {}
    centres = gt.get("trajectory_centres")
    per_frame = gt.get("per_frame") or {}
    if centres is None:
        return None
    plt = _pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    gt_centres = np.asarray(centres["gt"], dtype=np.float64)
    mean = gt_centres.mean(0)
    # Project on the two principal axes of the GT path: a top view whatever the world's up axis is.
    _, _, vt = np.linalg.svd(gt_centres - mean, full_matrices=False)
    axes = vt[:2].T
    gt_2d = (gt_centres - mean) @ axes
    left.plot(gt_2d[:, 0], gt_2d[:, 1], "k.-", label="GT")
    if centres.get("estimated_aligned") is not None:
        est_2d = (np.asarray(centres["estimated_aligned"]) - mean) @ axes
        left.plot(est_2d[:, 0], est_2d[:, 1], "r.-", label="estimated (Sim(3)-aligned)")
    else:
        left.text(0.5, 0.5, "camera does not translate:\nATE undefined", transform=left.transAxes, ha="center")
    left.set_aspect("equal", adjustable="datalim")
    left.set_title("camera centres")
    left.legend(loc="best")
    if "rotation_error_deg" in per_frame:
        right.plot(per_frame["rotation_error_deg"], label="rotation error (deg)")
    if "contact_px" in per_frame:
        contact = [math.nan if v is None else v for v in per_frame["contact_px"]]
        right.plot(contact, label="contact point error (px)")
    right.set_xlabel("frame")
    right.set_title("per-frame errors")
    right.legend(loc="best")
    figure.suptitle(case["name"])
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def plot_metric_bars(report: dict[str, Any], path: Path) -> Path | None:
    """One bar chart per metric column, one bar per case (columns no case defines are left out)."""
    cases = [c for c in report["cases"] if "eval" in c]
    columns = [
        (header, keys)
        for header, keys, _ in METRIC_COLUMNS
        if any(metric_value(c["eval"], keys) is not None for c in cases)
    ]
    if not columns:
        return None
    plt = _pyplot()
    n_cols = 4
    n_rows = math.ceil(len(columns) / n_cols)
    figure, axes = plt.subplots(n_rows, n_cols, figsize=(4 * n_cols, 2.8 * n_rows), squeeze=False)
    names = [c["name"] for c in cases]
    for axis, (header, keys) in zip(axes.flat, columns, strict=False):
        values = [metric_value(c["eval"], keys) for c in cases]
        finite = [v for v in values if v is not None and math.isfinite(v)]
        cap = max(finite) * 1.1 if finite else 1.0
        heights = [0.0 if v is None else (cap if math.isinf(v) else v) for v in values]
        colours = ["lightgrey" if v is None else ("gold" if math.isinf(v) else "tab:blue") for v in values]
        axis.bar(range(len(names)), heights, color=colours)
        axis.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
        axis.set_title(header, fontsize=9)
    for axis in list(axes.flat)[len(columns) :]:
        axis.axis("off")
    figure.suptitle("metrics per case (gold: infinite PSNR, grey: undefined)")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def write_plots(report: dict[str, Any], folder: Path) -> list[str]:
    """Write every plot of a bench report into ``folder``; returns the written paths."""
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path | None] = [plot_metric_bars(report, folder / "metrics.png")]
    for case in report["cases"]:
        if "eval" not in case:
            continue
        written.append(plot_per_frame_j(case, folder / f"{case['name']}_j.png"))
        written.append(plot_trajectory(case, folder / f"{case['name']}_trajectory.png"))
    return [str(p) for p in written if p is not None]
