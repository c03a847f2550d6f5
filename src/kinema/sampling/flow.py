"""Rectified flow with x-prediction: x_t = (1 - t) x0 + t noise, t = 1 is pure noise.

The network predicts x0; an Euler step along the implied velocity (x_t - x0_hat) / t is then
x_next = x0_hat + (t_next / t) (x_t - x0_hat), which is exact whenever x0_hat is (Liu et al. 2022,
"Flow straight and fast"). Stateless functions over tensors; the loop lives in the caller.
"""

from __future__ import annotations

import torch


def add_noise(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """x_t for a batch; t has shape (B,)."""
    t = t.view(-1, *([1] * (x0.dim() - 1)))
    return (1.0 - t) * x0 + t * noise


def timesteps(steps: int, *, shift: float = 1.0) -> torch.Tensor:
    """steps + 1 noise levels from 1 down to 0; shift > 1 spends more steps at high noise (SD3)."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    t = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
    return (shift * t / (1.0 + (shift - 1.0) * t)).float()


def euler_step(x_t: torch.Tensor, x0_hat: torch.Tensor, t: float, t_next: float) -> torch.Tensor:
    """Move from noise level t to t_next along the velocity implied by the predicted x0."""
    if t <= 0.0:
        return x0_hat
    return x0_hat + (t_next / t) * (x_t - x0_hat)


def guide(cond: torch.Tensor, uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance on predictions (Ho & Salimans 2022); scale 1 is no guidance."""
    return uncond + scale * (cond - uncond)


def sample_training_t(batch: int, generator: torch.Generator, *, mean: float, std: float) -> torch.Tensor:
    """Logit-normal noise levels for training (SD3); mean > 0 leans toward high noise."""
    return torch.sigmoid(mean + std * torch.randn(batch, generator=generator))
