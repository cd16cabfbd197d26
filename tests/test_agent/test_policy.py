"""Squashed-Gaussian actor-critic: initial temperature, bounds, change-of-variables density."""

import math

import pytest
import torch

from rlkd_mm.agent import STATE_DIM, ActorCritic


def _normal_cdf(x):
    return 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


def _t_cdf(x, mu, sigma, t_min=1.0, t_max=10.0):
    """P(T <= x) = Phi((logit((x - t_min) / (t_max - t_min)) - mu) / sigma): T increases with a."""
    u = (x - t_min) / (t_max - t_min)
    return _normal_cdf((torch.log(u / (1 - u)) - mu) / sigma)


def test_initial_mean_temperature_is_t_init():
    net = ActorCritic(STATE_DIM, t_min=1.0, t_max=10.0, t_init=4.0)
    mu, value = net(torch.randn(100, STATE_DIM) * 3)
    assert mu.shape == (100,) and value.shape == (100,)
    torch.testing.assert_close(net.squash(mu), torch.full((100,), 4.0), atol=0.05, rtol=0)


def test_log_prob_of_temperature_matches_numerical_density():
    torch.manual_seed(1)
    net = ActorCritic(STATE_DIM, t_min=1.0, t_max=10.0, t_init=4.0, init_log_std=math.log(0.7))
    net.double()
    with torch.no_grad():
        net.actor[-1].weight.normal_(std=0.5)  # make mu depend on the state
    states = torch.randn(5, STATE_DIM, dtype=torch.float64)
    t = torch.linspace(1.2, 9.8, 41, dtype=torch.float64)
    h = 1e-5
    with torch.no_grad():
        mu, _ = net(states)
        sigma = float(net.std)
        for i in range(5):
            numeric = (_t_cdf(t + h, mu[i], sigma) - _t_cdf(t - h, mu[i], sigma)) / (2 * h)
            log_p = net.log_prob_of_temperature(states[i].expand(len(t), -1), t)
            torch.testing.assert_close(log_p.exp(), numeric, rtol=1e-5, atol=1e-8)
            # The density of T integrates to 1 over (t_min, t_max).
            fine = torch.linspace(1.0 + 1e-9, 10.0 - 1e-9, 20001, dtype=torch.float64)
            dens = net.log_prob_of_temperature(states[i].expand(len(fine), -1), fine).exp()
            assert float(torch.trapezoid(dens, fine)) == pytest.approx(1.0, abs=1e-3)


def test_log_prob_of_temperature_is_not_gaussian_at_squashed_value():
    # The reference code's mistake: a Gaussian density evaluated at T. Make sure we differ.
    net = ActorCritic(STATE_DIM).double()
    s = torch.zeros(1, STATE_DIM, dtype=torch.float64)
    t = torch.tensor([4.0], dtype=torch.float64)
    with torch.no_grad():
        mu, _ = net(s)
        wrong = net.distribution(mu).log_prob(t)
        right = net.log_prob_of_temperature(s, t)
    assert not torch.allclose(wrong, right)


def test_squash_bounds_and_inverse():
    net = ActorCritic(STATE_DIM, t_min=0.5, t_max=20.0, t_init=4.0)
    a = torch.tensor([-1e4, -50.0, -1.0, 0.0, 1.0, 50.0, 1e4])
    t = net.squash(a)
    assert torch.isfinite(t).all() and (t >= 0.5).all() and (t <= 20.0).all()
    assert t[0] == 0.5 and t[-1] == 20.0
    inner = torch.tensor([-3.0, 0.0, 2.5])
    torch.testing.assert_close(net.unsquash(net.squash(inner)), inner, atol=1e-4, rtol=0)


@pytest.mark.parametrize(
    'kwargs, key',
    [
        (dict(t_min=0.0), 't_min'),
        (dict(t_min=5.0, t_max=5.0, t_init=5.0), 't_max'),
        (dict(t_init=10.0), 't_init'),
        (dict(t_init=1.0), 't_init'),
        (dict(hidden_dim=0), 'hidden_dim'),
        (dict(init_log_std=10.0), 'init_log_std'),
    ],
)
def test_invalid_settings(kwargs, key):
    with pytest.raises(ValueError, match=key):
        ActorCritic(STATE_DIM, **kwargs)


def test_log_std_keeps_its_gradient_and_is_clamped_after_steps():
    from rlkd_mm.agent import RLKDAgent
    from rlkd_mm.agent.policy import LOG_STD_MAX

    net = ActorCritic(STATE_DIM)
    with torch.no_grad():
        net.log_std.fill_(LOG_STD_MAX + 1.0)
    net.std.backward()
    # A clamp inside ``std`` would give exactly zero gradient here.
    assert float(net.log_std.grad) == pytest.approx(math.exp(LOG_STD_MAX + 1.0))
    net.clamp_log_std_()
    assert float(net.log_std.detach()) == LOG_STD_MAX

    # A huge entropy bonus pushes log_std up; after the update it is back in range.
    gen = torch.Generator().manual_seed(0)
    agent = RLKDAgent(
        STATE_DIM, init_log_std=LOG_STD_MAX - 1e-3, entropy_coef=1e3, lr=0.5, explore_updates=0
    )
    for _ in range(2):
        _, step = agent.act(torch.rand(16, STATE_DIM, generator=gen), torch.ones(16, dtype=bool))
        agent.store(step, 0.0, None, instance_rewards=torch.zeros(16))
    agent.update()
    assert float(agent.net.log_std.detach()) == LOG_STD_MAX
