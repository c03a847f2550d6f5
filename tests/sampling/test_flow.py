import itertools

import pytest
import torch

from kinema.sampling.flow import add_noise, euler_step, guide, sample_training_t, timesteps


def test_timesteps_run_from_noise_to_data_and_shift_leans_to_noise() -> None:
    plain = timesteps(10)
    shifted = timesteps(10, shift=3.0)
    assert plain[0] == 1.0 and plain[-1] == 0.0 and len(plain) == 11
    assert torch.all(plain[1:] < plain[:-1])
    assert torch.all(shifted[1:-1] > plain[1:-1])


def test_timesteps_refuse_zero_steps() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        timesteps(0)


@pytest.mark.parametrize("steps", [1, 3, 17])
def test_euler_is_exact_for_a_point_mass(steps: int) -> None:
    """With the true x0 predicted at every level, the sampler lands on x0 in any number of steps."""
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(2, 3, 4, 5, 6, generator=gen)
    x = torch.randn(x0.shape, generator=gen)
    levels = timesteps(steps).tolist()
    for t, t_next in itertools.pairwise(levels):
        x = euler_step(x, x0, t, t_next)
    torch.testing.assert_close(x, x0)


def test_euler_follows_the_gaussian_flow_exactly() -> None:
    """Data N(mu, s^2): the optimal x0-prediction is analytic, and Euler then maps noise to data quantiles.

    For x_t = (1 - t) x0 + t e, E[x0 | x_t] = mu + (1 - t) s^2 (x_t - (1 - t) mu) / ((1 - t)^2 s^2 + t^2).
    The probability-flow ODE is linear in x, so its solution maps noise z to mu + s z; fine Euler steps
    converge to it.
    """
    mu, s = 2.0, 0.5
    z = torch.linspace(-2, 2, 9, dtype=torch.float64)
    x = z.clone()
    levels = timesteps(4000).double().tolist()
    for t, t_next in itertools.pairwise(levels):
        var = (1 - t) ** 2 * s**2 + t**2
        x0_hat = mu + (1 - t) * s**2 * (x - (1 - t) * mu) / var
        x = euler_step(x, x0_hat, t, t_next)
    torch.testing.assert_close(x, mu + s * z, atol=2e-3, rtol=0)


def test_add_noise_interpolates_per_sample() -> None:
    x0, noise = torch.zeros(2, 3), torch.ones(2, 3)
    out = add_noise(x0, noise, torch.tensor([0.0, 0.25]))
    assert torch.equal(out, torch.tensor([[0.0] * 3, [0.25] * 3]))


def test_guidance_extrapolates_from_unconditional() -> None:
    cond, uncond = torch.tensor([1.0]), torch.tensor([0.0])
    assert guide(cond, uncond, 1.0) == 1.0 and guide(cond, uncond, 4.0) == 4.0


def test_training_noise_levels_lean_high_and_stay_in_range() -> None:
    t = sample_training_t(10_000, torch.Generator().manual_seed(0), mean=0.5, std=1.0)
    assert t.min() > 0.0 and t.max() < 1.0
    assert t.median() > 0.55
