"""The evaluation reads the real ``insertanywhere synth`` output format (and, slow, benches the pipeline on it)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import copy_gt_insert

from insertanywhere.eval.cases import read_case
from insertanywhere.eval.evaluate import EvalInputs, evaluate_output

synthetic = pytest.importorskip("insertanywhere.data.synthetic")


@pytest.fixture(scope="module")
def occluder_case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = synthetic.render_case_cached("moving_occluder", seed=0, small=True)
    folder = tmp_path_factory.mktemp("synth") / "synth_moving_occluder"
    shutil.copytree(source, folder)
    return folder


def test_synthetic_gt_case_scores_perfectly_against_itself(occluder_case: Path, tmp_path: Path) -> None:
    case = read_case(occluder_case)
    assert case.kind == "synthetic" and case.gt.fully_occluded_frames
    n_frames = case.gt.meta["n_frames"]
    assert len(case.gt.cameras) == n_frames and len(case.gt.world_from_object) == n_frames

    def copy_with_gt_track(case, out):  # the handmade helper writes its own cameras: use this case's GT instead
        import json

        out = copy_gt_insert(case, out)
        cameras = json.loads((case.folder / "gt" / "cameras.json").read_text())
        poses = json.loads((case.folder / "gt" / "object_poses.json").read_text())["frames"]
        for frame, pose in zip(cameras["frames"], poses, strict=True):
            frame["world_from_object"] = pose["world_from_object"]
        (out / "track.json").write_text(json.dumps(cameras))
        return out

    out = copy_with_gt_track(case, tmp_path / "out")
    result = evaluate_output(out, EvalInputs(gt=occluder_case), write=False)
    masks = result["gt"]["masks"]
    assert masks["J_mean"] == 1.0 and masks["F_mean"] == 1.0 and masks["J_fully_occluded"] == 1.0
    assert result["gt"]["image"]["psnr_object"] == "inf"
    assert result["gt"]["trajectory"]["contact_px_mean"] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.slow
def test_bench_cli_runs_the_pipeline_on_a_synthetic_case(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from insertanywhere.cli import app

    cases = tmp_path / "cases"
    shutil.copytree(synthetic.render_case_cached("orbit", seed=0, small=True), cases / "synth_orbit")
    result = CliRunner().invoke(app, ["bench", str(cases), "-o", str(tmp_path / "report"), "--no-learned"])
    assert result.exit_code == 0, result.output
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "| synth_orbit | synthetic |" in markdown
    assert (tmp_path / "report" / "plots" / "synth_orbit_j.png").is_file()
