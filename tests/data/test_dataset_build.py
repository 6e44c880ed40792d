"""dataset build end to end: synthetic-layout and ROSE-layout triplets, broken triplets, resume, the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from dataset_fixtures import write_tiny_triplet

from insertanywhere.data.dataset_manifest import load_manifest
from insertanywhere.data.dataset_reference import ClassicalEmbedder, carries_background
from insertanywhere.data.rose import (
    DatasetBuildConfig,
    build_dataset,
    find_rose_triplets,
    is_binary_mask_frame,
    mask_from_frame,
)
from insertanywhere.errors import InputError
from insertanywhere.io.images import read_png, read_sequence
from insertanywhere.io.video import read_video, write_video


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("triplets")
    for seed in range(2):
        write_tiny_triplet(root / f"case{seed}", seed=seed)
    return root


def _rose_env(root: Path, case: Path) -> Path:
    """ROSE layout from a synthetic-layout triplet: Env7/Env7_{Unedited,Edited,Masked}/clip.mp4, plus a clip
    present only in Unedited (a broken triplet)."""
    env = root / "Env7"
    for role in ("Unedited", "Edited", "Masked"):
        (env / f"Env7_{role}").mkdir(parents=True)
    shutil.copy(case / "gt" / "inserted.mp4", env / "Env7_Unedited" / "clip.mp4")
    shutil.copy(case / "background.mp4", env / "Env7_Edited" / "clip.mp4")
    masks = np.stack(read_sequence(case / "gt" / "masks", "mask"))
    write_video(env / "Env7_Masked" / "clip.mp4", np.repeat(masks[..., None], 3, axis=3).astype(np.uint8) * 255, 10)
    shutil.copy(case / "gt" / "inserted.mp4", env / "Env7_Unedited" / "lonely.mp4")
    return env


def test_builds_samples_from_synthetic_triplets(sources, tmp_path):
    report = build_dataset(sources, tmp_path / "ds", ClassicalEmbedder())
    assert not report.broken
    samples = load_manifest(tmp_path / "ds")
    assert [s.id for s in samples] == ["synthetic__case0", "synthetic__case1"]
    for sample in samples:
        source, _ = read_video(sample.path(tmp_path / "ds", "source"))
        target, _ = read_video(sample.path(tmp_path / "ds", "target"))
        masks = np.stack(read_sequence(sample.path(tmp_path / "ds", "mask"), "mask"))
        optics = np.stack(read_sequence(sample.path(tmp_path / "ds", "optics_mask"), "mask"))
        assert source.shape == target.shape == (9, 64, 96, 3)
        assert masks.shape == optics.shape == (9, 64, 96)
        assert (optics | ~masks).all(), "the optics mask contains the object mask"
        case = sources / f"case{sample.id[-1]}"
        shadow = np.stack(read_sequence(case / "gt" / "shadow", "gray")) >= 26  # matte >= 0.1
        recall = (optics & shadow).sum() / shadow.sum()
        assert recall > 0.9, f"recall of GT shadow pixels {recall:.3f}"
        # Inside the object the target shows the object, outside the extended mask it equals the source.
        outside = ~optics
        assert np.abs(target.astype(int) - source.astype(int))[outside].mean() < 3
        reference = read_png(sample.path(tmp_path / "ds", "reference"), "rgba")
        assert reference.shape[2] == 4 and not carries_background(reference)
        assert sample.prompt == "a box" and sample.optics_extra_fraction > 0
    record = json.loads((tmp_path / "ds" / "samples" / "synthetic__case0" / "sample.json").read_text())
    assert {v["origin"] for v in record["reference_candidates"]} >= {"object.png", "object_texture.png"}


def test_rose_layout_and_broken_triplets_are_reported(sources, tmp_path):
    src = tmp_path / "rose"
    _rose_env(src, sources / "case0")
    # A truncated mask video: the triplet is broken, the build goes on.
    env2 = _rose_env(tmp_path / "rose2", sources / "case1")
    shutil.move(str(env2), str(src / "Env8"))
    for folder in (src / "Env8").iterdir():
        folder.rename(folder.with_name(folder.name.replace("Env7", "Env8")))
    bad_mask = src / "Env8" / "Env8_Masked" / "clip.mp4"
    write_video(bad_mask, np.zeros((5, 64, 96, 3), np.uint8), 10)
    triplets, _ = find_rose_triplets(src)
    assert [t.id for t in triplets] == ["Env7__clip", "Env8__clip"]
    assert triplets[0].with_object.parent.name == "Env7_Unedited"
    assert triplets[0].without_object.parent.name == "Env7_Edited"
    report = build_dataset(src, tmp_path / "ds", ClassicalEmbedder())
    assert [s.id for s in report.samples] == ["Env7__clip"]
    reasons = {b["id"]: b["reason"] for b in report.broken}
    assert "missing in edited, masked" in reasons["Env7__lonely"]
    assert "frame count" in reasons["Env8__clip"]
    lines = (tmp_path / "ds" / "broken.jsonl").read_text().splitlines()
    assert len(lines) == 3
    assert report.samples[0].origin == "rose"


def test_references_without_crops_come_from_the_renders(sources, tmp_path):
    config = DatasetBuildConfig(crop_candidates=False)
    report = build_dataset(sources, tmp_path / "ds", ClassicalEmbedder(), config)
    assert {(s.reference_kind, s.reference_origin) for s in report.samples} == {("render", "object.png")}


def test_mask_clip_may_be_a_mask_or_a_masked_video(sources):
    target, _ = read_video(sources / "case0" / "gt" / "inserted.mp4")
    masks = np.stack(read_sequence(sources / "case0" / "gt" / "masks", "mask"))
    binary = np.repeat(masks[0][..., None], 3, axis=2).astype(np.uint8) * 255
    assert is_binary_mask_frame(binary)
    np.testing.assert_array_equal(mask_from_frame(binary, target[0]), masks[0])
    masked_video = np.where(masks[0][..., None], np.uint8(0), target[0])  # the object's region blacked out
    assert not is_binary_mask_frame(masked_video)
    found = mask_from_frame(masked_video, target[0])
    assert (found & masks[0]).sum() / (found | masks[0]).sum() > 0.95


def test_rerun_reuses_finished_samples(sources, tmp_path):
    first = build_dataset(sources, tmp_path / "ds", ClassicalEmbedder())
    second = build_dataset(sources, tmp_path / "ds", ClassicalEmbedder())
    assert second.reused == 2 and [s.id for s in second.samples] == [s.id for s in first.samples]


def test_no_triplets_is_one_line_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no removal triplets"):
        build_dataset(tmp_path / "empty", tmp_path / "ds", ClassicalEmbedder())


def test_cli_dataset_build(sources, tmp_path):
    from typer.testing import CliRunner

    from insertanywhere.cli import app

    result = CliRunner().invoke(app, ["dataset", "build", str(sources), "-o", str(tmp_path / "ds"), "--crops", "2"])
    assert result.exit_code == 0, result.output
    assert "2 samples" in result.output
    assert len(load_manifest(tmp_path / "ds")) == 2
