"""RLTemperature: the RLKD policy adapter."""

import math

import pytest
import torch
from torch import nn

from rlkd_mm.agent import STATE_DIM, high_quality_mask
from rlkd_mm.registry import MODELS
from rlkd_mm.temperature import RLTemperature
from rlkd_mm.temperature.rl import DUMP_COLUMNS


def _inputs(n=6, c=5):
    return torch.randn(n, c), torch.randn(n, c) * 3, torch.randint(0, c, (n,))


def _acting_policy(**kwargs):
    policy = RLTemperature(**kwargs)
    policy.train()
    policy.acting = True
    return policy


def test_build_from_registry():
    policy = MODELS.build(
        dict(
            type='rlkd_mm.RLTemperature',
            t_min=2.0,
            t_max=8.0,
            t_init=3.0,
            agent=dict(lr=1e-3, gamma=0.5),
        )
    )
    assert isinstance(policy, RLTemperature)
    assert policy.agent.gamma == 0.5 and policy.agent.t_max == 8.0


def test_warmup_and_eval_give_constant_temperature():
    policy = RLTemperature(warmup_temperature=3.5)
    s, t, gt = _inputs()
    policy.train()  # acting not enabled yet: warm-up
    with pytest.warns(UserWarning, match='RLKDHook'):  # nothing drives the policy
        ts, tt = policy(s, t, gt).temperatures
    assert torch.equal(ts, torch.full((6,), 3.5)) and ts is tt
    policy.acting = True
    policy.eval()
    ts, _ = policy(s.double(), t.double(), None).temperatures  # gt not needed in eval
    assert ts.dtype == torch.float64
    assert torch.equal(ts, torch.full((6,), 3.5, dtype=torch.float64))
    assert policy.pop_pending() is None


def test_acting_returns_bounded_detached_temperatures_and_keeps_pending():
    policy = _acting_policy(t_min=1.0, t_max=10.0)
    s, t, gt = _inputs()
    s.requires_grad_(True)
    ts, tt = policy(s, t, gt).temperatures
    assert ts is tt and ts.shape == (6,) and not ts.requires_grad
    assert (ts >= 1).all() and (ts <= 10).all()
    s2, t2, gt2 = _inputs(3)
    ts2, _ = policy(s2, t2, gt2).temperatures  # second call in the same iteration: concatenated
    step = policy.pop_pending()
    assert step.num == 9 and step.states.shape == (9, STATE_DIM)
    torch.testing.assert_close(step.temperatures, torch.cat([ts, ts2]))
    assert policy.pop_pending() is None


@pytest.mark.parametrize('score_type', ['softmax', 'sigmoid'])
def test_high_quality_instances_follow_high_quality_mask(score_type):
    policy = _acting_policy(score_type=score_type, hq_tau=0.4)
    s, t, gt = _inputs(64)
    t[:32] = t[:32] + 6 * torch.nn.functional.one_hot(gt[:32], 5)  # many confident teachers
    ts, _ = policy(s, t, gt).temperatures
    assert torch.isfinite(ts).all()
    step = policy.pop_pending()
    expected = high_quality_mask(t, gt, 0.4, score_type)
    assert expected.any() and not expected.all()
    assert torch.equal(step.hq_mask, expected)


def test_agent_is_outside_the_module_tree():
    policy = RLTemperature()
    holder = nn.Sequential(nn.Linear(3, 3), policy)
    holder_params = {id(p) for p in holder.parameters()}
    assert all(id(p) not in holder_params for p in policy.agent.parameters())
    assert list(policy.parameters()) == [] and len(policy.state_dict()) == 0
    assert not any('agent' in k for k in holder.state_dict())
    assert list(policy.children()) == []


def test_gt_labels_required_when_acting():
    policy = _acting_policy()
    s, t, _ = _inputs()
    with pytest.raises(ValueError, match='gt_labels'):
        policy(s, t, None)


def test_empty_batch_is_counted_and_not_recorded():
    policy = _acting_policy()
    ts, tt = policy(
        torch.zeros(0, 5), torch.zeros(0, 5), torch.zeros(0, dtype=torch.long)
    ).temperatures
    assert ts.shape == (0,) and tt.shape == (0,)
    assert policy.num_empty_batches == 1 and policy.pop_pending() is None


def test_non_finite_states_are_not_acted_on_nor_stored():
    policy = _acting_policy()
    policy.iteration = 17
    s, t, gt = _inputs()
    s[2, 1] = float('nan')
    with pytest.warns(UserWarning, match='iteration 17'):
        ts, tt = policy(s, t, gt).temperatures
    # the whole batch keeps the warm-up temperature (its optimizer step is skipped anyway)
    assert torch.equal(ts, torch.full_like(ts, policy.warmup_temperature)) and torch.equal(ts, tt)
    assert policy.pop_pending() is None and len(policy.agent.buffer) == 0
    assert policy.num_nonfinite_batches == 1


@pytest.mark.parametrize(
    'kwargs, key',
    [
        (dict(t_min=0.0), 't_min'),
        (dict(t_min=5.0, t_max=4.0), 't_max'),
        (dict(t_init=12.0), 't_init'),
        (dict(warmup_temperature=0.0), 'warmup_temperature'),
        (dict(score_type='softplus'), 'score_type'),
        (dict(dump_size=-1), 'dump_size'),
        (dict(agent=dict(t_min=2.0)), 'agent.t_min'),
        (dict(agent=dict(gamma=2.0)), 'gamma'),
        (dict(hq_tau=1.5), 'hq_tau'),
    ],
)
def test_invalid_settings_name_the_key(kwargs, key):
    with pytest.raises(ValueError, match=key):
        RLTemperature(**kwargs)


def test_dump_is_a_bounded_ring_buffer_in_order():
    policy = _acting_policy(dump_size=5)
    assert policy.dump().shape == (0, len(DUMP_COLUMNS))
    temps = []
    for it, n in enumerate((3, 4, 1)):
        policy.iteration = it
        s, t, gt = _inputs(n)
        ts, _ = policy(s, t, gt).temperatures
        temps.append(ts)
    dump = policy.dump()
    assert dump.shape == (5, len(DUMP_COLUMNS))
    torch.testing.assert_close(dump[:, 1], torch.cat(temps)[-5:])
    assert dump[:, 0].tolist() == [1.0, 1.0, 1.0, 1.0, 2.0]
    # Saved and restored with the rest of the RL state.
    other = RLTemperature(dump_size=5)
    other.load_rl_state_dict(policy.rl_state_dict())
    torch.testing.assert_close(other.dump(), dump)
    assert other.num_empty_batches == policy.num_empty_batches


def test_progress_state_stays_informative_after_many_updates():
    from rlkd_mm.agent.state import STATE_NAMES

    col = STATE_NAMES.index('progress')
    policy = _acting_policy()
    agent = policy.agent
    # Many updates of the running statistics during a run whose progress grows.
    gen = torch.Generator().manual_seed(0)
    for k in range(300):
        x = torch.rand(64, STATE_DIM, generator=gen)
        x[:, col] = k / 300
        agent.norm.update(x)
    s, t, gt = _inputs()
    columns = []
    for progress in (0.1, 0.9):
        policy.progress = progress
        policy(s, t, gt)
        columns.append(policy.pop_pending().states[:, col])
    torch.testing.assert_close(columns[0], torch.full((6,), -0.8))
    torch.testing.assert_close(columns[1], torch.full((6,), 0.8))


def test_deterministic_policy_takes_the_mean_action():
    policy = _acting_policy(deterministic=True)
    assert policy.deterministic
    s, t, gt = _inputs(32)
    t1, _ = policy(s, t, gt).temperatures
    step = policy.pop_pending()
    t2, _ = policy(s, t, gt).temperatures
    assert torch.equal(t1, t2)
    mu, _ = policy.agent.net(step.states)
    torch.testing.assert_close(t1, policy.agent.net.squash(mu).detach())
    assert not step.explored.any()
    # Switching the attribute back gives sampled actions.
    policy.deterministic = False
    t3, _ = policy(s, t, gt).temperatures
    assert not torch.equal(t1, t3)
    with pytest.raises(TypeError, match='deterministic'):
        RLTemperature(deterministic=1)


def test_reward_record_keeps_noise_and_teacher_confidence():
    from rlkd_mm.agent.state import STATE_NAMES
    from rlkd_mm.temperature.rl import REWARD_RECORD_COLUMNS

    policy = _acting_policy(dump_size=8)
    policy.agent.explore_updates = 0  # no exploration phase: every instance explores
    s, t, gt = _inputs(6)
    temps, _ = policy(s, t, gt).temperatures
    step = policy.pop_pending()
    rewards = torch.arange(6.0)
    signal = policy.record_rewards(temps, rewards, step)
    record = policy.reward_record()
    # the batch's action signal: mean of noise x centred reward over the explored instances
    z = policy.agent.exploration_noise(step)
    assert signal == pytest.approx(float((z * (rewards - 2.5)).mean()), rel=1e-6)
    assert record.shape == (6, len(REWARD_RECORD_COLUMNS))
    torch.testing.assert_close(record[:, 0], temps)
    torch.testing.assert_close(record[:, 1], rewards - 2.5)
    torch.testing.assert_close(record[:, 2], policy.agent.exploration_noise(step))
    assert torch.isfinite(record[:, 2]).all()
    conf = step.raw_states[:, STATE_NAMES.index('teacher_gt_prob')]
    torch.testing.assert_close(record[:, 3], conf)
    torch.testing.assert_close(conf, torch.softmax(t, 1)[torch.arange(6), gt])
    # without the step the extra columns are NaN; a record of the older two-column form loads
    assert math.isnan(policy.record_rewards(temps[:2], rewards[:2]))
    assert torch.isnan(policy.reward_record()[-2:, 2:]).all()
    assert policy.reward_record().shape == (8, 4)
    state = policy.rl_state_dict()
    state['reward_record'] = state['reward_record'][:, :2]
    other = RLTemperature(dump_size=8)
    other.load_rl_state_dict(state)
    assert other.reward_record().shape == (8, 4)
    assert torch.isnan(other.reward_record()[:, 2:]).all()
    torch.testing.assert_close(other.reward_record()[:, :2], policy.reward_record()[:, :2])
