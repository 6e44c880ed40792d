"""End to end: `insert` on small synthetic scenes writes the whole output-folder contract; bad inputs give one
line and exit code 2 and leave nothing that looks complete."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from insertanywhere.data.synthetic import load_synthetic_case, render_case_cached
from insertanywhere.eval.masks import jaccard
from insertanywhere.io.images import read_sequence
from insertanywhere.io.video import VideoReader, read_video
from insertanywhere.pipeline import InsertConfig, run_insert


@pytest.fixture(scope="module")
def occluder_case() -> Path:
    return render_case_cached("moving_occluder", 0, small=True)


@pytest.fixture(scope="module")
def inserted_on_truth(occluder_case: Path, tmp_path_factory: pytest.TempPathFactory):
    """The insert run on the scene's true geometry: tests the placement, occlusion and compositing stages
    apart from the reconstruction (which tests/scene checks against the same ground truth)."""
    from insertanywhere.data.gt_scene import scene_from_gt

    case = load_synthetic_case(occluder_case)
    out = tmp_path_factory.mktemp("insert-truth") / "out"
    config = InsertConfig(
        video=case.paths["background"], object_path=case.paths["object"], placement=case.placement, out=out
    )
    return case, run_insert(config, scene=scene_from_gt(case))


@pytest.fixture(scope="module")
def inserted(occluder_case: Path, tmp_path_factory: pytest.TempPathFactory):
    case = load_synthetic_case(occluder_case)
    out = tmp_path_factory.mktemp("insert") / "out"
    config = InsertConfig(
        video=case.paths["background"], object_path=case.paths["object"], placement=case.placement, out=out
    )
    return case, run_insert(config)


def test_insert_writes_the_output_folder_contract(inserted) -> None:
    case, result = inserted
    out = result.out
    for name in ("inserted.mp4", "track.json", "preview.png", "report.json", "scene/scene.json", "scene/cameras.json"):
        assert (out / name).is_file(), name
    source, output = VideoReader(case.paths["background"]).info, VideoReader(out / "inserted.mp4").info
    assert (output.width, output.height, output.fps, output.n_frames) == (
        source.width,
        source.height,
        source.fps,
        source.n_frames,
    )
    for folder in ("masks", "layers", "shadow"):
        assert len(list((out / folder).glob("*.png"))) == case.n_frames
    layer = np.asarray(Image.open(out / "layers" / "00000.png"))
    assert layer.shape == (source.height, source.width, 4)
    track = json.loads((out / "track.json").read_text())
    assert (track["width"], track["height"]) == (source.width, source.height)
    frame = track["frames"][0]
    assert set(frame) == {"index", "K", "cam_from_world", "world_from_object", "visible_fraction"}
    assert np.array(frame["world_from_object"]).shape == (4, 4)
    report = json.loads((out / "report.json").read_text())
    for key in ("inputs", "backends", "versions", "seconds", "camera_model", "warnings"):
        assert key in report


def test_insert_masks_follow_the_ground_truth_and_hide_behind_the_occluder(inserted_on_truth) -> None:
    case, result = inserted_on_truth
    masks = read_sequence(result.masks_dir, "mask")
    visible = np.array(case.visible_fraction)
    j = [jaccard(p, g) for p, g in zip(masks, case.masks, strict=True)]
    assert j[0] > 0.7  # the placement frame
    hidden = np.nonzero(visible == 0)[0]
    assert len(hidden) > 0
    assert all(masks[t].sum() <= 0.1 * case.masks[0].sum() for t in hidden)


def test_insert_leaves_the_rest_of_the_video_untouched(inserted) -> None:
    case, result = inserted
    ours, _ = read_video(result.inserted_video)
    layers = read_sequence(result.layers_dir, "rgba")
    shadows = read_sequence(result.shadow_dir, "gray")
    import cv2

    for t in range(case.n_frames):
        drawn = (layers[t][..., 3] > 0) | (shadows[t] > 0)  # every pixel the insertion may change
        touched = cv2.dilate(drawn.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        error = ours[t][~touched].astype(np.float64) - case.background[t][~touched]
        psnr = 10 * np.log10(255.0**2 / max(np.mean(error**2), 1e-12))
        assert psnr >= 42.0, (t, psnr)


def test_second_run_reuses_the_scene(inserted) -> None:
    case, result = inserted
    scene_json = result.out / "scene" / "scene.json"
    before = scene_json.stat().st_mtime_ns
    config = InsertConfig(
        video=case.paths["background"], object_path=case.paths["object"], placement=case.placement, out=result.out
    )
    again = run_insert(config)
    assert scene_json.stat().st_mtime_ns == before
    assert again.report["seconds"]["reconstruct"] < result.report["seconds"]["reconstruct"]


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "insertanywhere.cli", *map(str, args)], capture_output=True, text=True, timeout=300
    )


def _assert_one_line_refusal(run: subprocess.CompletedProcess[str], out: Path, words: str) -> None:
    assert run.returncode == 2, run.stderr
    lines = [line for line in run.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in run.stderr, run.stderr
    assert words in lines[0].lower(), lines[0]
    assert not (out / "report.json").exists() and not (out / "inserted.mp4").exists()


@pytest.mark.parametrize(
    ("box", "frame", "words"),
    [("-5,10,40,60", 0, "not inside"), ("10,10,40,60", 99, "out of range"), ("40,10,20,60", 0, "empty")],
)
def test_bad_placements_are_refused(occluder_case: Path, tmp_path: Path, box: str, frame: int, words: str) -> None:
    out = tmp_path / "out"
    run = _cli(
        "insert",
        occluder_case / "background.mp4",
        "--object",
        occluder_case / "object.png",
        "--box",
        box,
        "--frame",
        frame,
        "-o",
        out,
    )
    _assert_one_line_refusal(run, out, words)


def test_object_without_alpha_is_refused(occluder_case: Path, tmp_path: Path) -> None:
    opaque = tmp_path / "opaque.png"
    Image.open(occluder_case / "object.png").convert("RGB").save(opaque)
    out = tmp_path / "out"
    run = _cli(
        "insert",
        occluder_case / "background.mp4",
        "--object",
        opaque,
        "--placement",
        occluder_case / "placement.json",
        "-o",
        out,
    )
    _assert_one_line_refusal(run, out, "alpha")


def test_unreadable_video_and_mesh_are_refused(occluder_case: Path, tmp_path: Path) -> None:
    fake_video = tmp_path / "clip.mp4"
    fake_video.write_text("not a video")
    out = tmp_path / "out"
    run = _cli("insert", fake_video, "--object", occluder_case / "object.png", "--box", "1,1,9,9", "-o", out)
    _assert_one_line_refusal(run, out, "video")
    fake_mesh = tmp_path / "thing.glb"
    fake_mesh.write_bytes(b"glTF garbage")
    run = _cli(
        "insert",
        occluder_case / "background.mp4",
        "--object",
        fake_mesh,
        "--placement",
        occluder_case / "placement.json",
        "-o",
        out,
    )
    _assert_one_line_refusal(run, out, "mesh")


def test_placement_on_the_sky_is_refused(tmp_path: Path) -> None:
    case = render_case_cached("static", 0, small=True)
    meta = json.loads((case / "meta.json").read_text())
    width = meta["width"]
    out = tmp_path / "out"
    # The top rows of the static scene: a box whose bottom stands on nothing the camera can put it on.
    run = _cli(
        "insert",
        case / "background.mp4",
        "--object",
        case / "object.png",
        "--box",
        f"{width // 2 - 6},0,{width // 2 + 6},6",
        "-o",
        out,
    )
    _assert_one_line_refusal(run, out, "box")


@pytest.mark.torch
def test_vace_backend_end_to_end_with_a_tiny_local_model(occluder_case: Path, tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("diffusers")
    from insertanywhere.models.wan_vace import tiny_wan_vace_pipeline
    from insertanywhere.synth.vace import VaceConfig, default_prompt

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = tmp_path / "tiny-vace"
    tiny_wan_vace_pipeline(seed=0).save_pretrained(model)
    case = load_synthetic_case(occluder_case)
    vace = VaceConfig(
        model=str(model),
        allow_cpu=True,
        steps=1,
        window=5,
        overlap=2,
        max_sequence_length=8,
        dtype="fp32",
        max_area=64 * 96,
    )
    config = InsertConfig(
        video=case.paths["background"],
        object_path=case.paths["object"],
        placement=case.placement,
        out=tmp_path / "out",
        synth="vace",
        vace=vace,
    )
    result = run_insert(config)
    ours, _ = read_video(result.inserted_video)
    assert ours.shape == case.background.shape
    assert result.report["backends"]["synth"] == "vace"
    settings = result.report["vace"]  # what decided the run, with the device it ran on resolved
    assert settings["device"] == "cpu" and settings["model"] == str(model) and settings["steps"] == 1
    assert settings["prompt"] == default_prompt(vace) and settings["seed"] == 0


@pytest.mark.torch
def test_learned_depth_backend_through_the_insert_command(occluder_case: Path, tmp_path: Path) -> None:
    """`insert --depth depth-anything-v2 --model-path DIR --device cpu`: the options reach the reconstruction
    (a tiny random Depth Anything, nothing downloads) and the report says which backend ran where."""
    pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    from transformers import DepthAnythingForDepthEstimation

    from insertanywhere.testing import tiny_depth_anything_config

    torch.manual_seed(0)
    model = tmp_path / "tiny-depth-anything"
    DepthAnythingForDepthEstimation(tiny_depth_anything_config()).save_pretrained(model)
    out = tmp_path / "out"
    common = ["--object", occluder_case / "object.png", "--placement", occluder_case / "placement.json", "-o", out]
    video = occluder_case / "background.mp4"
    run = _cli("masks", video, *common, "--depth", "depth-anything-v2", "--model-path", model, "--device", "cpu")
    assert run.returncode == 0, run.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["backends"]["depth"] == "depth-anything-v2" and report["backends"]["device"] == "cpu"
    scene = json.loads((out / "scene" / "scene.json").read_text())
    assert scene["prior"] == "depth-anything-v2" and scene["backends"]["device"] == "cpu"
    assert len(scene["prior_scales"]) == VideoReader(video).info.n_frames


@pytest.mark.torch
def test_learned_backend_options_are_checked_before_any_stage(occluder_case: Path, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    out = tmp_path / "out"
    common = ["--object", occluder_case / "object.png", "--placement", occluder_case / "placement.json", "-o", out]
    video = occluder_case / "background.mp4"
    _assert_one_line_refusal(_cli("insert", video, *common, "--flow", "raft"), out, "needs --model-path")
    _assert_one_line_refusal(_cli("masks", video, *common, "--facing", "sideways"), out, "choose fixed or camera")
    _assert_one_line_refusal(_cli("masks", video, *common, "--light", "north"), out, "light")
    learned = ["--depth", "depth-anything-v2", "--model-path", tmp_path]
    _assert_one_line_refusal(_cli("insert", video, *common, *learned, "--device", "gpu"), out, "choose auto, cpu")
    if not torch.cuda.is_available():
        _assert_one_line_refusal(_cli("insert", video, *common, *learned, "--device", "cuda"), out, "no cuda gpu")
    assert not (out / "scene").exists()
