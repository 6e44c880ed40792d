"""Rectified-flow pairs and the sigma shift, against hand-computed values."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from insertanywhere.train.flow_matching import noisy_latents_and_target, shift_sigma, sigma_to_timestep  # noqa: E402

pytestmark = pytest.mark.torch


def test_shift_sigma_endpoints_identity_and_monotone():
    assert shift_sigma(0.0, 3.0) == 0.0 and shift_sigma(1.0, 3.0) == 1.0
    assert shift_sigma(0.5, 1.0) == 0.5
    assert shift_sigma(0.5, 3.0) == pytest.approx(0.75)  # 3 * 0.5 / (1 + 2 * 0.5)
    u = torch.linspace(0, 1, 11)
    sigmas = shift_sigma(u, 5.0)
    assert (sigmas[1:] > sigmas[:-1]).all() and (sigmas >= u).all()


def test_noisy_latents_and_target():
    x0 = torch.full((2, 1, 1, 1, 1), 2.0)
    noise = torch.full((2, 1, 1, 1, 1), -1.0)
    x_t, target = noisy_latents_and_target(x0, noise, torch.tensor([0.0, 0.25]))
    assert x_t.flatten().tolist() == [2.0, 0.75 * 2.0 + 0.25 * -1.0]
    assert target.flatten().tolist() == [-3.0, -3.0]
    assert sigma_to_timestep(torch.tensor([0.5])).item() == 500.0
