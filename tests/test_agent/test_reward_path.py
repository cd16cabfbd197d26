"""Reward path of the agent: PPO's first step, the clip, reward scale, DDP merge, precision."""

import math

import torch

from rlkd_mm.agent import (
    STATE_DIM,
    AgentStep,
    RLKDAgent,
    RunningNorm,
    RunningScale,
    Transition,
    merge_iterations,
    moments,
)
from rlkd_mm.agent.ppo import clipped_policy_loss
from rlkd_mm.temperature import RLTemperature


def _rollout(agent, iterations=4, batch=32, scale=1.0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    for i in range(iterations):
        x = torch.rand(batch, STATE_DIM, generator=gen)
        t, step = agent.act(x, torch.ones(batch, dtype=torch.bool))
        rewards = scale * (-((t - 6.0) ** 2))
        agent.store(step, float(rewards.sum()), None, instance_rewards=rewards, iteration=i)


def test_first_ppo_minibatch_has_ratio_one_and_zero_kl():
    agent = RLKDAgent(STATE_DIM, explore_updates=0, minibatch_size=16, seed=0)
    _rollout(agent)
    stats = agent.update()
    assert stats['first_ratio_max_dev'] < 1e-5
    assert abs(stats['first_approx_kl']) < 1e-7
    assert stats['approx_kl'] > 0  # later minibatches see the updated policy


def test_clipped_samples_give_no_policy_gradient():
    old = torch.zeros(4)
    # ratios 1.5 (A > 0: clipped), 0.5 (A < 0: clipped), 1.1 and 0.9 (inside the range)
    log_probs = torch.log(torch.tensor([1.5, 0.5, 1.1, 0.9])).requires_grad_(True)
    advantages = torch.tensor([1.0, -1.0, 1.0, -1.0])
    loss, kl, clip = clipped_policy_loss(log_probs, old, advantages, torch.ones(4), 0.2)
    (grad,) = torch.autograd.grad(loss, log_probs)
    assert grad[0] == 0 and grad[1] == 0
    # inside the range: d(-rho * A / 4) / d log rho = -rho * A / 4
    torch.testing.assert_close(grad[2:], torch.tensor([-1.1 / 4, 0.9 / 4]))
    assert float(clip) == 0.5
    expected_kl = sum((r - 1) - math.log(r) for r in (1.5, 0.5, 1.1, 0.9)) / 4
    assert math.isclose(float(kl), expected_kl, rel_tol=1e-5)


def test_unexplored_instances_give_no_policy_gradient():
    log_probs = torch.zeros(3, requires_grad=True)
    advantages, weights = torch.tensor([1.0, 2.0, 5.0]), torch.tensor([1.0, 1.0, 0.0])
    loss, _, _ = clipped_policy_loss(log_probs, torch.zeros(3), advantages, weights, 0.2)
    (grad,) = torch.autograd.grad(loss, log_probs)
    torch.testing.assert_close(grad, torch.tensor([-0.5, -1.0, 0.0]))


def test_running_scale_matches_the_sample_spread():
    scale = RunningScale()
    assert float(scale.scale()) == 1.0
    values = torch.randn(1000, generator=torch.Generator().manual_seed(0)) * 3.0 + 1.0
    for chunk in values.split(137):
        scale.update(chunk)
    assert int(scale.count) == 1000
    expected = float(values.double().std(unbiased=False))
    assert math.isclose(float(scale.scale()), expected, rel_tol=1e-9)


def test_ppo_steps_do_not_depend_on_the_reward_scale():
    # Rewards x1 and x1000: after normalisation by their running spread the updates coincide.
    results = []
    for factor in (1.0, 1000.0):
        agent = RLKDAgent(STATE_DIM, explore_updates=0, minibatch_size=16, seed=0)
        _rollout(agent, scale=factor)
        stats = agent.update()
        results.append((agent, stats))
    (a1, s1), (a2, s2) = results
    assert math.isclose(s2['reward_scale'] / s1['reward_scale'], 1000.0, rel_tol=1e-5)
    for p, q in zip(a1.net.parameters(), a2.net.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-6)


def test_running_norm_merges_moments_like_batches():
    x = torch.randn(300, 5, generator=torch.Generator().manual_seed(1))
    a, b = RunningNorm(5), RunningNorm(5)
    a.update(x[:100])
    a.update(x[100:])
    count, total, total_sq = moments(x[:100])
    c2, t2, s2 = moments(x[100:])
    b.merge_moments(count + c2, total + t2, total_sq + s2)  # e.g. summed over ranks
    torch.testing.assert_close(a.mean, b.mean)
    torch.testing.assert_close(a.var, b.var)
    torch.testing.assert_close(b.var, x.double().var(0, unbiased=False))


def _step(n, value):
    return AgentStep(
        states=torch.full((n, STATE_DIM), value),
        raw_states=torch.full((n, STATE_DIM), value),
        actions=torch.zeros(n),
        log_probs=torch.zeros(n),
        values=torch.zeros(n),
        hq_mask=torch.ones(n, dtype=torch.bool),
        temperatures=torch.full((n,), 4.0),
    )


def test_merge_iterations_joins_batch_rewards_of_one_iteration():
    items = [
        Transition(_step(2, 0.0), 1.5, torch.zeros(3, STATE_DIM), iteration=7),  # rank 0
        Transition(_step(3, 1.0), 1.5, None, iteration=7),  # rank 1, same iteration
        Transition(_step(1, 2.0), 0.5, None, instance_rewards=torch.ones(1), iteration=7),
        Transition(_step(4, 3.0), -1.0, None, iteration=8),
    ]
    merged = merge_iterations(items)
    assert len(merged) == 3
    assert merged[0].iteration == 7 and merged[0].step.num == 5 and merged[0].batch_reward == 1.5
    assert merged[0].next_states.shape == (3, STATE_DIM)
    assert merged[1].instance_rewards is not None  # per-instance rewards stay as they are
    assert merged[2].iteration == 8 and merged[2].step.num == 4


def test_policy_acts_in_float32_under_autocast():
    torch.manual_seed(0)
    s, t = torch.randn(16, 10), torch.randn(16, 10) * 3
    y = torch.randint(0, 10, (16,))
    plain = RLTemperature(agent=dict(seed=0))
    amp = RLTemperature(agent=dict(seed=0))
    for policy in (plain, amp):
        policy.train()
        policy.driven = policy.acting = True
    t_plain, _ = plain(s, t, y).temperatures
    with torch.autocast('cpu', dtype=torch.bfloat16):
        t_amp, _ = amp(s.bfloat16(), t.bfloat16(), y).temperatures
    assert t_amp.dtype == torch.bfloat16  # returned in the logits' dtype
    step_plain, step_amp = plain.pop_pending(), amp.pop_pending()
    for field in ('states', 'raw_states', 'actions', 'log_probs', 'values', 'temperatures'):
        assert getattr(step_amp, field).dtype == torch.float32, field
    # the same float32 computation on the (bf16-rounded) logits
    torch.testing.assert_close(step_amp.raw_states, step_plain.raw_states, atol=0.05, rtol=0.05)
    assert t_plain.dtype == torch.float32
