"""Reward calibration safeguard: the learned decomposition is used only when it validates."""

import math

import torch

from rlkd_mm.agent import STATE_DIM, RLKDAgent

B, TARGET = 64, 7.0


def _train(mode, iterations=160, update_every=8, seed=0, **kwargs):
    """Synthetic task: per-instance reward ``-(T_i - TARGET)^2 / B``, batch reward its sum.

    Returns the mean squared error of the deterministic temperature after training (9 at the
    start, T = 4) and the fraction of updates that used the learned calibration.
    """
    gen = torch.Generator().manual_seed(seed)
    agent = RLKDAgent(
        STATE_DIM,
        gamma=0.0,
        explore_updates=0,
        minibatch_size=128,
        lr=1e-3,
        seed=seed,
        **kwargs,
    )
    learned = []
    for i in range(iterations):
        x = torch.rand(B, STATE_DIM, generator=gen)
        t, step = agent.act(x, torch.ones(B, dtype=torch.bool))
        batch_reward = float((-((t - TARGET) ** 2) / B).sum())
        if mode == 'equal':
            split = torch.full((B,), batch_reward / B)
            agent.store(step, batch_reward, None, instance_rewards=split)
        else:
            agent.store(step, batch_reward)
        if (i + 1) % update_every == 0:
            learned.append(agent.update()['calibration_learned'])
    x = torch.rand(512, STATE_DIM, generator=gen)
    t, _ = agent.act(x, torch.ones(512, dtype=torch.bool), deterministic=True)
    return float(((t - TARGET) ** 2).mean()), sum(learned) / len(learned)


def test_calibrated_agent_does_at_least_as_well_as_equal_split():
    equal_error, _ = _train('equal')
    calibrated_error, learned_fraction = _train('calibrated')
    assert equal_error < 9.0  # the equal split does learn something
    assert calibrated_error <= equal_error, (calibrated_error, equal_error)
    assert 0.0 < learned_fraction < 1.0  # both branches were taken


def test_unvalidated_reward_model_falls_back_to_equal_split():
    # Batch rewards that are pure noise: no reward model beats the constant on held-out
    # batches, so the instance rewards are the equal split R / B (still sum-preserving).
    gen = torch.Generator().manual_seed(1)
    agent = RLKDAgent(STATE_DIM, explore_updates=0, reward_window=16, seed=1)
    for _ in range(16):
        x = torch.rand(B, STATE_DIM, generator=gen)
        _, step = agent.act(x, torch.ones(B, dtype=torch.bool))
        agent.store(step, float(torch.randn(1, generator=gen)))
    stats = agent.update()
    assert stats['calibration_learned'] == 0.0 and stats['reward_model_r2'] <= 0.0
    assert not agent.uses_learned_calibration
    _, step = agent.act(torch.rand(10, STATE_DIM, generator=gen), torch.ones(10, dtype=torch.bool))
    torch.testing.assert_close(agent.calibrated_rewards(step, 2.5), torch.full((10,), 0.25))
    # The choice is saved with the agent.
    assert agent.state_dict()['calibration_learned'] == 0.0


def test_validated_reward_model_credits_instances_and_is_saved():
    # Batch reward = sum of feature 0 over the batch: easy to learn and to validate.
    gen = torch.Generator().manual_seed(2)
    agent = RLKDAgent(STATE_DIM, explore_updates=0, reward_window=16, seed=2)
    for _ in range(16):
        x = torch.rand(B, STATE_DIM, generator=gen)
        x[:, 0] = torch.randn(B, generator=gen)
        _, step = agent.act(x, torch.ones(B, dtype=torch.bool))
        agent.store(step, float(x[:, 0].sum()))
    stats = agent.update()
    assert stats['calibration_learned'] == 1.0 and stats['reward_model_r2'] > 0.5
    x = torch.rand(10, STATE_DIM, generator=gen)
    x[:, 0] = torch.linspace(-2, 2, 10)
    _, step = agent.act(x, torch.ones(10, dtype=torch.bool))
    r = agent.calibrated_rewards(step, 1.0)
    assert math.isclose(float(r.sum()), 1.0, abs_tol=1e-5)
    assert int(r.argmax()) == 9 and int(r.argmin()) == 0
    other = RLKDAgent(STATE_DIM, explore_updates=0, reward_window=16, seed=5)
    other.load_state_dict(agent.state_dict())
    assert other.uses_learned_calibration
    torch.testing.assert_close(other.calibrated_rewards(step, 1.0), r)
