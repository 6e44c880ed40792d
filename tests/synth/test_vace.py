"""The VACE backend end to end on the CPU with tiny random Wan2.1-VACE components (nothing downloaded)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from insertanywhere.errors import InputError, UserError  # noqa: E402
from insertanywhere.models.wan_vace import tiny_wan_vace_pipeline  # noqa: E402
from insertanywhere.synth.vace import VaceConfig, default_prompt, preflight_vace, synthesize_vace  # noqa: E402
from insertanywhere.synth.vace_region import generation_region, reference_on_white  # noqa: E402
from insertanywhere.testing import tiny_insertion_clip as tiny_clip  # noqa: E402

pytestmark = pytest.mark.torch


def tiny_config(**overrides: Any) -> VaceConfig:
    settings = {
        "steps": 2,
        "window": 9,
        "overlap": 4,
        "shadow_band_px": 3,
        "feather_px": 2.0,
        "max_sequence_length": 16,
    }
    settings.update(overrides)
    return VaceConfig(**settings)


@pytest.fixture(scope="module")
def pipeline() -> Any:
    return tiny_wan_vace_pipeline(seed=0)


@pytest.fixture(scope="module")
def clip() -> dict[str, np.ndarray]:
    return tiny_clip(n_frames=5, height=16, width=32)


@pytest.fixture(scope="module")
def base_output(pipeline: Any, clip: dict[str, np.ndarray]) -> np.ndarray:
    """The clip synthesised once with the default tiny settings (seed 0)."""
    return synthesize_vace(**clip, config=tiny_config(), pipeline=pipeline)


def test_synthesize_changes_only_the_generated_region(clip: dict, base_output: np.ndarray) -> None:
    config = tiny_config()
    source = clip["source_frames"]
    assert base_output.shape == source.shape and base_output.dtype == np.uint8
    region = generation_region(clip["object_masks"], clip["shadow_mattes"], config.shadow_band_px)
    changed = (base_output != source).any(axis=-1)
    assert not changed[~region].any(), "pixels outside the mask + shadow band must be the input's, bit for bit"
    for t in range(1, source.shape[0]):
        # The random model redraws the object region: most of its pixels move away from both input and composite.
        inside = clip["object_masks"][t]
        assert changed[t][inside].mean() > 0.9
        assert (base_output[t][inside] != clip["control_frames"][t][inside]).any(axis=-1).mean() > 0.5


def test_first_frame_is_the_composited_anchor_without_an_anchor_model(clip: dict, base_output: np.ndarray) -> None:
    mask0 = clip["object_masks"][0]
    assert np.array_equal(base_output[0][mask0], clip["control_frames"][0][mask0])


def test_same_seed_same_video_other_seed_other_video(pipeline: Any, clip: dict, base_output: np.ndarray) -> None:
    again = synthesize_vace(**clip, config=tiny_config(seed=0), pipeline=pipeline)
    other = synthesize_vace(**clip, config=tiny_config(seed=1), pipeline=pipeline)
    assert np.array_equal(base_output, again)
    assert not np.array_equal(base_output, other)


def test_prompt_changes_the_video(pipeline: Any, clip: dict, base_output: np.ndarray) -> None:
    prompted = synthesize_vace(**clip, config=tiny_config(prompt="a blue cup"), pipeline=pipeline)
    assert not np.array_equal(base_output, prompted)


def test_conditions_mask_white_region_black_anchor_and_reference_on_white(pipeline: Any, clip: dict) -> None:
    calls: list[dict] = []
    spy = PipelineSpy(pipeline, calls)
    synthesize_vace(**clip, config=tiny_config(control_hint=False), pipeline=spy)
    (call,) = calls
    masks = np.stack([np.asarray(m) for m in call["mask"]])
    video = np.stack([np.asarray(v) for v in call["video"]])
    assert masks.shape == (5, 16, 32)
    assert not masks[0].any(), "frame 0 is the anchor, given as known"
    region = generation_region(clip["object_masks"], clip["shadow_mattes"], 3)
    assert np.array_equal(masks[1:] == 255, region[1:])
    assert np.all(video[1:][region[1:]] == 127), "without the control hint the region is VACE's gray"
    assert np.array_equal(video[1:][~region[1:]], clip["source_frames"][1:][~region[1:]])
    (reference,) = call["reference_images"]
    assert np.array_equal(np.asarray(reference), reference_on_white(clip["reference_rgba"]))


def test_long_clip_runs_in_windows_conditioned_on_the_previous_output(pipeline: Any) -> None:
    clip = tiny_clip(n_frames=9, height=16, width=32)
    calls: list[dict] = []
    progress: list[tuple] = []
    spy = PipelineSpy(pipeline, calls)
    config = tiny_config(window=5, overlap=2, steps=1)
    out = synthesize_vace(**clip, config=config, pipeline=spy, progress=lambda *a: progress.append(a))
    # Windows [0,5) [3,8) [4,9) (the last pulled back to end on the last frame): 5 frames each, one step each.
    assert [c["num_frames"] for c in calls] == [5, 5, 5]
    assert [report for report in progress if report[0] == "vace"] == [("vace", step, 3) for step in range(1, 4)]
    assert progress[:2] == [("vace anchor", 0, 1), ("vace anchor", 1, 1)]
    second = calls[1]
    second_masks = np.stack([np.asarray(m) for m in second["mask"]])
    assert not second_masks[:2].any() and second_masks[2:].any()
    # The known overlap frames are the first window's output (frames 3 and 4) as shown: pasted into the source.
    known_frame = np.asarray(second["video"][0])
    region = generation_region(clip["object_masks"], clip["shadow_mattes"], 3)
    object_mask = clip["object_masks"][3]
    assert np.array_equal(known_frame[object_mask], out[3][object_mask])
    assert np.array_equal(known_frame[~region[3]], clip["source_frames"][3][~region[3]])
    changed = (out != clip["source_frames"]).any(axis=-1)
    assert not changed[~region].any()
    assert all(changed[t][clip["object_masks"][t]].any() for t in range(1, 9))


def test_size_not_multiple_of_16_is_restored(pipeline: Any) -> None:
    clip = tiny_clip(n_frames=5, height=14, width=19)
    out = synthesize_vace(**clip, config=tiny_config(window=5, overlap=2), pipeline=pipeline)
    assert out.shape == (5, 14, 19, 3)


def test_one_frame_clip_is_the_anchor_alone(pipeline: Any) -> None:
    clip = tiny_clip(n_frames=1, height=16, width=32)
    calls: list[dict] = []
    out = synthesize_vace(**clip, config=tiny_config(), pipeline=PipelineSpy(pipeline, calls))
    assert calls == []
    changed = (out[0] != clip["source_frames"][0]).any(axis=-1)
    assert np.array_equal(out[0][clip["object_masks"][0]], clip["control_frames"][0][clip["object_masks"][0]])
    assert changed.any()


def test_empty_mask_returns_the_input(pipeline: Any) -> None:
    clip = tiny_clip(n_frames=5)
    clip["object_masks"][:] = False
    clip["shadow_mattes"][:] = 0.0
    out = synthesize_vace(**clip, config=tiny_config(), pipeline=pipeline)
    assert np.array_equal(out, clip["source_frames"])


def test_cpu_only_machine_is_refused_without_allow_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    notices: list[str] = []
    with pytest.raises(UserError, match="needs a GPU"):
        synthesize_vace(**tiny_clip(n_frames=5), config=tiny_config(model="/nonexistent"), notify=notices.append)
    assert notices == []  # refused before estimating or loading anything
    with pytest.raises(UserError, match="needs a GPU"):
        preflight_vace(tiny_config())
    assert preflight_vace(tiny_config(allow_cpu=True)) == "cpu"
    with pytest.raises(UserError, match="--offload"):
        preflight_vace(tiny_config(offload="disk", allow_cpu=True))


def test_bad_inputs_are_input_errors(pipeline: Any) -> None:
    clip = tiny_clip(n_frames=5)
    with pytest.raises(InputError):
        synthesize_vace(**{**clip, "object_masks": clip["object_masks"][:3]}, config=tiny_config(), pipeline=pipeline)
    with pytest.raises(UserError, match="4k\\+1"):
        synthesize_vace(**clip, config=tiny_config(window=8), pipeline=pipeline)


def test_default_prompt_names_the_object() -> None:
    assert default_prompt(VaceConfig(object_name="coffee_mug")).startswith("a coffee mug placed")
    assert default_prompt(VaceConfig(object_name="orange-lamp")).startswith("an orange lamp placed")
    assert default_prompt(VaceConfig()).startswith("an object placed")
    assert default_prompt(VaceConfig(prompt="exactly this", object_name="mug")) == "exactly this"


class PipelineSpy:
    """Forwards everything to a pipeline and records the keyword arguments of each call."""

    def __init__(self, pipeline: Any, calls: list[dict]) -> None:
        object.__setattr__(self, "_pipeline", pipeline)
        object.__setattr__(self, "_calls", calls)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pipeline, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._pipeline, name, value)

    def __call__(self, **kwargs: Any) -> Any:
        self._calls.append(kwargs)
        return self._pipeline(**kwargs)
