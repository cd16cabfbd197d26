"""Peer temperature policies: Fixed, CTKD, logit standardisation (both variants), DTKD.

The faithful objectives against the authors' formulas: ``test_faithful_peers.py``.
"""

import math

import pytest
import torch

from rlkd_mm.models.losses import InstanceKDLoss
from rlkd_mm.registry import MODELS
from rlkd_mm.temperature import (
    CTKDTemperature,
    DTKDTemperature,
    FixedTemperature,
    LogitStdTemperature,
    RandomTemperature,
    RuleTemperature,
    ScaledLogitStdTemperature,
    TemperatureOutput,
    gradient_reversal,
)

N, C = 5, 7


def _logits(n=N, scale=3.0):
    return torch.randn(n, C) * scale


POLICIES = {
    'fixed': lambda: FixedTemperature(temperature=4.0),
    'ctkd_global': lambda: CTKDTemperature(mode='global'),
    'ctkd_instance': lambda: CTKDTemperature(mode='instance', num_classes=C, hidden_dim=16),
    'logit_std': lambda: LogitStdTemperature(),
    'logit_std_scaled': lambda: ScaledLogitStdTemperature(),
    'dtkd': lambda: DTKDTemperature(),
    'random': lambda: RandomTemperature(),
    'rule': lambda: RuleTemperature(power=1.0),
}


@pytest.mark.parametrize('name', list(POLICIES))
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_output_shapes_and_dtype(name, dtype):
    policy = POLICIES[name]().to(dtype)
    out = policy(_logits().to(dtype), _logits().to(dtype), torch.randint(0, C, (N,)))
    assert isinstance(out, TemperatureOutput)
    for term in out.terms():
        assert term.prefactor is None or term.prefactor.shape == (N,)
    t_s, t_t = out.temperatures
    for t in (t_s, t_t):
        assert t.shape == (N,) and t.dtype == dtype
        assert (t > 0).all() and torch.isfinite(t).all()
    # The same call without labels, and with no instances.
    policy(_logits().to(dtype), _logits().to(dtype))
    t_s, t_t = policy(_logits(0).to(dtype), _logits(0).to(dtype)).temperatures
    assert t_s.shape == (0,) and t_t.shape == (0,)


@pytest.mark.parametrize('name', list(POLICIES))
def test_mismatched_logits_raise(name):
    with pytest.raises(ValueError, match='student_logits and teacher_logits'):
        POLICIES[name]()(_logits(), _logits(N + 1))


@pytest.mark.parametrize('name', list(POLICIES))
def test_registered_in_models(name):
    policy = POLICIES[name]()
    extra = dict(mode='instance', num_classes=C) if name == 'ctkd_instance' else {}
    built = MODELS.build(dict(type=type(policy).__name__, **extra))
    assert type(built) is type(policy)


# ---------------------------------------------------------------------------------------------
# Fixed


def test_fixed_is_the_constant_and_detached():
    s = _logits().requires_grad_()
    t_s, t_t = FixedTemperature(temperature=2.5)(s, _logits()).temperatures
    assert t_s is t_t
    assert t_s.tolist() == [2.5] * N and not t_s.requires_grad


@pytest.mark.parametrize('bad', [0, -1.0, float('nan')])
def test_fixed_non_positive_raises(bad):
    with pytest.raises(ValueError, match='temperature'):
        FixedTemperature(temperature=bad)


def test_fixed_non_number_raises():
    with pytest.raises(TypeError, match='temperature'):
        FixedTemperature(temperature='4')


# ---------------------------------------------------------------------------------------------
# CTKD


def _expected_lambda(step, ramp_iters, lambda_max):
    return lambda_max * (1 - math.cos(math.pi * min(step / ramp_iters, 1))) / 2


def test_gradient_reversal_function():
    x = torch.randn(4, requires_grad=True)
    y = gradient_reversal(x, 0.3)
    torch.testing.assert_close(y, x)
    g = torch.randn(4)
    y.backward(g)
    torch.testing.assert_close(x.grad, -0.3 * g)
    x.grad = None
    gradient_reversal(x, torch.tensor(2.0)).backward(g)
    torch.testing.assert_close(x.grad, -2.0 * g)


@pytest.mark.parametrize('mode', ['global', 'instance'])
def test_ctkd_initial_temperature_and_range(mode):
    policy = CTKDTemperature(mode=mode, t_min=1.0, t_max=21.0, t_init=4.0, num_classes=C)
    t_s, t_t = policy(_logits(scale=10.0), _logits(scale=10.0)).temperatures
    assert t_s is t_t
    torch.testing.assert_close(t_s.detach(), torch.full((N,), 4.0), atol=1e-5, rtol=0)
    # Push theta to both extremes: T stays inside [t_min, t_max].
    for value in (-50.0, 50.0):
        with torch.no_grad():
            for p in policy.parameters():
                p.fill_(value)
        t = policy(_logits(scale=10.0), _logits(scale=10.0))[0].detach()
        assert ((t >= 1.0) & (t <= 21.0)).all()
        assert t.sub(1.0 if value < 0 else 21.0).abs().max() < 1e-3


def test_ctkd_lambda_ramp_follows_cosine_formula():
    policy = CTKDTemperature(ramp_iters=8, lambda_max=0.7)
    s, t = _logits(), _logits()
    seen = []
    for _ in range(12):
        seen.append(policy.grl_lambda().item())
        policy(s, t)
    expected = [_expected_lambda(k, 8, 0.7) for k in range(12)]
    assert seen == pytest.approx(expected, abs=1e-6)
    assert (
        seen[0] == 0.0 and seen[4] == pytest.approx(0.35) and seen[8:] == [pytest.approx(0.7)] * 4
    )
    assert CTKDTemperature(ramp_iters=0, lambda_max=0.5).grl_lambda().item() == 0.5


def test_ctkd_lambda_scales_the_reversed_gradient():
    policy = CTKDTemperature(ramp_iters=4, lambda_max=1.0)
    s, t = _logits(), _logits()
    grads = []
    for _ in range(6):
        policy.zero_grad()
        policy(s, t)[0].sum().backward()
        grads.append(policy.theta.grad.item())
    # dT/dtheta at init is constant (theta unchanged), so the grads follow -lambda_k.
    dt_dtheta = 20.0 * (3.0 / 20.0) * (17.0 / 20.0)
    expected = [-N * dt_dtheta * _expected_lambda(k, 4, 1.0) for k in range(6)]
    assert grads == pytest.approx(expected, abs=1e-5)


def test_ctkd_step_buffer_saved_and_only_advanced_in_train_mode():
    policy = CTKDTemperature(mode='instance', num_classes=C, ramp_iters=10)
    assert 'step' in policy.state_dict()
    s, t = _logits(), _logits()
    policy.train()
    for _ in range(3):
        policy(s, t)
    assert policy.step.item() == 3
    policy.eval()
    policy(s, t)
    assert policy.step.item() == 3
    resumed = CTKDTemperature(mode='instance', num_classes=C, ramp_iters=10)
    resumed.load_state_dict(policy.state_dict())
    assert resumed.step.item() == 3
    assert resumed.grl_lambda().item() == pytest.approx(_expected_lambda(3, 10, 1.0))


def test_ctkd_temperature_does_not_backprop_into_logits():
    policy = CTKDTemperature(mode='instance', num_classes=C)
    s, t = _logits().requires_grad_(), _logits().requires_grad_()
    t_s, _ = policy(s, t).temperatures
    assert t_s.requires_grad
    t_s.sum().backward()
    assert s.grad is None and t.grad is None


def _finish_ramp(policy, s, t):
    policy.train()
    for _ in range(policy.ramp_iters + 1):
        policy(s, t)
    assert policy.grl_lambda().item() == pytest.approx(policy.lambda_max)


def test_ctkd_global_step_moves_temperature_to_increase_kd_loss():
    policy = CTKDTemperature(mode='global', t_init=4.0, ramp_iters=3)
    s, t = _logits(), _logits()
    _finish_ramp(policy, s, t)
    kd = InstanceKDLoss()

    t_old = policy(s, t)[0]
    loss_old = kd(s, t, t_old)
    # The sign of the KD loss's own gradient w.r.t. a free, shared T.
    free_t = t_old.detach()[0].clone().requires_grad_()
    kd(s, t, free_t).backward()
    grad_sign = torch.sign(free_t.grad).item()
    assert grad_sign != 0

    optimizer = torch.optim.SGD(policy.parameters(), lr=0.5)
    optimizer.zero_grad()
    loss_old.backward()
    optimizer.step()

    t_new = policy(s, t)[0].detach()
    assert torch.sign(t_new[0] - t_old[0].detach()).item() == grad_sign
    assert kd(s, t, t_new) > loss_old.detach()


def test_ctkd_instance_step_increases_kd_loss():
    policy = CTKDTemperature(mode='instance', num_classes=C, hidden_dim=16, ramp_iters=2)
    s, t = _logits(), _logits()
    _finish_ramp(policy, s, t)
    kd = InstanceKDLoss()
    # Two steps: the zero-initialised last layer only lets the hidden layer learn from step 2.
    optimizer = torch.optim.SGD(policy.parameters(), lr=0.05)
    losses = []
    for _ in range(3):
        loss = kd(s, t, policy(s, t).temperatures)
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert losses[0] < losses[1] < losses[2]


@pytest.mark.parametrize(
    'kwargs, match',
    [
        (dict(t_min=0.0), 't_min'),
        (dict(t_min=5.0, t_max=2.0), 't_max'),
        (dict(t_init=30.0), 't_init'),
        (dict(t_init=1.0), 't_init'),
        (dict(mode='layer'), 'mode'),
        (dict(mode='instance'), 'num_classes'),
        (dict(mode='instance', num_classes=C, hidden_dim=0), 'hidden_dim'),
        (dict(lambda_max=-1.0), 'lambda_max'),
        (dict(ramp_iters=-3), 'ramp_iters'),
        (dict(score_type='logits'), 'score_type'),
    ],
)
def test_ctkd_invalid_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CTKDTemperature(**kwargs)


def test_ctkd_instance_wrong_num_classes_raises():
    policy = CTKDTemperature(mode='instance', num_classes=C + 1)
    with pytest.raises(ValueError, match='num_classes'):
        policy(_logits(), _logits())


# ---------------------------------------------------------------------------------------------
# Logit standardisation: the authors' objective (LogitStdTemperature) and our scaled variant

LOGIT_STD = [LogitStdTemperature, ScaledLogitStdTemperature]


def _zscore(z, cls=LogitStdTemperature):
    """The z-score whose softmax each class reproduces (eps added vs clamped)."""
    centred = z - z.mean(dim=1, keepdim=True)
    std = z.std(dim=1, keepdim=True)
    if cls is LogitStdTemperature:
        return centred / (1e-7 + std)
    return centred / std.clamp_min(1e-6)


@pytest.mark.parametrize('cls', LOGIT_STD)
def test_logit_std_temperature_values(cls):
    s, t = _logits(), _logits()
    t_s, t_t = cls(base_temperature=2.0)(s, t).temperatures
    torch.testing.assert_close(t_s, 2.0 * s.std(dim=1))
    torch.testing.assert_close(t_t, 2.0 * t.std(dim=1))
    # Constant logits: std + eps (authors) or std clamped at eps (ours), still positive.
    t_s, _ = cls(eps=1e-3)(torch.ones(2, C), torch.ones(2, C)).temperatures
    torch.testing.assert_close(t_s, torch.full((2,), 2e-3))


@pytest.mark.parametrize('cls', LOGIT_STD)
def test_logit_std_kd_equals_kd_on_standardised_logits(cls):
    tau = 2.0
    s, t = _logits().double(), _logits().double() * 2 + 1
    policy = cls(base_temperature=tau)
    t_s, t_t = policy(s, t).temperatures
    per = InstanceKDLoss(reduction='none')
    ours = per(s, t, (t_s, t_t)) / (t_s * t_t)
    paper = per(_zscore(s, cls), _zscore(t, cls), tau) / tau**2
    torch.testing.assert_close(ours, paper)


@pytest.mark.parametrize('cls', LOGIT_STD)
def test_logit_std_gradient_reaches_student_logits_like_standardisation(cls):
    tau = 2.0
    s = _logits().double().requires_grad_()
    t = _logits().double().requires_grad_()
    policy = cls(base_temperature=tau)
    t_s, t_t = policy(s, t).temperatures
    assert t_s.requires_grad and not t_t.requires_grad
    # The KL through the policy's T is the same function of the student logits as the KL on
    # standardised logits, so their gradients agree only if T_s keeps its graph.
    per = InstanceKDLoss(reduction='none')
    (per(s, t, (t_s, t_t)) / (t_s * t_t)).sum().backward()
    grad_ours = s.grad.clone()
    assert t.grad is None
    s.grad = None
    (per(_zscore(s, cls), _zscore(t, cls), tau) / tau**2).sum().backward()
    torch.testing.assert_close(grad_ours, s.grad)


def test_logit_std_prefactors():
    s, t = _logits(), _logits()
    out = LogitStdTemperature(base_temperature=3.0)(s, t)
    torch.testing.assert_close(out.prefactor, torch.full((N,), 9.0))
    assert out.weight is None and out.extra == ()
    scaled = ScaledLogitStdTemperature(base_temperature=3.0)(s, t)
    assert scaled.prefactor is None and scaled.weight is None and scaled.extra == ()


def test_scaled_logit_std_equals_its_old_formula():
    """The variant shipped before: tau^2 std(z_s) std(z_t) KL(zscore_t / tau || zscore_s / tau),
    with the gradient through std(z_s) in that factor."""
    tau = 1.5
    s = torch.randn(N, C, dtype=torch.float64) * torch.tensor([0.3, 1, 3, 10, 30.0])[:, None]
    s.requires_grad_()
    t = torch.randn(N, C, dtype=torch.float64) * 5
    loss = InstanceKDLoss()(
        s, t, ScaledLogitStdTemperature(base_temperature=tau)(s, t).temperatures
    )
    (grad,) = torch.autograd.grad(loss, s)
    log_p_s = torch.log_softmax(_zscore(s, ScaledLogitStdTemperature) / tau, dim=1)
    log_p_t = torch.log_softmax(_zscore(t, ScaledLogitStdTemperature) / tau, dim=1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=1)
    old = (tau**2 * s.std(dim=1) * t.std(dim=1) * kl).mean()
    (grad_old,) = torch.autograd.grad(old, s)
    torch.testing.assert_close(loss, old, rtol=1e-10, atol=0)
    torch.testing.assert_close(grad, grad_old, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize('cls', LOGIT_STD)
@pytest.mark.parametrize(
    'kwargs, match', [(dict(base_temperature=0.0), 'base_temperature'), (dict(eps=0.0), 'eps')]
)
def test_logit_std_invalid_arguments_raise(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


@pytest.mark.parametrize('cls', LOGIT_STD)
def test_logit_std_single_class_raises(cls):
    with pytest.raises(ValueError, match='2 classes'):
        cls()(torch.zeros(N, 1), torch.zeros(N, 1))


# ---------------------------------------------------------------------------------------------
# DTKD


def test_dtkd_hand_example_and_clamping():
    # Maxima per row: (2, 6), (1, 3), (-1, 3), (-2, 1), (0, 0).
    s = torch.tensor(
        [[2.0, 0.0], [1.0, -4.0], [-1.0, -3.0], [-2.0, -5.0], [0.0, 0.0]], requires_grad=True
    )
    t = torch.tensor([[6.0, 1.0], [3.0, 3.0], [3.0, -8.0], [1.0, 0.0], [-1.0, 0.0]])
    policy = DTKDTemperature(base_temperature=4.0, t_min=0.1, t_max=10.0)
    t_s, t_t = policy(s, t).temperatures
    # the authors' gradient through both temperatures (ours detached them before)
    assert t_s.requires_grad and t_t.requires_grad
    t_s, t_t = t_s.detach(), t_t.detach()
    t_s_old, t_t_old = DTKDTemperature(4.0, detach=True, t_min=0.1, t_max=10.0)(s, t).temperatures
    assert not t_s_old.requires_grad and not t_t_old.requires_grad
    assert torch.equal(t_s_old, t_s) and torch.equal(t_t_old, t_t)
    # Row 0: 2*2/8*4 = 2, 2*6/8*4 = 6. Row 1: 2*1/4*4 = 2, 2*3/4*4 = 6.
    # Row 2: -4 -> t_min, 12 -> t_max. Rows 3, 4: sum of maxima <= 0 -> tau for both.
    torch.testing.assert_close(t_s, torch.tensor([2.0, 2.0, 0.1, 4.0, 4.0]))
    torch.testing.assert_close(t_t, torch.tensor([6.0, 6.0, 10.0, 4.0, 4.0]))


def test_dtkd_unclamped_temperatures_average_to_base():
    s, t = _logits().abs() + 1, _logits().abs() + 1
    t_s, t_t = DTKDTemperature(base_temperature=3.0, t_min=1e-3, t_max=1e3)(s, t).temperatures
    torch.testing.assert_close((t_s + t_t) / 2, torch.full((N,), 3.0))
    m_s, m_t = s.max(dim=1).values, t.max(dim=1).values
    torch.testing.assert_close(t_s / t_t, m_s / m_t)


def test_dtkd_sigmoid_uses_largest_absolute_logit():
    # Dense-head positives early in training: all class logits negative (prior bias ~ -4.6).
    s = torch.tensor([[-4.6, -5.0, -4.8], [-1.0, -3.0, 2.0]])
    t = torch.tensor([[5.0, -6.0, -7.0], [-4.0, -9.0, 1.0]])
    t_s, t_t = DTKDTemperature(base_temperature=4.0, t_min=0.1, t_max=100.0, score_type='sigmoid')(
        s, t
    ).temperatures
    # sharpness max|z|: row 0 (5.0, 7.0), row 1 (3.0, 9.0); T = 2 m / (m_s + m_t) * tau
    torch.testing.assert_close(t_s, torch.tensor([2 * 5.0 / 12 * 4, 2 * 3.0 / 12 * 4]))
    torch.testing.assert_close(t_t, torch.tensor([2 * 7.0 / 12 * 4, 2 * 9.0 / 12 * 4]))
    # the softmax reading of the same logits would give the student the floor temperature
    soft_s, _ = DTKDTemperature(base_temperature=4.0, t_min=0.1, t_max=100.0)(s, t).temperatures
    assert float(soft_s[0]) == pytest.approx(0.1)


@pytest.mark.parametrize(
    'kwargs, match',
    [
        (dict(t_min=0.0), 't_min'),
        (dict(t_min=5.0, t_max=1.0), 't_max'),
        (dict(base_temperature=-1.0), 'base_temperature'),
        (dict(eps=0.0), 'eps'),
    ],
)
def test_dtkd_invalid_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DTKDTemperature(**kwargs)


@pytest.mark.parametrize('cls', LOGIT_STD)
@pytest.mark.parametrize('score_type, has_grad', [('softmax', True), ('sigmoid', False)])
def test_logit_std_student_temperature_gradient_only_for_softmax(cls, score_type, has_grad):
    z_s = torch.randn(5, 7, requires_grad=True)
    t_s, t_t = cls(score_type=score_type)(z_s, torch.randn(5, 7)).temperatures
    torch.testing.assert_close(t_s.detach(), 2.0 * z_s.detach().std(dim=1))
    assert t_s.requires_grad == has_grad and not t_t.requires_grad
