"""RAFT run with a model cast to bfloat16/float16 (benchmarks/gpu_check.py found RaftFlow fed float32 frames to a
half model and called .numpy() on a bf16 tensor). CPU-only, tiny random models built from an architecture."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.torch


def _tiny_arch(mask_predictor: bool):
    from insertanywhere.models.raft import RaftArchitecture

    return RaftArchitecture(
        feature_layers=(8, 8, 8, 8, 16), context_layers=(8, 8, 8, 8, 16), corr_levels=2, corr_radius=1,
        motion_corr_layers=(8,), motion_flow_layers=(8, 8), motion_out=10, hidden=8, gru_kernels=((3, 3),),
        flow_head_hidden=8, mask_predictor=mask_predictor,
    )  # fmt: skip


@pytest.mark.parametrize("mask_predictor", [True, False])
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_raft_flow_runs_a_half_precision_model(mask_predictor: bool, dtype: str):
    from insertanywhere.models.raft import RaftFlow, build_raft

    torch.manual_seed(0)
    model = build_raft(_tiny_arch(mask_predictor)).eval()
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (30, 44, 3), dtype=np.uint8)
    b = np.roll(a, 1, axis=1)
    reference = RaftFlow(model, num_flow_updates=2)(a, b)
    half = RaftFlow(model.to(getattr(torch, dtype)), num_flow_updates=2)(a, b)
    assert half.shape == (30, 44, 2) and half.dtype == np.float32 and np.isfinite(half).all()
    # Half precision moves the flow a little, not wholesale (correlation and coordinates stay float32).
    assert np.abs(half - reference).max() <= 0.05 * max(1.0, np.abs(reference).max())
