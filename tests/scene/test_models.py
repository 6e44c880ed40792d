"""Learned backends with tiny random models built from configs (nothing downloads)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from insertanywhere.errors import MissingDependencyError  # noqa: E402

pytestmark = pytest.mark.torch

TINY_RAFT = None


def _tiny_raft_arch():
    from insertanywhere.models.raft import RaftArchitecture

    return RaftArchitecture(
        feature_layers=(8, 8, 8, 8, 16), context_layers=(8, 8, 8, 8, 16), corr_levels=2, corr_radius=1,
        motion_corr_layers=(8,), motion_flow_layers=(8, 8), motion_out=10, hidden=8, gru_kernels=((3, 3),),
        flow_head_hidden=8, mask_predictor=True,
    )  # fmt: skip


def test_raft_parameter_counts_match_torchvision():
    from insertanywhere.models.raft import RAFT_LARGE, RAFT_SMALL, build_raft

    # torchvision's documented num_params for raft_large and raft_small: the layouts agree.
    assert sum(p.numel() for p in build_raft(RAFT_LARGE).parameters()) == 5257536
    assert sum(p.numel() for p in build_raft(RAFT_SMALL).parameters()) == 990162


def test_tiny_raft_runs_and_is_deterministic():
    from insertanywhere.models.raft import RaftFlow, build_raft

    torch.manual_seed(0)
    model = build_raft(_tiny_raft_arch()).eval()
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (30, 44, 3), dtype=np.uint8)  # not multiples of 8: padded inside
    b = np.roll(a, 1, axis=1)
    backend = RaftFlow(model, num_flow_updates=2)
    flow = backend(a, b)
    assert flow.shape == (30, 44, 2) and flow.dtype == np.float32 and np.isfinite(flow).all()
    np.testing.assert_array_equal(flow, backend(a, b))


def test_raft_loader_round_trip_and_errors(tmp_path):
    from insertanywhere.models.raft import RAFT_SMALL, build_raft, load_raft

    torch.save(build_raft(RAFT_SMALL).state_dict(), tmp_path / "raft_small.pth")
    model = load_raft(str(tmp_path))
    assert model.mask_predictor is None
    with pytest.raises(MissingDependencyError, match="no RAFT weights"):
        load_raft(str(tmp_path / "missing.pth"))
    torch.save({"foo": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(MissingDependencyError):
        load_raft(str(tmp_path))  # two files in the folder
    with pytest.raises(MissingDependencyError, match="not torchvision RAFT weights"):
        load_raft(str(tmp_path / "other.pt"))


def _tiny_depth_anything(folder):
    from transformers import DepthAnythingForDepthEstimation

    from insertanywhere.testing import tiny_depth_anything_config

    torch.manual_seed(0)
    DepthAnythingForDepthEstimation(tiny_depth_anything_config()).save_pretrained(folder)


def test_depth_anything_tiny_prior(tmp_path):
    from insertanywhere.models.depth_anything import DepthAnythingPrior, load_depth_anything

    _tiny_depth_anything(tmp_path)
    model, settings = load_depth_anything(str(tmp_path))
    settings["input_size"] = 56
    prior = DepthAnythingPrior(model, settings)
    image = np.random.default_rng(0).integers(0, 255, (48, 80, 3), dtype=np.uint8)
    output = prior(0, image)
    assert output.shape == (48, 80) and output.dtype == np.float32 and (output >= 0).all()
    assert prior.kind == "disparity" and not prior.metric
    np.testing.assert_array_equal(output, prior(0, image))


def test_depth_anything_missing_weights_is_one_line(tmp_path):
    from insertanywhere.models.depth_anything import load_depth_anything

    with pytest.raises(MissingDependencyError) as info:
        load_depth_anything(str(tmp_path / "nowhere"))
    assert "\n" not in str(info.value) and "--model-path" in str(info.value)
    with pytest.raises(MissingDependencyError):
        load_depth_anything(None)


def _small_case():
    synthetic = pytest.importorskip("insertanywhere.data.synthetic.loader")
    return synthetic.load_synthetic_case(synthetic.render_case_cached("dolly", 0, small=True))


def test_reconstruct_with_depth_anything_prior_runs_joint_refinement(tmp_path):
    from insertanywhere.scene import ReconstructConfig, reconstruct

    _tiny_depth_anything(tmp_path)
    case = _small_case()
    config = ReconstructConfig(depth="depth-anything-v2", model_path=str(tmp_path))
    scene = reconstruct(case.background, config)
    assert scene.meta.backends["depth"] == "depth-anything-v2"
    assert scene.meta.extra["joint_refinement"].startswith("poses, points")
    assert len(scene.meta.extra["prior_scales"]) == case.n_frames
    assert np.isfinite(scene.depth).all() and (scene.depth >= 0).all()
    np.testing.assert_allclose(scene.cameras[0].cam_from_world, np.eye(4), atol=1e-9)


def test_reconstruct_with_raft_flow(tmp_path):
    from insertanywhere.models.raft import RAFT_SMALL, build_raft
    from insertanywhere.scene import ReconstructConfig, reconstruct

    torch.manual_seed(0)
    torch.save(build_raft(RAFT_SMALL).state_dict(), tmp_path / "raft_small.pth")
    case = _small_case()
    frames = case.background[:3]
    scene = reconstruct(frames, ReconstructConfig(flow="raft", model_path=str(tmp_path), fov_deg=57.0))
    assert scene.meta.backends["flow"] == "raft"
    assert scene.flow_forward.shape == (2, *frames.shape[1:3], 2)
