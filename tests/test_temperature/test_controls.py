"""The controls behind the ``temperature`` key: RandomTemperature and RuleTemperature."""

import io
import math

import pytest
import torch

from rlkd_mm.registry import MODELS
from rlkd_mm.temperature import (
    FixedTemperature,
    RandomTemperature,
    RuleTemperature,
    TemperatureOutput,
)

N, C = 8, 5


def _logits(n=N, seed=0, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, C, generator=g) * scale


# --------------------------------------------------------------------------- RandomTemperature
def test_random_draws_lie_in_range_and_are_log_uniform():
    t_min, t_max, n = 0.5, 8.0, 20000
    policy = RandomTemperature(t_min=t_min, t_max=t_max, seed=0).train()
    out = policy(torch.zeros(n, C), torch.zeros(n, C))
    assert isinstance(out, TemperatureOutput) and out.t_student is out.t_teacher
    assert out.prefactor is None and out.weight is None and out.extra == ()
    t = out.t_student.double()
    assert bool(((t >= t_min) & (t <= t_max)).all())
    # u = (log T - log t_min) / (log t_max - log t_min) should be U(0, 1)
    u = (t.log() - math.log(t_min)) / (math.log(t_max) - math.log(t_min))
    assert float(u.mean()) == pytest.approx(0.5, abs=0.01)
    assert float(u.var()) == pytest.approx(1 / 12, abs=0.005)
    # Kolmogorov-Smirnov distance to the uniform CDF (critical value at 1 %: 1.63 / sqrt(n))
    sorted_u = u.sort().values
    grid = torch.arange(1, n + 1, dtype=torch.float64) / n
    ks = max(float((grid - sorted_u).abs().max()), float((sorted_u - (grid - 1 / n)).abs().max()))
    assert ks < 1.63 / math.sqrt(n)


def test_random_draws_differ_per_instance_and_per_call():
    policy = RandomTemperature(seed=3).train()
    s, t = _logits(), _logits(seed=1)
    first, second = policy(s, t).t_student, policy(s, t).t_student
    assert len(set(first.tolist())) == N
    assert not torch.equal(first, second)
    assert not first.requires_grad


def test_random_eval_is_the_geometric_mean():
    policy = RandomTemperature(t_min=1.0, t_max=9.0, seed=0).eval()
    for seed in range(3):
        t = policy(_logits(seed=seed), _logits(seed=seed + 10)).t_student
        assert t.tolist() == pytest.approx([3.0] * N)


def test_random_seed_defaults_to_the_run_seed():
    torch.manual_seed(1234)
    a = RandomTemperature()
    assert a.seed == 1234
    torch.manual_seed(1234)
    b = RandomTemperature()
    s, t = _logits(), _logits(seed=1)
    assert torch.equal(a(s, t).t_student, b(s, t).t_student)


def test_random_state_dict_round_trip_reproduces_the_next_draw():
    policy = RandomTemperature(t_min=1.0, t_max=5.0, seed=7).train()
    s, t = _logits(), _logits(seed=1)
    for _ in range(3):
        policy(s, t)
    buffer = io.BytesIO()
    torch.save(policy.state_dict(), buffer)
    expected = policy(s, t).t_student
    resumed = RandomTemperature(t_min=1.0, t_max=5.0, seed=99).train()
    buffer.seek(0)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    assert resumed.seed == 7
    assert torch.equal(resumed(s, t).t_student, expected)


def test_random_dtype_and_registration():
    policy = MODELS.build(dict(type='rlkd_mm.RandomTemperature', t_min=2.0, t_max=4.0, seed=0))
    assert isinstance(policy, RandomTemperature)
    out = policy(_logits().double(), _logits(seed=1).double())
    assert out.t_student.dtype == torch.float64
    with pytest.raises(ValueError, match='t_min'):
        RandomTemperature(t_min=3.0, t_max=2.0)


# --------------------------------------------------------------------------- RuleTemperature
@pytest.mark.parametrize('feature', ['teacher_gt_prob', 'teacher_margin'])
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_rule_power_zero_is_fixed_temperature_bitwise(feature, dtype):
    s, t = _logits().to(dtype), _logits(seed=1).to(dtype)
    labels = torch.randint(0, C, (N,))
    rule = RuleTemperature(temperature=2.5, power=0.0, feature=feature)(s, t, labels)
    fixed = FixedTemperature(temperature=2.5)(s, t, labels)
    assert rule.t_student.dtype == fixed.t_student.dtype == dtype
    assert torch.equal(rule.t_student, fixed.t_student)
    assert torch.equal(rule.t_teacher, fixed.t_teacher)
    assert rule.t_student is rule.t_teacher and fixed.t_student is fixed.t_teacher
    assert rule[2:] == fixed[2:] == (None, None, ())


def _expected_f(teacher, labels, feature):
    """The teacher's probability of the label, or its top-1 minus top-2 probability, per row."""
    out = []
    for i in range(teacher.shape[0]):
        row = [math.exp(v) for v in teacher[i].tolist()]
        total = sum(row)
        probs = sorted((v / total for v in row), reverse=True)
        if feature == 'teacher_gt_prob':
            out.append(row[int(labels[i])] / total)
        else:
            out.append(probs[0] - probs[1])
    return out


@pytest.mark.parametrize('feature', ['teacher_gt_prob', 'teacher_margin'])
@pytest.mark.parametrize('power', [0.5, 1.0, -0.5])
def test_rule_value_and_direction(feature, power):
    s, t = _logits(), _logits(seed=1, scale=2.0)
    labels = t.argmax(dim=1)  # confident-or-not teacher, right by construction
    policy = RuleTemperature(
        temperature=2.0, power=power, feature=feature, t_min=1e-3, t_max=1e3, f_min=1e-6
    )
    out = policy(s.requires_grad_(), t, labels)
    f = _expected_f(t, labels, feature)
    expected = [2.0 * v**power for v in f]
    assert out.t_student.tolist() == pytest.approx(expected, rel=1e-5)
    assert out.t_student is out.t_teacher and not out.t_student.requires_grad
    # monotone in f: up for k > 0, down for k < 0
    order = sorted(range(N), key=lambda i: f[i])
    temps = [float(out.t_student[i]) for i in order]
    pairs = list(zip(temps, temps[1:]))
    assert all(a <= b for a, b in pairs) if power > 0 else all(a >= b for a, b in pairs)


def test_rule_clamps_and_floors_f_and_falls_back_to_the_teachers_class():
    t = torch.tensor([[10.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    s = torch.zeros(3, 3)
    policy = RuleTemperature(temperature=1.0, power=-1.0, feature='teacher_margin', t_max=5.0)
    t_rule = policy(s, t).t_student
    # margin ~1 -> T ~ 1; margin 0 -> f_min -> 1000, clamped to t_max
    assert float(t_rule[0]) == pytest.approx(1.0, abs=1e-3)
    assert t_rule[1:].tolist() == [5.0, 5.0]
    # without labels, 'teacher_gt_prob' is the teacher's top probability
    policy = RuleTemperature(temperature=1.0, power=1.0, t_min=0.1)
    no_labels = policy(s, t).t_student
    with_top = policy(s, t, t.argmax(dim=1)).t_student
    assert torch.equal(no_labels, with_top)


@pytest.mark.parametrize(
    'kwargs, match',
    [
        (dict(temperature=30.0), 'temperature'),
        (dict(feature='student_margin'), 'feature'),
        (dict(f_min=0.0), 'f_min'),
        (dict(t_min=2.0, t_max=1.0), 't_min'),
        (dict(power=float('inf')), 'power'),
    ],
)
def test_rule_invalid_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RuleTemperature(**kwargs)


def test_rule_registered_and_sigmoid_scores():
    policy = MODELS.build(
        dict(type='rlkd_mm.RuleTemperature', power=1.0, score_type='sigmoid', temperature=2.0)
    )
    t = torch.tensor([[3.0, -2.0], [-1.0, -4.0]])
    labels = torch.tensor([0, 1])
    out = policy(torch.zeros(2, 2), t, labels).t_student
    expected = [2.0 / (1 + math.exp(-3.0)), 2.0 / (1 + math.exp(4.0))]
    expected = [max(v, policy.t_min) for v in expected]
    assert out.tolist() == pytest.approx(expected, rel=1e-5)
