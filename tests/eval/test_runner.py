"""The bench runner, report and plots with a fake insert that copies the GT (metrics known)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import copy_gt_insert

from insertanywhere.errors import InputError
from insertanywhere.eval.build_cases import build_real_cases, seven_scenes_track
from insertanywhere.eval.cases import BenchCase, discover_cases
from insertanywhere.eval.runner import run_bench

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def test_bench_with_a_fake_insert(gt_case: Path, tmp_path: Path) -> None:
    cases = tmp_path / "cases"
    shutil.copytree(gt_case, cases / "good")
    shutil.copytree(gt_case, cases / "broken")

    def fake_insert(case: BenchCase, out: Path) -> Path:
        if case.name == "broken":
            raise RuntimeError("the insert crashed")
        return copy_gt_insert(case, out)

    report = run_bench(cases, tmp_path / "report", insert=fake_insert)
    rows = {row["name"]: row for row in report["cases"]}
    assert rows["good"]["eval"]["gt"]["masks"]["J_mean"] == 1.0
    assert rows["broken"]["error"] == "RuntimeError: the insert crashed"
    assert report["summary"]["n_failed"] == 1
    assert report["summary"]["all"]["J"] == 1.0
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "| good | synthetic | 1.000 | 1.000 |" in markdown
    assert "FAILED: RuntimeError: the insert crashed" in markdown
    plots = {Path(p).name for p in report["plots"]}
    assert {"metrics.png", "good_j.png", "good_trajectory.png"} <= plots
    for name in plots:
        assert (tmp_path / "report" / "plots" / name).stat().st_size > 1000
    assert json.loads((tmp_path / "report" / "report.json").read_text())["summary"]["n_cases"] == 2


def test_discover_cases_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such cases folder"):
        discover_cases(tmp_path / "missing")
    with pytest.raises(InputError, match="no case subfolders"):
        discover_cases(tmp_path)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "placement.json").write_text('{"frame": 0, "box": [0, 0, 10, 10]}')
    with pytest.raises(InputError, match="no video"):
        discover_cases(tmp_path)


@pytest.mark.skipif(not (DATA / "placements.json").is_file(), reason="shared data not present")
def test_build_real_cases_from_shared_data(tmp_path: Path) -> None:
    written = build_real_cases(tmp_path, DATA)
    names = {p.name for p in written}
    assert "cups_table_static_clean" in names and "7scenes_redkitchen_clean" in names
    cases = {c.name: c for c in discover_cases(tmp_path)}
    assert cases["cups_table_static_occlusion"].placement.box == (740.0, 420.0, 820.0, 530.0)
    assert cases["7scenes_redkitchen_clean"].kind == "real+cameras"
    # the README's check: the contact point projects near (480, 380) in the first frame and (381, 347) in the last
    track = seven_scenes_track(DATA / "sequences_gt" / "7scenes_redkitchen_table")
    first, last = track.frames[0], track.frames[-1]
    pixel_first, _ = first.camera.project(first.world_from_object[:3, 3][None])
    pixel_last, _ = last.camera.project(last.world_from_object[:3, 3][None])
    assert abs(pixel_first[0, 0] - 480) < 3 and abs(pixel_first[0, 1] - 380) < 3
    assert abs(pixel_last[0, 0] - 381) < 3 and abs(pixel_last[0, 1] - 347) < 3
