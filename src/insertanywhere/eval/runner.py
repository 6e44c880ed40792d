"""``insertanywhere bench``: run the insert pipeline over a folder of cases, then every metric.

For each case the runner calls an insert function (the real pipeline by default; tests pass
a fake that copies the GT so the metrics are known), then ``evaluate_output`` with the case's
GT, input video and reference object. It writes ``REPORT/report.json`` (everything),
``REPORT/report.md`` (a table) and ``REPORT/plots/*.png``. A case that fails is recorded
with its error in both reports (and makes the CLI exit non-zero); the other cases still run.
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from insertanywhere.eval.cases import BenchCase, discover_cases
from insertanywhere.eval.evaluate import EvalInputs, EvalModels, evaluate_output, json_safe
from insertanywhere.io.atomic import prepare_output_dir, write_json_atomic
from insertanywhere.progress import Progress, null_progress

InsertFunction = Callable[[BenchCase, Path], Path]
"""(case, output folder) -> the output folder holding the output-folder contract."""


@dataclass
class PipelineInsert:
    """The real insert pipeline as an InsertFunction (``insertanywhere.pipeline.run_insert``).

    Attributes:
        synth: "composite" or "vace".
        extra: further InsertConfig fields (e.g. ``{"depth": "classical"}``).
    """

    synth: str = "composite"
    extra: dict[str, Any] | None = None

    def __call__(self, case: BenchCase, out: Path) -> Path:
        from insertanywhere.pipeline import InsertConfig, run_insert

        config = InsertConfig(
            video=case.video,
            object_path=case.object_path,
            placement=case.placement,
            out=out,
            synth=self.synth,  # type: ignore[arg-type]
            overwrite=True,
            **(self.extra or {}),
        )
        return Path(run_insert(config).out)


def run_case(
    case: BenchCase, outputs_dir: Path, insert: InsertFunction, models: EvalModels, reuse: bool = False
) -> dict[str, Any]:
    """Insert and evaluate one case; a failure is returned as ``{"error": ..., "traceback": ...}``.

    Args:
        case: the case.
        outputs_dir: folder receiving ``<case name>/`` output folders.
        insert: the insert function.
        models: loaded encoders for the learned metrics.
        reuse: skip the insert when the case's output already holds inserted.mp4 and report.json.
    """
    row: dict[str, Any] = {"name": case.name, "kind": case.kind, "folder": str(case.folder)}
    out = outputs_dir / case.name
    try:
        start = time.perf_counter()
        if reuse and (out / "inserted.mp4").is_file() and (out / "report.json").is_file():
            row["reused_output"] = True
        else:
            out = insert(case, out)
        row["seconds_insert"] = time.perf_counter() - start
        start = time.perf_counter()
        inputs = EvalInputs(
            gt=case.gt.folder if case.gt is not None else None,
            input_video=case.video,
            reference=case.object_path,
            gt_track=case.gt_track,
        )
        row["eval"] = evaluate_output(out, inputs, models)
        row["seconds_eval"] = time.perf_counter() - start
        row["out"] = str(out)
    except Exception as err:  # recorded in both reports and the CLI's exit code, never hidden
        row["error"] = f"{err.__class__.__name__}: {err}"
        row["traceback"] = traceback.format_exc()
    return row


def run_bench(
    cases_dir: str | os.PathLike[str],
    report_dir: str | os.PathLike[str],
    insert: InsertFunction | None = None,
    models: EvalModels | None = None,
    overwrite: bool = False,
    reuse: bool = False,
    progress: Progress = null_progress,
) -> dict[str, Any]:
    """Run every case of ``cases_dir`` and write the report into ``report_dir``.

    Args:
        cases_dir: folder of case subfolders (see ``insertanywhere.eval.cases``).
        report_dir: output folder (report.md, report.json, plots/, outputs/<case>/).
        insert: the insert function; defaults to the composite pipeline.
        models: loaded encoders; None skips the learned metrics with a note.
        overwrite: allow a non-empty report folder not made by this tool.
        reuse: reuse existing case outputs (rerun only the metrics).
        progress: progress callback ("bench", done, total).

    Returns:
        The report dict (also in report.json).
    """
    from insertanywhere.eval.plots import write_plots
    from insertanywhere.eval.report import summarise, write_markdown

    cases = discover_cases(cases_dir)
    report_path = prepare_output_dir(report_dir, overwrite=overwrite, inputs=(Path(cases_dir),))
    outputs_dir = report_path / "outputs"
    outputs_dir.mkdir(exist_ok=True)
    insert = insert or PipelineInsert()
    models = models or EvalModels(notes=["learned metrics skipped: no --clip / --dino model given"])
    rows: list[dict[str, Any]] = []
    progress("bench", 0, len(cases))
    for done, case in enumerate(cases, start=1):
        rows.append(run_case(case, outputs_dir, insert, models, reuse=reuse))
        progress("bench", done, len(cases))
    report = json_safe(
        {
            "cases_dir": str(Path(cases_dir).resolve()),
            "models": {
                "clip": models.clip.name if models.clip else None,
                "dino": models.dino.name if models.dino else None,
            },
            "notes": models.notes,
            "summary": summarise(rows),
            "cases": rows,
        }
    )
    report["plots"] = write_plots(report, report_path / "plots")
    write_json_atomic(report_path / "report.json", report)
    write_markdown(report, report_path / "report.md")
    return report
