"""``evaluate_output`` and ``insertanywhere eval`` on a hand-made GT case with known answers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import FULLY, N_FRAMES, PARTLY, copy_gt_insert

from insertanywhere.errors import InputError
from insertanywhere.eval.cases import read_case, read_gt_case
from insertanywhere.eval.evaluate import EvalInputs, evaluate_output
from insertanywhere.eval.masks import jaccard
from insertanywhere.io.images import read_sequence


def test_read_gt_case(gt_case: Path) -> None:
    gt = read_gt_case(gt_case / "gt")
    assert gt.folder == gt_case
    assert gt.partly_occluded_frames == [PARTLY] and gt.fully_occluded_frames == [FULLY]
    assert len(gt.cameras) == N_FRAMES and gt.input_video == gt_case / "background.mp4"
    case = read_case(gt_case)
    assert case.kind == "synthetic" and case.video.name == "background.mp4"
    with pytest.raises(InputError):
        read_gt_case(gt_case.parent)


def test_perfect_output_scores_perfectly(gt_case: Path, tmp_path: Path) -> None:
    out = copy_gt_insert(read_case(gt_case), tmp_path / "out")
    result = evaluate_output(out, EvalInputs(gt=gt_case))
    gt = result["gt"]
    assert gt["masks"]["J_mean"] == 1.0 and gt["masks"]["F_mean"] == 1.0
    assert gt["masks"]["J_partly_occluded"] == 1.0
    assert gt["image"]["psnr_object"] == "inf"  # the same encoded file decodes to the same pixels
    assert gt["image"]["ssim_object"] == pytest.approx(1.0)
    assert gt["image"]["psnr_shadow"] == "inf"
    assert gt["per_frame"]["psnr_object"][FULLY] is None  # object hidden: undefined, not 0
    assert gt["trajectory"]["rotation_error_deg_mean"] == pytest.approx(0.0, abs=1e-6)
    assert gt["trajectory"]["ate_rmse"] == pytest.approx(0.0, abs=1e-9)
    assert gt["trajectory"]["contact_px_mean"] == pytest.approx(0.0, abs=1e-9)
    # input taken from the GT case: the background is re-encoded once on each side, so high but finite
    assert 25.0 < result["background"]["psnr_background"] < math.inf
    assert result["temporal"]["flow_on"] == "input"
    assert result["temporal"]["warping_error"] == pytest.approx(result["temporal"]["gt_video"]["warping_error"])
    assert 0.9 < result["quality"]["motion_smoothness_dis"] <= 1.0
    assert "subject" not in result and any("learned" in note for note in result["notes"])
    written = json.loads((out / "eval.json").read_text())
    assert written["gt"]["masks"] == gt["masks"]


def test_shifted_masks_give_the_known_j(gt_case: Path, tmp_path: Path) -> None:
    case = read_case(gt_case)
    out = copy_gt_insert(case, tmp_path / "out", mask_shift_px=3)
    result = evaluate_output(out, EvalInputs(gt=gt_case), write=False)
    gt_masks = read_sequence(case.gt.masks_dir, "mask")
    expected = [jaccard(np.roll(m, 3, axis=1), m) for m in gt_masks]
    assert result["gt"]["per_frame"]["J"] == pytest.approx(expected)
    assert result["gt"]["per_frame"]["J"][0] == pytest.approx((12 - 3) * 16 / ((12 + 3) * 16))
    assert result["gt"]["per_frame"]["J"][FULLY] == 1.0  # both empty


def test_eval_refuses_a_folder_without_outputs(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"inserted\.mp4"):
        evaluate_output(tmp_path)


def test_eval_cli_writes_json(gt_case: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from insertanywhere.cli import app

    out = copy_gt_insert(read_case(gt_case), tmp_path / "out")
    result = CliRunner().invoke(app, ["eval", str(out), "--gt", str(gt_case), "--no-learned"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout[result.stdout.index("{") :])
    assert printed["gt"]["masks"]["J_mean"] == 1.0
    assert (out / "eval.json").is_file()


def test_eval_cli_bad_folder_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import sys

    from insertanywhere.cli import main

    monkeypatch.setattr(sys, "argv", ["insertanywhere", "eval", str(tmp_path / "nothing")])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err
