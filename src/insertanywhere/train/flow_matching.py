"""Wan's training objective: rectified flow (flow matching) with shifted sigmas.

Wan2.1 (and Wan-VACE) is trained to predict the velocity of the straight path from data to noise:

    x_t    = (1 - sigma) * x0 + sigma * noise          (sigma in [0, 1], 1 = pure noise)
    target = d x_t / d sigma = noise - x0

with the network conditioned on ``timestep = sigma * num_train_timesteps``. Sigmas are drawn uniformly and pushed
towards the noisy end by the resolution shift that the sampler also uses (SD3 / Wan, "time shift"):

    sigma = shift * u / (1 + (shift - 1) * u),   u ~ U(0, 1)

so training sees the same sigma distribution that inference with ``flow_shift = shift`` spends its steps on.
Pure torch; no model code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

NUM_TRAIN_TIMESTEPS = 1000


def shift_sigma(u: torch.Tensor | float, shift: float) -> torch.Tensor | float:
    """Map uniform ``u`` in [0, 1] to a shifted sigma in [0, 1] (monotone; 0 -> 0, 1 -> 1; shift 1 = identity)."""
    return shift * u / (1 + (shift - 1) * u)


def noisy_latents_and_target(
    x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The rectified-flow pair for one batch.

    Args:
        x0: (B, C, F, h, w) clean latents.
        noise: (B, C, F, h, w) standard normal, same dtype/device.
        sigma: (B,) noise levels in [0, 1].

    Returns:
        (x_t, velocity_target), both (B, C, F, h, w): ``(1 - sigma) x0 + sigma noise`` and ``noise - x0``.
    """
    sigma_b = sigma.view(-1, *([1] * (x0.ndim - 1))).to(x0.dtype)
    return (1 - sigma_b) * x0 + sigma_b * noise, noise - x0


def sigma_to_timestep(sigma: torch.Tensor) -> torch.Tensor:
    """(B,) sigma -> (B,) float timesteps in [0, 1000], as the Wan schedulers feed the transformer."""
    return sigma * NUM_TRAIN_TIMESTEPS
