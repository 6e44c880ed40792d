"""Bench reports: the metric columns, their summary over cases, and the markdown table."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from insertanywhere.io.atomic import write_text_atomic

# (column header, path into a case's eval.json, number format); higher is better unless noted in docs.
METRIC_COLUMNS: list[tuple[str, tuple[str, ...], str]] = [
    ("J", ("gt", "masks", "J_mean"), "{:.3f}"),
    ("F", ("gt", "masks", "F_mean"), "{:.3f}"),
    ("J occl.", ("gt", "masks", "J_partly_occluded"), "{:.3f}"),
    ("PSNR obj", ("gt", "image", "psnr_object"), "{:.2f}"),
    ("SSIM obj", ("gt", "image", "ssim_object"), "{:.3f}"),
    ("PSNR shadow", ("gt", "image", "psnr_shadow"), "{:.2f}"),
    ("PSNR bg", ("background", "psnr_background"), "{:.2f}"),
    ("warp err", ("temporal", "warping_error"), "{:.4f}"),
    ("warp err obj", ("temporal", "warping_error_region"), "{:.4f}"),
    ("CLIP-I", ("subject", "clip_i"), "{:.3f}"),
    ("DINO-I", ("subject", "dino_i"), "{:.3f}"),
    ("subj. cons.", ("quality", "subject_consistency"), "{:.4f}"),
    ("bg cons.", ("quality", "background_consistency"), "{:.4f}"),
    ("motion sm. (DIS)", ("quality", "motion_smoothness_dis"), "{:.4f}"),
    ("imaging (subst.)", ("quality", "imaging_quality_sharpness_noise"), "{:.3f}"),
    ("rot. err deg", ("gt", "trajectory", "rotation_error_deg_mean"), "{:.2f}"),
    ("ATE", ("gt", "trajectory", "ate_rmse"), "{:.3f}"),
    ("contact px", ("gt", "trajectory", "contact_px_mean"), "{:.1f}"),
]


def metric_value(result: dict[str, Any] | None, path: tuple[str, ...]) -> float | None:
    """A number from a nested eval dict; "inf" strings become inf, anything missing None."""
    value: Any = result
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    if value == "inf":
        return math.inf
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean of every metric column over the cases that define it, for all cases and per kind.

    Infinite values (a perfect PSNR) are left out of a mean unless every value is infinite.
    """

    def mean_of(selected: list[dict[str, Any]]) -> dict[str, float | None]:
        means: dict[str, float | None] = {}
        for header, path, _ in METRIC_COLUMNS:
            values = [v for r in selected if (v := metric_value(r.get("eval"), path)) is not None]
            finite = [v for v in values if math.isfinite(v)]
            means[header] = float(np.mean(finite)) if finite else (math.inf if values else None)
        return means

    kinds = sorted({r.get("kind", "real") for r in rows})
    return {
        "n_cases": len(rows),
        "n_failed": sum(1 for r in rows if "error" in r),
        "all": mean_of(rows),
        "by_kind": {kind: mean_of([r for r in rows if r.get("kind") == kind]) for kind in kinds},
    }


def _cell(value: float | None, fmt: str) -> str:
    if value is None:
        return "-"
    if math.isinf(value):
        return "inf"
    return fmt.format(value)


def markdown_table(report: dict[str, Any]) -> str:
    """The per-case metric table (only the columns some case defines), plus the mean rows."""
    rows = report["cases"]
    used = [
        (header, path, fmt)
        for header, path, fmt in METRIC_COLUMNS
        if any(metric_value(r.get("eval"), path) is not None for r in rows)
    ]
    headers = ["case", "kind", *(h for h, _, _ in used), "s insert", "s eval"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['name']} | {row.get('kind', '')} | FAILED: {row['error'].splitlines()[0]} |")
            continue
        cells = [_cell(metric_value(row.get("eval"), path), fmt) for _, path, fmt in used]
        seconds = [_cell(row.get("seconds_insert"), "{:.1f}"), _cell(row.get("seconds_eval"), "{:.1f}")]
        lines.append("| " + " | ".join([row["name"], row.get("kind", ""), *cells, *seconds]) + " |")
    summary = report["summary"]
    for label, means in [("mean (all)", summary["all"])] + [
        (f"mean ({kind})", m) for kind, m in summary["by_kind"].items()
    ]:
        value = [_cell(means.get(h), fmt) if not isinstance(means.get(h), str) else means[h] for h, _, fmt in used]
        lines.append("| " + " | ".join([f"**{label}**", "", *value, "", ""]) + " |")
    return "\n".join(lines)


def write_markdown(report: dict[str, Any], path: Path) -> None:
    """Write ``report.md``: the table, the notes, failed cases and the plots."""
    parts = [
        "# InsertAnywhere benchmark",
        "",
        f"Cases: `{report['cases_dir']}` ({report['summary']['n_cases']} cases, "
        f"{report['summary']['n_failed']} failed).",
        f"Models: CLIP `{report['models']['clip']}`, DINO `{report['models']['dino']}`.",
        "",
        "Metric definitions: docs/evaluation.md. `motion sm. (DIS)` uses classical DIS interpolation instead of "
        "VBench's AMT; `imaging (subst.)` is a sharpness-noise index, not MUSIQ. `-` = not defined for that case "
        "(no GT, no model, no occluded frame).",
        "",
        markdown_table(report),
        "",
    ]
    if report.get("notes"):
        parts += ["## Notes", ""] + [f"- {note}" for note in report["notes"]] + [""]
    failed = [r for r in report["cases"] if "error" in r]
    if failed:
        parts += ["## Failed cases", ""]
        for row in failed:
            parts += [f"### {row['name']}", "", "```", row.get("traceback", row["error"]).rstrip(), "```", ""]
    if report.get("plots"):
        parts += ["## Plots", ""] + [f"![{Path(p).stem}](plots/{Path(p).name})" for p in report["plots"]] + [""]
    write_text_atomic(path, "\n".join(parts))
