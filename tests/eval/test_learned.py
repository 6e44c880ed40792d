"""CLIP-I / DINO-I and the VBench consistencies with tiny random CLIP and DINOv2 models saved to a
folder and loaded back through the loaders (the local-folder path; nothing is downloaded)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from conftest import copy_gt_insert

from insertanywhere.errors import InputError, MissingDependencyError
from insertanywhere.eval.cases import read_case
from insertanywhere.eval.evaluate import EvalInputs, evaluate_output, load_eval_models
from insertanywhere.eval.subject import (
    evenly_spaced_frames,
    frame_object_view,
    reference_view,
    subject_similarity,
)
from insertanywhere.eval.vbench import background_consistency, subject_consistency
from insertanywhere.models.clip import load_clip_encoder
from insertanywhere.models.dino import load_dino_encoder

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(0)
    config = CLIPConfig(
        text_config={
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_attention_heads": 4,
            "num_hidden_layers": 2,
            "vocab_size": 99,
            "max_position_embeddings": 16,
        },
        vision_config={
            "image_size": 32,
            "patch_size": 8,
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_attention_heads": 4,
            "num_hidden_layers": 2,
        },
        projection_dim=16,
    )
    folder = tmp_path_factory.mktemp("models") / "tiny-clip"
    CLIPModel(config).eval().save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_dino(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import Dinov2Config, Dinov2Model

    torch.manual_seed(0)
    config = Dinov2Config(
        image_size=32, patch_size=16, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37
    )
    folder = tmp_path_factory.mktemp("models") / "tiny-dinov2"
    Dinov2Model(config).eval().save_pretrained(folder)
    return folder


def _images(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(40, 56, 3), dtype=np.uint8) for _ in range(count)]


def test_loaders_embed_unit_vectors_deterministically(tiny_clip: Path, tiny_dino: Path) -> None:
    clip = load_clip_encoder(tiny_clip)
    dino = load_dino_encoder(tiny_dino)
    images = _images(3)
    clip_features = clip.embed(images)
    dino_features = dino.embed(images, resize="shorter")
    assert clip_features.shape == (3, 16) and dino_features.shape == (3, 32)
    assert np.allclose(np.linalg.norm(clip_features, axis=1), 1.0, atol=1e-5)
    assert np.allclose(np.linalg.norm(dino_features, axis=1), 1.0, atol=1e-5)
    assert np.allclose(clip.embed(images), clip_features, atol=1e-6)
    assert clip.name == str(tiny_clip) and dino.family == "dino"
    assert not np.allclose(clip_features[0], clip_features[1])


def test_subject_similarity_identical_object_is_one(tiny_clip: Path, tiny_dino: Path) -> None:
    rng = np.random.default_rng(1)
    rgba = np.zeros((20, 12, 4), np.uint8)
    rgba[..., :3] = rng.integers(0, 256, size=(20, 12, 3))
    rgba[..., 3] = 255
    frame = rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
    frame[10:30, 30:42] = rgba[..., :3]
    mask = np.zeros((48, 64), bool)
    mask[10:30, 30:42] = True
    assert np.array_equal(reference_view(rgba), frame_object_view(frame, mask))
    encoders = {"clip_i": load_clip_encoder(tiny_clip), "dino_i": load_dino_encoder(tiny_dino)}
    hidden = np.zeros_like(mask)
    scores = subject_similarity(rgba, [(0, frame, mask), (5, frame, hidden)], encoders).summary()
    assert scores["clip_i"] == pytest.approx(1.0, abs=1e-5)
    assert scores["dino_i"] == pytest.approx(1.0, abs=1e-5)
    assert scores["skipped_frames"] == [5]
    assert scores["models"]["clip_i"] == str(tiny_clip)


def test_vbench_consistency_of_a_constant_clip_is_one(tiny_clip: Path, tiny_dino: Path) -> None:
    frame = _images(1)[0]
    assert subject_consistency([frame] * 4, load_dino_encoder(tiny_dino)) == pytest.approx(1.0, abs=1e-5)
    assert background_consistency([frame] * 4, load_clip_encoder(tiny_clip)) == pytest.approx(1.0, abs=1e-5)
    varied = background_consistency(_images(4, seed=3), load_clip_encoder(tiny_clip))
    assert varied < 1.0 - 1e-4


def test_evaluate_output_with_learned_metrics(gt_case: Path, tmp_path: Path, tiny_clip: Path, tiny_dino: Path):
    out = copy_gt_insert(read_case(gt_case), tmp_path / "out")
    models = load_eval_models(str(tiny_clip), str(tiny_dino))
    result = evaluate_output(out, EvalInputs(gt=gt_case), models, write=False)
    subject = result["subject"]
    assert subject["frames"] == evenly_spaced_frames(6)
    assert 4 in subject["skipped_frames"]  # the fully occluded frame has no object region
    assert -1.0 <= subject["clip_i"] <= 1.0 and -1.0 <= subject["dino_i"] <= 1.0
    assert 0.0 <= result["quality"]["subject_consistency"] <= 1.0
    assert result["quality"]["background_consistency_model"] == str(tiny_clip)


def test_missing_folder_and_missing_transformers_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(InputError) as missing:
        load_clip_encoder(tmp_path / "no-such-model")
    assert "\n" not in str(missing.value) and "no such CLIP model folder" in str(missing.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"config\.json"):
        load_dino_encoder(tmp_path / "empty")
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(MissingDependencyError) as no_transformers:
        load_dino_encoder("facebook/dinov2-base")
    assert "\n" not in str(no_transformers.value) and "transformers" in str(no_transformers.value)
    notes = load_eval_models("openai/clip-vit-base-patch32", None).notes
    assert any(note.startswith("CLIP metrics skipped") for note in notes)
