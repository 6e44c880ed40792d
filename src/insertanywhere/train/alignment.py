"""Optics-aware alignment (InsertAnywhere v2): pull the object-mask pass's features towards the extended-mask pass's.

At inference the model only gets the object mask, yet it must draw the object's shadow and reflection outside it.
The training sample also has the extended optics mask (object + shadows + reflections). We run the backbone twice
on the same noisy latents: once conditioned with the object mask (the pass trained by the flow loss) and once with
the extended mask under stop-gradient, and penalise the squared distance between the hidden states of chosen
transformer blocks:

    L_align = mean_b  mean_{tokens, channels} ( h_b(object mask) - sg[h_b(extended mask)] )^2  /  s_b
    s_b     = mean_{tokens, channels} sg[h_b(extended mask)]^2
    L       = L_flow + lambda_align * L_align

The division by ``s_b`` (the target's mean square, no gradient) makes the term a relative squared distance: Wan's
hidden states grow with depth and differ by orders of magnitude between the 1.3B and 14B models, so a raw MSE
would make ``lambda_align`` mean something different for every block choice and model; relative, 0.01 means the
features differ by 10 % of their norm wherever they are read.

so the features of the object-mask pass learn to "know" where the optical effects go. Hidden states are read with
forward hooks, so the transformer's code is untouched (and gradient checkpointing keeps working).

Block choice: WanVACE adds the control hints after the blocks listed in ``vace_layers``, so block 0's output is
identical in both passes (no hint yet); blocks after the first hint differ.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from insertanywhere.errors import UserError


def default_align_blocks(num_layers: int) -> list[int]:
    """The middle block: deep enough to carry scene layout, shallow enough to be shaped by all later blocks."""
    return [num_layers // 2]


def parse_align_blocks(text: str | None, num_layers: int) -> list[int]:
    """``"10,20"`` -> [10, 20] (validated against the transformer's ``num_layers``); None/"" -> the default."""
    if not text:
        return default_align_blocks(num_layers)
    try:
        blocks = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise UserError(f"--align-blocks {text!r}: give block indices separated by commas, e.g. 10,20") from None
    bad = [b for b in blocks if not 0 <= b < num_layers]
    if bad or not blocks:
        raise UserError(f"--align-blocks {text!r}: the transformer has blocks 0..{num_layers - 1}")
    return blocks


@contextmanager
def capture_block_outputs(transformer: Any, blocks: Sequence[int]) -> Iterator[dict[int, Any]]:
    """Record the output hidden states of ``transformer.blocks[i]`` for each ``i`` in ``blocks``.

    Yields a dict block index -> (B, L, D) tensor, overwritten by every forward (so read it right after the
    forward of interest). The hooks are removed on exit.
    """
    features: dict[int, Any] = {}
    handles = []
    for index in blocks:

        def hook(module: Any, inputs: Any, output: Any, index: int = index) -> None:
            features[index] = output[0] if isinstance(output, tuple) else output

        handles.append(transformer.blocks[index].register_forward_hook(hook))
    try:
        yield features
    finally:
        for handle in handles:
            handle.remove()
        features.clear()


def alignment_loss(features: dict[int, Any], target_features: dict[int, Any]) -> Any:
    """Mean over blocks of the relative squared difference (module docstring); ``target_features`` are detached.

    Args:
        features: block -> (B, L, D) hidden states of the object-mask pass (with gradient).
        target_features: block -> (B, L, D) hidden states of the extended-mask pass.

    Returns:
        a scalar tensor (float32).
    """
    losses = []
    for block in sorted(target_features):
        target = target_features[block].detach().float()
        scale = target.pow(2).mean().clamp_min(1e-12)
        losses.append((features[block].float() - target).pow(2).mean() / scale)
    return sum(losses) / len(losses)
