"""Reward model and instance reward calibration."""

import pytest
import torch

from rlkd_mm.agent import RewardModel, calibrate_rewards


def test_calibration_is_sum_preserving():
    for batch in (1, 3, 257):
        g = torch.randn(batch) * 5
        for reward in (-3.7, 0.0, 12.25):
            r = calibrate_rewards(g, reward)
            assert abs(float(r.sum()) - reward) < 1e-5 * max(1.0, batch / 50)
            # Every instance gets the same share of the residual: credit order is kept.
            torch.testing.assert_close(r - g, torch.full_like(g, float(r[0] - g[0])))


def test_calibration_rejects_empty():
    with pytest.raises(ValueError, match='contributions'):
        calibrate_rewards(torch.zeros(0), 1.0)


def test_batch_loss_matches_per_batch_sums():
    model = RewardModel(4, 8)
    torch.nn.init.normal_(model.net[-1].weight)
    states, actions = torch.randn(7, 4), torch.rand(7)
    batch_index = torch.tensor([0, 0, 1, 1, 1, 2, 2])
    rewards = torch.tensor([0.5, -1.0, 2.0])
    g = model(states, actions)
    expected = sum((g[batch_index == b].sum() - rewards[b]) ** 2 for b in range(3)) / 3
    torch.testing.assert_close(model.batch_loss(states, actions, batch_index, rewards), expected)


def test_calibration_credits_a_planted_instance():
    # Batch reward = 1 when the batch holds the one instance with feature 0 > 0, else 0: only a
    # model that learned to recognise the instance can explain the rewards.
    gen = torch.Generator().manual_seed(0)
    batch, dim, num_batches = 8, 4, 64
    states = torch.rand(num_batches, batch, dim, generator=gen)
    states[..., 0] = -states[..., 0] - 0.1
    planted = torch.rand(num_batches, generator=gen) < 0.5
    slot = torch.randint(0, batch, (num_batches,), generator=gen)
    states[planted, slot[planted], 0] = 1.0
    rewards = planted.float()
    actions = torch.rand(num_batches, batch, generator=gen)
    model = RewardModel(dim, 32)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    index = torch.arange(num_batches).repeat_interleave(batch)
    for _ in range(300):
        loss = model.batch_loss(states.reshape(-1, dim), actions.reshape(-1), index, rewards)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 1e-2
    # A fresh batch with the planted instance at slot 5, reward 1.
    test_states = -torch.rand(batch, dim, generator=gen) - 0.1
    test_states[5, 0] = 1.0
    with torch.no_grad():
        r = calibrate_rewards(model(test_states, torch.rand(batch, generator=gen)), 1.0)
    assert int(r.argmax()) == 5
    assert float(r[5]) > 0.5 and abs(float(r.sum()) - 1.0) < 1e-5
