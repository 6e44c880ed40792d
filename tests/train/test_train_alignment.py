"""Block feature hooks and the alignment loss on the tiny WanVACE transformer."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from insertanywhere.errors import UserError  # noqa: E402
from insertanywhere.train.alignment import alignment_loss, capture_block_outputs, parse_align_blocks  # noqa: E402

pytestmark = pytest.mark.torch


def test_parse_align_blocks():
    assert parse_align_blocks(None, 40) == [20]
    assert parse_align_blocks("20, 10,10", 40) == [10, 20]
    with pytest.raises(UserError):
        parse_align_blocks("40", 40)
    with pytest.raises(UserError):
        parse_align_blocks("a,b", 40)


def test_hooks_capture_block_outputs_and_the_loss_has_stop_gradient():
    from insertanywhere.models.wan_vace import tiny_wan_vace_components

    transformer = tiny_wan_vace_components(0)["transformer"]
    generator = torch.Generator().manual_seed(0)
    inputs = {
        "hidden_states": torch.randn(1, 16, 2, 4, 4, generator=generator),
        "timestep": torch.tensor([500.0]),
        "encoder_hidden_states": torch.randn(1, 8, 32, generator=generator),
        "return_dict": False,
    }
    control_a = torch.randn(1, 96, 2, 4, 4, generator=generator)
    control_b = torch.randn(1, 96, 2, 4, 4, generator=generator)
    with capture_block_outputs(transformer, [0, 1]) as features:
        transformer(control_hidden_states=control_a, **inputs)
        first = {k: v.detach().clone() for k, v in features.items()}
        transformer(control_hidden_states=control_b, **inputs)
        second = dict(features)
    assert set(first) == {0, 1} and first[1].shape == (1, 2 * 2 * 2, 24)
    # Block 0 runs before the first VACE hint is added, so the control does not reach its output.
    torch.testing.assert_close(first[0], second[0])
    assert not torch.allclose(first[1], second[1])
    assert not transformer.blocks[1]._forward_hooks, "hooks are removed on exit"

    a = torch.randn(2, 3, requires_grad=True)
    b = torch.randn(2, 3, requires_grad=True)
    loss = alignment_loss({5: a}, {5: b})
    loss.backward()
    assert a.grad is not None and b.grad is None
    torch.testing.assert_close(loss, ((a - b) ** 2).mean() / (b**2).mean())
    # Relative: scaling both feature sets by 1000 leaves the loss unchanged.
    torch.testing.assert_close(alignment_loss({5: 1000 * a}, {5: 1000 * b}), loss)
    assert alignment_loss({5: a}, {5: a.detach()}).item() == 0.0
