"""RLKDAgent: acting, exploration, PPO learning, calibration, checkpoints, validation."""

import io

import pytest
import torch

from rlkd_mm.agent import STATE_DIM, AgentStep, RLKDAgent, Transition


def _states(n, gen, feature0=None):
    x = torch.rand(n, STATE_DIM, generator=gen)
    x[:, 0] = torch.randn(n, generator=gen) if feature0 is None else feature0
    return x


def _fill(agent, gen, iterations=3, n=16):
    for _ in range(iterations):
        x = _states(n, gen)
        _, step = agent.act(x, torch.rand(n, generator=gen) > 0.5)
        agent.store(step, float(torch.randn(1, generator=gen)), _states(n, gen))


def test_act_shapes_bounds_and_single_forward():
    agent = RLKDAgent(STATE_DIM, t_min=1.0, t_max=10.0)
    calls = []
    agent.net.actor.register_forward_hook(lambda *args: calls.append(1))
    x = torch.randn(1000, STATE_DIM) * 1e3
    t, step = agent.act(x, torch.ones(1000, dtype=torch.bool))
    assert len(calls) == 1
    assert t.shape == (1000,) and torch.isfinite(t).all()
    assert (t >= 1.0).all() and (t <= 10.0).all()
    assert step.num == 1000 and step.states.shape == (1000, STATE_DIM)
    torch.testing.assert_close(step.temperatures, t)
    # Stored log-probabilities are those of the sampled pre-squash actions.
    mu, _ = agent.net(step.states)
    torch.testing.assert_close(
        step.log_probs, agent.net.distribution(mu).log_prob(step.actions).detach()
    )


def test_exploration_noise_only_on_high_quality_instances():
    gen = torch.Generator().manual_seed(3)
    agent = RLKDAgent(STATE_DIM, explore_updates=1)
    x = _states(64, gen)
    hq = torch.arange(64) % 3 == 0
    t_mean, _ = agent.act(x, hq, deterministic=True)
    t, step = agent.act(x, hq)
    assert agent.phase == 0
    assert torch.equal(t[~hq], t_mean[~hq])  # exactly the mean action
    assert (t[hq] != t_mean[hq]).all()
    # After the exploration phase every instance explores.
    agent.store(step, 1.0)
    stats = agent.update()
    assert stats['phase'] == 0.0 and agent.phase == 1
    t_mean, _ = agent.act(x, hq, deterministic=True)
    t, _ = agent.act(x, hq)
    assert (t != t_mean).all()


def test_exploration_phase_minibatches_prefer_high_quality():
    agent = RLKDAgent(STATE_DIM, explore_updates=1, minibatch_size=4)
    hq = torch.zeros(20, dtype=torch.bool)
    hq[[1, 5, 7, 8, 13, 19]] = True
    order = agent._epoch_order(hq, exploring=True)
    assert sorted(order.tolist()) == [1, 5, 7, 8, 13, 19]
    few = torch.zeros(20, dtype=torch.bool)
    few[[2, 3]] = True
    order = agent._epoch_order(few, exploring=True)
    # Too few high-quality instances: they come first, others top up one minibatch.
    assert len(order) == 4 and sorted(order[:2].tolist()) == [2, 3]
    assert sorted(agent._epoch_order(hq, exploring=False).tolist()) == list(range(20))


def test_ppo_learns_contextual_bandit():
    # Best temperature 2 when feature 0 > 0 and 8 otherwise; reward -|T - T*| per instance.
    gen = torch.Generator().manual_seed(123)
    agent = RLKDAgent(
        STATE_DIM,
        lr=3e-3,
        gamma=0.0,
        explore_updates=0,
        minibatch_size=128,
        init_log_std=0.0,
        entropy_coef=0.0,
        seed=0,
    )
    errors = []
    for _ in range(40):
        x = _states(256, gen)
        t_star = torch.where(x[:, 0] > 0, 2.0, 8.0)
        t, step = agent.act(x, torch.ones(256, dtype=torch.bool))
        reward = -(t - t_star).abs()
        agent.store(step, float(reward.sum()), None, instance_rewards=reward)
        agent.update()
        t_det, _ = agent.act(x, torch.ones(256, dtype=torch.bool), deterministic=True)
        errors.append(float((t_det - t_star).abs().mean()))
        if errors[-1] < 0.8:
            break
    assert errors[0] > 2.0  # the initial policy (T = 4 everywhere) is far from T*
    assert errors[-1] < 1.0, errors


def test_update_calibrates_bootstraps_and_clears():
    gen = torch.Generator().manual_seed(0)
    agent = RLKDAgent(STATE_DIM, explore_updates=1, reward_model_steps=3)
    _fill(agent, gen, iterations=3)
    assert len(agent.buffer) == 3
    stats = agent.update()
    assert len(agent.buffer) == 0 and agent.update_count == 1 and len(agent.reward_window) == 3
    for key in (
        'policy_loss',
        'value_loss',
        'entropy',
        'reward_model_loss',
        'batch_reward',
        'instance_reward',
        't_mean',
        't_std',
        'phase',
        'approx_kl',
        'clip_fraction',
    ):
        assert key in stats and isinstance(stats[key], float)
    assert float(agent.norm.count) == 48  # refreshed from the rollout's raw states
    # Calibrated rewards sum to the batch reward whatever the reward model says.
    _, step = agent.act(_states(10, gen), torch.ones(10, dtype=torch.bool))
    r = agent.calibrated_rewards(step, 2.5)
    assert r.shape == (10,) and abs(float(r.sum()) - 2.5) < 1e-5
    assert agent.update() == {} and agent.update_count == 1


def test_bootstrap_uses_next_iteration_batch_mean_value():
    gen = torch.Generator().manual_seed(0)
    agent = RLKDAgent(STATE_DIM)
    torch.nn.init.normal_(agent.net.critic[-1].weight)
    _, step = agent.act(_states(5, gen), torch.ones(5, dtype=torch.bool))
    nxt = _states(7, gen)
    items = [Transition(step, 1.0, agent.norm.normalize(nxt)), Transition(step, 1.0, None)]
    steps = AgentStep.cat([step, step])
    index = torch.tensor([0] * 5 + [1] * 5)
    values = agent._bootstrap_values(items, steps, index, torch.tensor([5, 5]))
    with torch.no_grad():
        expected_next = agent.net(agent.norm.normalize(nxt))[1].mean()
    torch.testing.assert_close(values[0], expected_next)
    torch.testing.assert_close(values[1], step.values.mean())  # unobserved: own batch mean


def test_identical_merged_experience_gives_bitwise_identical_agents():
    gen = torch.Generator().manual_seed(0)
    a, b = RLKDAgent(STATE_DIM, seed=7), RLKDAgent(STATE_DIM, seed=7)
    _fill(a, gen, iterations=4)
    merged = [Transition.from_dict(t.to_dict()) for t in a.buffer.transitions()]
    a.update(merged)
    b.update(merged)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    assert len(a.buffer) == 0


def test_construction_is_seeded_and_leaves_global_rng_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    a = RLKDAgent(STATE_DIM, seed=3)
    assert torch.equal(torch.rand(3), expected)
    b = RLKDAgent(STATE_DIM, seed=3)
    c = RLKDAgent(STATE_DIM, seed=4)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))


def test_state_dict_restores_everything():
    gen = torch.Generator().manual_seed(0)
    a = RLKDAgent(STATE_DIM, seed=1, explore_updates=1)
    _fill(a, gen, iterations=2)
    a.update()
    _fill(a, gen, iterations=2)  # non-empty buffer at save time
    blob = io.BytesIO()
    torch.save(a.state_dict(), blob)
    blob.seek(0)
    b = RLKDAgent(STATE_DIM, seed=99, explore_updates=1)
    b.load_state_dict(torch.load(blob, weights_only=True))
    assert b.update_count == 1 and len(b.buffer) == 2 and len(b.reward_window) == 2
    x, hq = _states(32, gen), torch.ones(32, dtype=torch.bool)
    ta, _ = a.act(x, hq)
    tb, _ = b.act(x, hq)
    assert torch.equal(ta, tb)  # same networks, normalisation and noise generator state
    sa, sb = a.update(), b.update()
    assert sa == sb
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


def test_store_validation():
    agent = RLKDAgent(STATE_DIM)
    _, step = agent.act(torch.rand(4, STATE_DIM), torch.ones(4, dtype=torch.bool))
    with pytest.raises(ValueError, match='batch_reward'):
        agent.store(step, float('nan'))
    with pytest.raises(ValueError, match='next_states'):
        agent.store(step, 1.0, torch.rand(3, 2))
    with pytest.raises(ValueError, match='instance_rewards'):
        agent.store(step, 1.0, None, torch.rand(5))
    _, empty = agent.act(torch.rand(0, STATE_DIM), torch.ones(0, dtype=torch.bool))
    with pytest.raises(ValueError, match='N=0'):
        agent.store(empty, 1.0)
    with pytest.raises(ValueError, match='raw_states'):
        agent.act(torch.rand(4, 3), torch.ones(4, dtype=torch.bool))
    with pytest.raises(ValueError, match='hq_mask'):
        agent.act(torch.rand(4, STATE_DIM), torch.ones(3, dtype=torch.bool))


@pytest.mark.parametrize(
    'key, value',
    [
        ('gamma', 1.5),
        ('gamma', -0.1),
        ('clip_eps', 0.0),
        ('ppo_epochs', 0),
        ('minibatch_size', 0),
        ('lr', -1e-3),
        ('squash', 'cubic'),
        ('reward_model_lr', -1.0),
        ('max_grad_norm', 0.0),
        ('hq_tau', 2.0),
        ('explore_updates', -1),
        ('buffer_size', 0),
        ('reward_window', 0),
        ('value_coef', -1.0),
        ('entropy_coef', -1.0),
        ('t_min', 0.0),
        ('t_max', 0.5),
        ('t_init', 20.0),
        ('norm_clip', 0.0),
    ],
)
def test_invalid_settings_name_the_key(key, value):
    with pytest.raises(ValueError, match=key):
        RLKDAgent(STATE_DIM, **{key: value})


def test_update_works_inside_no_grad():
    gen = torch.Generator().manual_seed(0)
    agent = RLKDAgent(STATE_DIM)
    _fill(agent, gen, iterations=2)
    before = [p.clone() for p in agent.parameters()]
    with torch.no_grad():
        stats = agent.update()
    assert stats and any(not torch.equal(p, q) for p, q in zip(before, agent.parameters()))


def test_steps_record_which_instances_explored():
    gen = torch.Generator().manual_seed(4)
    agent = RLKDAgent(STATE_DIM, explore_updates=1)
    hq = torch.arange(12) % 3 == 0
    _, step = agent.act(_states(12, gen), hq)
    assert torch.equal(step.explored, hq)  # phase 0: noise on high-quality instances only
    _, det = agent.act(_states(12, gen), hq, deterministic=True)
    assert not det.explored.any()
    agent.store(step, 1.0)
    agent.update()
    _, step = agent.act(_states(12, gen), hq)
    assert step.explored.all()  # phase 1: everything explores
    # The mask survives checkpoints and the cat of steps.
    restored = AgentStep.from_dict(AgentStep.cat([det, step]).to_dict())
    assert torch.equal(restored.explored, torch.cat([det.explored, step.explored]))


def _policy_only_update(explored, actions_offset):
    """Actor parameters after one update on a fixed rollout, value loss switched off."""
    gen = torch.Generator().manual_seed(0)
    agent = RLKDAgent(STATE_DIM, explore_updates=5, value_coef=0.0, minibatch_size=16, seed=0)
    hq = torch.zeros(32, dtype=torch.bool)
    hq[::2] = True
    for _ in range(2):
        _, step = agent.act(_states(32, gen), hq)
        step.explored = explored.clone()
        step.actions = step.actions + actions_offset
        rewards = torch.randn(32, generator=gen)
        agent.store(step, float(rewards.sum()), None, instance_rewards=rewards)
    agent.update()
    return [p.detach().clone() for p in agent.net.actor.parameters()] + [agent.net.log_std]


def test_unexplored_instances_do_not_enter_the_policy_loss():
    explored = torch.zeros(32, dtype=torch.bool)
    explored[::2] = True
    # Changing what the unexplored instances "did" must not change the policy update.
    shift = torch.where(explored, 0.0, 3.0)
    base = _policy_only_update(explored, 0.0)
    shifted = _policy_only_update(explored, shift)
    for p, q in zip(base, shifted):
        torch.testing.assert_close(p, q)
    # Nothing explored: the policy/entropy terms vanish and the actor does not move.
    agent = RLKDAgent(STATE_DIM, explore_updates=5, value_coef=0.0, minibatch_size=16, seed=0)
    before = [p.detach().clone() for p in agent.net.actor.parameters()]
    none = _policy_only_update(torch.zeros(32, dtype=torch.bool), shift)
    for p, q in zip(before, none):
        assert torch.equal(p, q)


def test_exploration_noise_is_the_standardised_action_deviation():
    gen = torch.Generator().manual_seed(5)
    agent = RLKDAgent(STATE_DIM, explore_updates=1)
    x = _states(32, gen)
    hq = torch.arange(32) % 2 == 0
    _, step = agent.act(x, hq)
    noise = agent.exploration_noise(step)
    mu, _ = agent.net(step.states)
    expected = (step.actions - mu) / agent.net.std
    # explored (high-quality, exploration phase) instances: (a - mu) / sigma; the others took
    # the mean action and have no noise
    torch.testing.assert_close(noise[hq], expected[hq])
    assert torch.isnan(noise[~hq]).all()
    assert 0.3 < float(noise[hq].std()) < 2.0  # standard normal draws
    _, deterministic = agent.act(x, hq, deterministic=True)
    assert torch.isnan(agent.exploration_noise(deterministic)).all()
    # once the policy changed, a step acted by the old one has no recoverable noise
    agent.store(step, 1.0)
    with torch.no_grad():
        agent.net.actor[-1].bias += 0.5
    assert torch.isnan(agent.exploration_noise(step)).all()
