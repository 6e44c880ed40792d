"""The sam2 dynamic backend with a tiny randomly initialised Sam2VideoModel built from a config (nothing downloads).

Random weights segment nothing in particular: these tests check shapes, dtypes, determinism, that the
prompts come from the residual components, the loader and the validation errors, not accuracy.
"""

import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
if not hasattr(transformers, "Sam2VideoModel"):
    pytest.skip("transformers without Sam2VideoModel", allow_module_level=True)

from insertanywhere.errors import InputError, MissingDependencyError  # noqa: E402
from insertanywhere.models.sam2 import (  # noqa: E402
    Sam2Settings,
    Sam2VideoSegmenter,
    load_sam2,
    mask_components,
    uncovered_components,
)
from insertanywhere.scene import ReconstructConfig  # noqa: E402
from insertanywhere.scene.registry import make_dynamic_backend  # noqa: E402
from insertanywhere.scene.segment_sam2 import Sam2Dynamic  # noqa: E402
from insertanywhere.testing import moving_squares, tiny_sam2_config  # noqa: E402

pytestmark = pytest.mark.torch

N_FRAMES, HEIGHT, WIDTH = 6, 48, 64


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models run faster on one thread than on two contended ones (as tests/train/conftest.py)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_sam2_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sam2_tiny")
    torch.manual_seed(0)
    transformers.Sam2VideoModel(tiny_sam2_config()).save_pretrained(folder)
    return folder


def moving_square_clip():
    """6 frames 64x48: a bright square moving right from frame 0, a second one entering at frame 3;
    the coarse (residual-like) masks are the squares' pixels."""
    return moving_squares(N_FRAMES, HEIGHT, WIDTH)


def test_components_boxes_points_and_coverage():
    mask = np.zeros((HEIGHT, WIDTH), bool)
    mask[10:22, 6:18] = True
    mask[30:33, 50:53] = True  # 9 pixels: below min_area
    components = mask_components(mask, min_area=10)
    assert len(components) == 1
    assert components[0].box == (6, 10, 17, 21)
    x, y = components[0].point
    assert mask[y, x] and 10 <= x <= 14 and 14 <= y <= 17  # the most interior pixel
    tracked = np.zeros_like(mask)
    assert len(uncovered_components(mask, tracked, 10, 0.5)) == 1
    tracked[10:22, 6:14] = True  # 8 of 12 columns: covered
    assert uncovered_components(mask, tracked, 10, 0.5) == []


def test_loader_and_segmenter_on_moving_squares(tiny_sam2_folder):
    model = load_sam2(str(tiny_sam2_folder))
    assert not model.training
    frames, coarse = moving_square_clip()
    segmenter = Sam2VideoSegmenter(model)
    result = segmenter(frames, coarse)
    assert result.masks.shape == (N_FRAMES, HEIGHT, WIDTH) and result.masks.dtype == bool
    # Every prompt is a residual component of its frame: its box and an interior point.
    assert result.prompts, "the first frame's component must prompt SAM 2"
    first = result.prompts[0]
    assert (first.frame, first.object_id, first.box, first.reprompt) == (0, 1, (6, 10, 17, 21), False)
    for prompt in result.prompts:
        boxes = [c.box for c in mask_components(coarse[prompt.frame], 1)]
        assert prompt.box in boxes
        assert coarse[prompt.frame, prompt.point[1], prompt.point[0]]
        assert 1 <= prompt.object_id <= Sam2Settings().max_objects
    # The square entering at frame 3 gets a prompt there unless a tracked mask already covers it.
    late = [p for p in result.prompts if p.box == (44, 30, 55, 41)]
    if late:
        assert late[0].frame == 3
    else:
        assert result.masks[3, 30:42, 44:56].mean() >= 0.5
    again = segmenter(frames, coarse)
    np.testing.assert_array_equal(result.masks, again.masks)
    assert again.prompts == result.prompts


def test_no_residual_no_model_run(tiny_sam2_folder):
    frames, _ = moving_square_clip()
    result = Sam2VideoSegmenter(object())(frames, np.zeros((N_FRAMES, HEIGHT, WIDTH), bool))  # model never used
    assert result.prompts == [] and not result.masks.any() and result.masks.shape == (N_FRAMES, HEIGHT, WIDTH)


def test_registry_backend(tiny_sam2_folder):
    frames, coarse = moving_square_clip()
    config = ReconstructConfig(dynamic="sam2", model_path=str(tiny_sam2_folder)).validate()
    backend = make_dynamic_backend(config)
    assert isinstance(backend, Sam2Dynamic) and backend.name == "sam2"
    masks = backend(list(frames), np.zeros(coarse.shape, np.float32), coarse)
    assert masks.shape == coarse.shape and masks.dtype == bool
    assert backend.last_prompts and backend.last_prompts[0].frame == 0


def test_validation_and_loader_errors(tmp_path, monkeypatch):
    with pytest.raises(InputError, match="sam2 backend needs --model-path"):
        ReconstructConfig(dynamic="sam2").validate()
    with pytest.raises(InputError, match="cannot serve"):
        ReconstructConfig(dynamic="sam2", depth="depth-anything-v2", model_path=str(tmp_path)).validate()
    with pytest.raises(InputError, match="cannot serve"):
        ReconstructConfig(dynamic="sam2", flow="raft", model_path=str(tmp_path)).validate()
    assert ReconstructConfig(dynamic="sam2", model_path=str(tmp_path)).validate().backends["dynamic"] == "sam2"
    with pytest.raises(MissingDependencyError, match="--model-path"):
        load_sam2(None)
    with pytest.raises(MissingDependencyError) as info:
        load_sam2(str(tmp_path / "nowhere"))
    assert "\n" not in str(info.value) and "no SAM 2 weights" in str(info.value)
    monkeypatch.setitem(sys.modules, "transformers", None)  # import transformers -> ImportError
    with pytest.raises(MissingDependencyError, match=r"insertanywhere\[learned\]") as info:
        load_sam2(str(tmp_path))
    assert "\n" not in str(info.value)


def test_image_only_checkpoint_is_refused(tiny_sam2_folder, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    shutil.copy(tiny_sam2_folder / "config.json", tmp_path / "config.json")
    weights = load_file(tiny_sam2_folder / "model.safetensors")
    kept = {k: v for k, v in weights.items() if not k.startswith("memory_attention.")}
    save_file(kept, tmp_path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(MissingDependencyError, match="no video memory weights"):
        load_sam2(str(tmp_path))
