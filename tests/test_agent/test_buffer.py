"""Rollout storage."""

import pytest
import torch

from rlkd_mm.agent import AgentStep, RolloutBuffer, Transition


def _step(n, d=3, offset=0.0):
    return AgentStep(
        states=torch.randn(n, d) + offset,
        raw_states=torch.randn(n, d),
        actions=torch.randn(n),
        log_probs=torch.randn(n),
        values=torch.randn(n),
        hq_mask=torch.rand(n) > 0.5,
        temperatures=torch.rand(n) + 1,
    )


def test_step_cat_keeps_order():
    a, b = _step(2), _step(3)
    c = AgentStep.cat([a, b])
    assert c.num == 5
    torch.testing.assert_close(c.actions, torch.cat([a.actions, b.actions]))
    assert c.hq_mask.dtype == torch.bool
    torch.testing.assert_close(c.states[2:], b.states)


def test_transition_round_trip():
    t = Transition(_step(4), -0.5, torch.randn(2, 3), None)
    back = Transition.from_dict(t.to_dict())
    assert back.batch_reward == -0.5 and back.instance_rewards is None
    torch.testing.assert_close(back.next_states, t.next_states)
    torch.testing.assert_close(back.step.log_probs, t.step.log_probs)


def test_buffer_is_bounded_fifo():
    buf = RolloutBuffer(3)
    for k in range(5):
        buf.append(Transition(_step(2), float(k)))
    assert len(buf) == 3
    assert [t.batch_reward for t in buf.transitions()] == [2.0, 3.0, 4.0]
    other = RolloutBuffer(3)
    other.load_state_dict(buf.state_dict())
    assert [t.batch_reward for t in other.transitions()] == [2.0, 3.0, 4.0]
    torch.testing.assert_close(
        other.transitions()[0].step.actions, buf.transitions()[0].step.actions
    )
    buf.clear()
    assert len(buf) == 0


def test_buffer_capacity_validated():
    with pytest.raises(ValueError, match='buffer_size'):
        RolloutBuffer(0)
