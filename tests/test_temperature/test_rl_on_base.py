"""RLKD on a base policy: a per-instance multiplier of every temperature the base uses, exactly
the base while untrained; the agent's log-space squash and its counterfactual experience."""

import math

import pytest
import torch
import torch.nn.functional as F

from rlkd_mm.agent import STATE_DIM, STATE_NAMES, ActorCritic, RLKDAgent
from rlkd_mm.engine.rewards import CounterfactualReward, build_reward
from rlkd_mm.temperature import RLTemperature, TemperatureOutput
from rlkd_mm.temperature.rl import BASE_STATE_NAMES, base_state

BASES = dict(
    fixed=dict(type='rlkd_mm.FixedTemperature', temperature=0.5),
    logitstd=dict(type='rlkd_mm.LogitStdTemperature', base_temperature=2.0),
    dtkd=dict(type='rlkd_mm.DTKDTemperature', base_temperature=4.0),
    cist=dict(type='rlkd_mm.CISTTemperature'),
)


def _batch(n=32, c=10, seed=0):
    gen = torch.Generator().manual_seed(seed)
    z_s = torch.randn(n, c, generator=gen) * torch.rand(n, 1, generator=gen) * 4
    z_t = torch.randn(n, c, generator=gen) * 3
    y = torch.randint(0, c, (n,), generator=gen)
    z_t[torch.arange(n), y] += 4
    return z_s, z_t, y


def _acting(policy):
    policy.train()
    policy.driven, policy.acting = True, True
    return policy


def _terms(out):
    return [(t.t_student, t.t_teacher, t.weight, t.prefactor) for t in TemperatureOutput.terms(out)]


# ---------------------------------------------------------------------- the agent's log squash
def test_log_squash_is_exactly_t_init_at_initialisation_and_stays_in_range():
    net = ActorCritic(STATE_DIM, t_min=0.5, t_max=2.0, t_init=1.0, squash='log')
    mu, _ = net(torch.randn(100, STATE_DIM) * 5)
    assert torch.equal(net.squash(mu), torch.ones(100))  # bit for bit
    a = torch.tensor([-1e4, -3.0, -0.5, 0.0, 0.5, 3.0, 1e4])
    t = net.squash(a)
    assert t[0] == 0.5 and t[-1] == 2.0 and t[3] == 1.0
    assert bool((t[1:] >= t[:-1]).all())  # monotone
    # log space: symmetric actions give reciprocal multipliers
    torch.testing.assert_close(t[2] * t[4], torch.tensor(1.0))
    inner = torch.tensor([-2.0, -0.3, 0.2, 1.5])
    torch.testing.assert_close(net.unsquash(net.squash(inner)), inner, atol=1e-4, rtol=0)


def test_log_squash_density_matches_numerical_density():
    net = ActorCritic(STATE_DIM, t_min=0.25, t_max=3.0, t_init=1.0, squash='log').double()
    with torch.no_grad():
        net.actor[-1].weight.normal_(std=0.5)
    s = torch.randn(3, STATE_DIM, dtype=torch.float64)
    h = 1e-6
    # away from T = t_init, where an asymmetric range has a kink
    t = torch.linspace(0.3, 2.9, 26, dtype=torch.float64)
    with torch.no_grad():
        mu, _ = net(s)
        for i in range(3):
            normal = torch.distributions.Normal(mu[i], net.std)
            # T increases with the action: P(T <= x) = Phi((a(x) - mu) / sigma)
            upper, lower = normal.cdf(net.unsquash(t + h)), normal.cdf(net.unsquash(t - h))
            numeric = (upper - lower) / (2 * h)
            dens = net.log_prob_of_temperature(s[i].expand(len(t), -1), t).exp()
            torch.testing.assert_close(dens, numeric, rtol=1e-4, atol=1e-8)


# ---------------------------------------------------------------------- the policy on a base
@pytest.mark.parametrize('name', list(BASES))
def test_untrained_deterministic_agent_reproduces_its_base_bit_for_bit(name):
    z_s, z_t, y = _batch()
    torch.manual_seed(0)
    policy = _acting(RLTemperature(base=BASES[name], deterministic=True))
    base = policy.base
    out = policy(z_s, z_t, y)
    expected = base(z_s, z_t, y)
    for got, want in zip(_terms(out), _terms(expected)):
        for g, w in zip(got, want):
            assert (g is None) == (w is None)
            if g is not None:
                assert torch.equal(g, w)
    step = policy.pop_pending()
    assert step.num == 32 and torch.equal(step.temperatures, torch.ones(32))
    assert step.raw_states.shape == (32, STATE_DIM + len(BASE_STATE_NAMES))


def test_multipliers_scale_every_temperature_and_the_prefactor_by_a_squared():
    z_s, z_t, y = _batch()
    policy = RLTemperature(base=BASES['dtkd'])
    a = torch.linspace(0.5, 2.0, 32)
    base_out = policy.base(z_s, z_t, y)
    out = policy.candidate_outputs(z_s, z_t, y, a)
    for got, want in zip(TemperatureOutput.terms(out), TemperatureOutput.terms(base_out)):
        torch.testing.assert_close(got.t_student, want.t_student * a)
        torch.testing.assert_close(got.t_teacher, want.t_teacher * a)
        if want.prefactor is None:
            assert got.prefactor is None  # the loss's T_s T_t of the scaled pair: a^2 T_s T_t
        else:
            torch.testing.assert_close(got.prefactor, want.prefactor * a * a)
    assert len(out.extra) == len(base_out.extra) == 1  # DTKD's vanilla-KD term at a * tau
    cist = RLTemperature(base=BASES['cist'])
    w_out = cist.candidate_outputs(z_s, z_t, y, a)
    assert torch.equal(w_out.weight, cist.base(z_s, z_t, y).weight)  # weights unchanged


def test_base_state_columns_against_an_independent_formula():
    z_s, z_t, y = _batch(8)
    out = TemperatureOutput(torch.full((8,), 2.0), torch.full((8,), 3.0))
    cols = base_state(z_s, z_t, out, 'softmax')
    p_t = F.softmax(z_t / 3.0, dim=1)
    kl = (p_t * (F.log_softmax(z_t / 3.0, dim=1) - F.log_softmax(z_s / 2.0, dim=1))).sum(1)
    torch.testing.assert_close(cols[:, 0], torch.full((8,), math.log(2.0)))
    torch.testing.assert_close(cols[:, 1], torch.full((8,), math.log(3.0)))
    torch.testing.assert_close(cols[:, 2], 6.0 * kl)
    policy = RLTemperature(base=BASES['fixed'])
    assert policy.state_names == STATE_NAMES + BASE_STATE_NAMES
    assert policy.agent.state_dim == STATE_DIM + 3


def test_eval_and_warmup_use_the_base_itself():
    z_s, z_t, y = _batch()
    policy = RLTemperature(base=BASES['logitstd'])
    policy.train()
    policy.driven = True  # warm-up: not acting yet
    out = policy(z_s, z_t, y)
    assert torch.equal(out.t_student, policy.base(z_s, z_t, y).t_student)
    assert policy.pop_pending() is None
    count, total, _ = policy.pop_warmup_moments()
    assert int(count) == 32 and total.shape == (STATE_DIM + 3,)
    policy.eval()
    assert torch.equal(policy(z_s, z_t, y).t_teacher, policy.base(z_s, z_t, y).t_teacher)


def test_base_mode_settings_are_checked():
    with pytest.raises(ValueError, match=r"remove \['t_max', 't_min'\]"):
        RLTemperature(base=BASES['fixed'], t_min=1.0, t_max=3.0)
    with pytest.raises(ValueError, match='a_min=1.2, a_max=2.0'):
        RLTemperature(base=BASES['fixed'], a_min=1.2)
    with pytest.raises(ValueError, match='agent.squash is set by RLTemperature'):
        RLTemperature(base=BASES['fixed'], agent=dict(squash='linear'))
    # without a base: RLKD as published, the absolute range and its defaults
    plain = RLTemperature()
    assert (plain.t_min, plain.t_max, plain.warmup_temperature) == (1.0, 10.0, 4.0)
    assert plain.agent.state_dim == STATE_DIM and plain.reference_action == 4.0
    assert RLTemperature(base=BASES['fixed']).reference_action == 1.0


# ---------------------------------------------------------------------- counterfactual experience
def test_counterfactual_step_samples_from_the_acting_policy():
    agent = RLKDAgent(STATE_DIM, t_min=0.5, t_max=2.0, t_init=1.0, squash='log', seed=3)
    states = torch.randn(16, STATE_DIM)
    hq = torch.rand(16) > 0.5
    _, step = agent.act(states, hq)  # phase 0: only high-quality instances explored
    big = agent.counterfactual_step(step, 4)
    assert big.num == 64
    assert torch.equal(big.actions[:16], step.actions)  # the taken actions first
    assert torch.equal(big.explored[:16], hq) and bool(big.explored[16:].all())
    assert torch.equal(big.raw_states, step.raw_states.repeat(4, 1))
    mu, _ = agent.net(big.states)
    torch.testing.assert_close(big.log_probs, agent.net.distribution(mu).log_prob(big.actions))
    torch.testing.assert_close(big.temperatures, agent.net.squash(big.actions))
    assert float(big.actions[16:].std()) > 0.1  # sampled, not the mean


def test_bandit_rows_are_their_own_advantages(monkeypatch):
    agent = RLKDAgent(STATE_DIM, seed=0, minibatch_size=64, gamma=0.9)
    _, step = agent.act(torch.randn(32, STATE_DIM), torch.ones(32, dtype=torch.bool))
    rewards = torch.randn(32)
    seen = {}

    def optimise(steps, advantages, returns, weights, exploring):
        seen.update(advantages=advantages, returns=returns)
        return {}

    monkeypatch.setattr(agent.ppo, 'optimise', optimise)
    agent.store(step, float(rewards.sum()), torch.randn(8, STATE_DIM), rewards, advantages=True)
    agent.update()
    scaled = rewards / agent.reward_scale.scale()
    torch.testing.assert_close(seen['returns'], scaled)  # no bootstrap
    centred = scaled - scaled.mean()  # no critic baseline, then PPO's normalisation
    torch.testing.assert_close(
        seen['advantages'], centred / (centred.pow(2).mean().sqrt() + 1e-8), rtol=1e-5, atol=1e-6
    )
    with pytest.raises(ValueError, match='advantages=True needs instance_rewards'):
        agent.store(step, 0.0, advantages=True)


def test_counterfactual_rewards_are_leave_one_out():
    class Scored(CounterfactualReward):
        def score(self, model, kept, actions, policy):
            return actions * 10.0  # a known score per action

    unit = Scored(num_samples=3)
    policy = RLTemperature(base=BASES['fixed'], agent=dict(seed=1))
    _acting(policy)
    z_s, z_t, y = _batch(8)
    policy(z_s, z_t, y)
    step = policy.pop_pending()
    big, rewards = unit.measure_step(None, dict(kept=True), step, policy)
    assert big.num == 24 and rewards.shape == (24,)
    scores = (big.temperatures * 10.0).reshape(3, 8)
    for k in range(3):
        others = torch.cat([scores[:k], scores[k + 1 :]]).mean(dim=0)
        torch.testing.assert_close(rewards.reshape(3, 8)[k], scores[k] - others)
    torch.testing.assert_close(rewards.reshape(3, 8).sum(dim=0), torch.zeros(8), atol=1e-5, rtol=0)
    assert unit.advantages and unit.measure_step(None, None, step, policy) == (step, None)


def test_counterfactual_needs_a_quiz_split_and_a_capable_distiller():
    unit = build_reward('counterfactual')
    with pytest.raises(ValueError, match='needs a quiz split held out of the training set'):
        unit.setup(None, None, None)

    class NoGrads:
        reward_items = ('task_loss', 'instance_losses')

    with pytest.raises(TypeError, match=r"cannot keep \['candidate_grads'\]"):
        unit.check(NoGrads())
    with pytest.raises(ValueError, match='num_samples must be an int >= 2, got num_samples=1'):
        build_reward(dict(type='counterfactual', num_samples=1))


def test_shuffled_states_control_acts_on_other_instances_states():
    z_s, z_t, y = _batch()
    plain = _acting(RLTemperature(base=BASES['fixed'], agent=dict(seed=2)))
    shuffled = _acting(RLTemperature(base=BASES['fixed'], agent=dict(seed=2), shuffle_states=True))
    plain(z_s, z_t, y)
    shuffled(z_s, z_t, y)
    a, b = plain.pop_pending().raw_states, shuffled.pop_pending().raw_states
    assert not torch.equal(a, b)
    # the same rows, in another order
    assert torch.equal(a[a[:, 0].argsort()], b[b[:, 0].argsort()])
    state = shuffled.rl_state_dict()
    first = shuffled._shuffle_generator.get_state()
    torch.randperm(5, generator=shuffled._shuffle_generator)
    shuffled.load_rl_state_dict(state)
    assert torch.equal(shuffled._shuffle_generator.get_state(), first)


def test_class_temperature_reads_the_label():
    from rlkd_mm.temperature import ClassTemperature

    policy = ClassTemperature([7, 1], temperature=0.25, default=0.5)
    z = torch.zeros(4, 10)
    out = policy(z, z, torch.tensor([1, 2, 7, 9]))
    assert torch.equal(out.t_student, torch.tensor([0.25, 0.5, 0.25, 0.5]))
    assert out.t_student is out.t_teacher and out.prefactor is None
    assert torch.equal(policy(z, z).t_student, torch.full((4,), 0.5))  # no labels: the default
    with pytest.raises(ValueError, match='both temperatures > 0'):
        ClassTemperature([1], temperature=0.0, default=1.0)
