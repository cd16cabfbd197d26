"""Per-instance-temperature KD losses against independent per-row references."""

import math

import pytest
import torch
import torch.nn.functional as F

from rlkd_mm.models.losses import (
    InstanceDKDLoss,
    InstanceKDLoss,
    InstanceLDLoss,
    InstanceSigmoidKDLoss,
)
from rlkd_mm.models.losses.utils import split_temperature, weight_reduce_loss
from rlkd_mm.registry import MODELS

# ---------------------------------------------------------------------------------------------
# References: one instance at a time, explicit p * log(p / q), float64.


def _softmax_row(z):
    e = [math.exp(v - max(z)) for v in z]
    s = sum(e)
    return [v / s for v in e]


def _kl_rows(p, q):
    return sum(pc * math.log(pc / qc) for pc, qc in zip(p, q) if pc > 0)


def ref_kd(zs, zt, ts, tt):
    out = []
    for i in range(zs.shape[0]):
        p = _softmax_row([v / float(tt[i]) for v in zt[i].tolist()])
        q = _softmax_row([v / float(ts[i]) for v in zs[i].tolist()])
        out.append(float(ts[i]) * float(tt[i]) * _kl_rows(p, q))
    return torch.tensor(out, dtype=torch.float64)


def ref_dkd(zs, zt, labels, ts, tt, alpha, beta):
    out = []
    for i in range(zs.shape[0]):
        y = int(labels[i])
        p = _softmax_row([v / float(tt[i]) for v in zt[i].tolist()])
        q = _softmax_row([v / float(ts[i]) for v in zs[i].tolist()])
        # Non-target mass as a sum, not 1 - p_y, which rounds to 0 for a confident model.
        p_rest = sum(pc for c, pc in enumerate(p) if c != y)
        q_rest = sum(qc for c, qc in enumerate(q) if c != y)
        tckd = _kl_rows([p[y], p_rest], [q[y], q_rest])
        p_nt = [pc / p_rest for c, pc in enumerate(p) if c != y]
        q_nt = [qc / q_rest for c, qc in enumerate(q) if c != y]
        nckd = _kl_rows(p_nt, q_nt)
        out.append(float(ts[i]) * float(tt[i]) * (alpha * tckd + beta * nckd))
    return torch.tensor(out, dtype=torch.float64)


def ref_ld(ds, dt, ts, tt):
    out = []
    for i in range(ds.shape[0]):
        sides = []
        for k in range(ds.shape[1]):
            p = _softmax_row([v / float(tt[i]) for v in dt[i, k].tolist()])
            q = _softmax_row([v / float(ts[i]) for v in ds[i, k].tolist()])
            sides.append(_kl_rows(p, q))
        out.append(float(ts[i]) * float(tt[i]) * sum(sides) / len(sides))
    return torch.tensor(out, dtype=torch.float64)


def ref_sigmoid_kd(zs, zt, ts, tt):
    out = []
    for i in range(zs.shape[0]):
        total = 0.0
        for c in range(zs.shape[1]):
            a, b = float(zt[i, c]) / float(tt[i]), float(zs[i, c]) / float(ts[i])
            # 1 - sigmoid(x) written as sigmoid(-x) so that it never rounds to 0.
            p, p_neg = 1 / (1 + math.exp(-a)), 1 / (1 + math.exp(a))
            q, q_neg = 1 / (1 + math.exp(-b)), 1 / (1 + math.exp(b))
            total += _kl_rows([p, p_neg], [q, q_neg])
        out.append(float(ts[i]) * float(tt[i]) * total)
    return torch.tensor(out, dtype=torch.float64)


# ---------------------------------------------------------------------------------------------
# One uniform description of the four losses for the shared behaviour tests.

N, C, R = 6, 5, 7


def _logits(n=N, scale=3.0):
    return torch.randn(n, C, dtype=torch.float64) * scale


def _dists(n=N, scale=3.0):
    return torch.randn(n, 4, R + 1, dtype=torch.float64) * scale


def _labels(n=N):
    return torch.randint(0, C, (n,))


CASES = {
    'kd': (InstanceKDLoss, _logits, lambda zs, zt, lab, ts, tt: ref_kd(zs, zt, ts, tt)),
    'dkd': (
        lambda **kw: InstanceDKDLoss(alpha=1.5, beta=8.0, **kw),
        _logits,
        lambda zs, zt, lab, ts, tt: ref_dkd(zs, zt, lab, ts, tt, 1.5, 8.0),
    ),
    'ld': (InstanceLDLoss, _dists, lambda zs, zt, lab, ts, tt: ref_ld(zs, zt, ts, tt)),
    'sigmoid': (
        InstanceSigmoidKDLoss,
        _logits,
        lambda zs, zt, lab, ts, tt: ref_sigmoid_kd(zs, zt, ts, tt),
    ),
}


def _call(name, loss, zs, zt, temperature, labels, **kwargs):
    # every KD loss takes the labels as the keyword gt_labels
    return loss(zs, zt, temperature, gt_labels=labels, **kwargs)


def _positive_t(n=N):
    return torch.rand(n, dtype=torch.float64) * 5 + 0.5


@pytest.mark.parametrize('name', list(CASES))
def test_matches_reference_per_instance_temperature(name):
    build, make, ref = CASES[name]
    zs, zt, labels, t = make(), make(), _labels(), _positive_t()
    loss = build(reduction='none')
    out = _call(name, loss, zs, zt, t, labels)
    assert out.shape == (N,)
    torch.testing.assert_close(out, ref(zs, zt, labels, t, t), rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize('name', list(CASES))
def test_matches_reference_pair_temperature(name):
    build, make, ref = CASES[name]
    zs, zt, labels = make(), make(), _labels()
    t_s, t_t = _positive_t(), _positive_t()
    out = _call(name, build(reduction='none'), zs, zt, (t_s, t_t), labels)
    torch.testing.assert_close(out, ref(zs, zt, labels, t_s, t_t), rtol=1e-7, atol=1e-10)
    # A pair is not the same as either temperature shared.
    shared = _call(name, build(reduction='none'), zs, zt, t_s, labels)
    assert not torch.allclose(out, shared)


@pytest.mark.parametrize('name', list(CASES))
def test_scalar_temperature_equals_constant_vector(name):
    build, make, _ = CASES[name]
    zs, zt, labels = make(), make(), _labels()
    loss = build(reduction='none')
    vec = _call(name, loss, zs, zt, torch.full((N,), 3.0), labels)
    for scalar in (3.0, 3, torch.tensor(3.0), (3.0, torch.full((N,), 3.0))):
        torch.testing.assert_close(_call(name, loss, zs, zt, scalar, labels), vec)


def test_shared_temperature_kd_equals_hinton_batchmean():
    zs, zt = _logits(), _logits()
    t = 4.0
    hinton = (
        F.kl_div(F.log_softmax(zs / t, dim=1), F.softmax(zt / t, dim=1), reduction='batchmean')
        * t
        * t
    )
    torch.testing.assert_close(InstanceKDLoss()(zs, zt, t), hinton)


@pytest.mark.parametrize('name', list(CASES))
def test_reductions_weight_and_avg_factor(name):
    build, make, _ = CASES[name]
    zs, zt, labels, t = make(), make(), _labels(), _positive_t()
    per = _call(name, build(reduction='none'), zs, zt, t, labels)
    w = torch.rand(N, dtype=torch.float64)
    loss = build(reduction='mean', loss_weight=2.5)
    torch.testing.assert_close(_call(name, loss, zs, zt, t, labels), 2.5 * per.mean())
    torch.testing.assert_close(
        _call(name, loss, zs, zt, t, labels, reduction_override='sum'), 2.5 * per.sum()
    )
    torch.testing.assert_close(
        _call(name, loss, zs, zt, t, labels, reduction_override='none'), 2.5 * per
    )
    torch.testing.assert_close(
        _call(name, loss, zs, zt, t, labels, weight=w), 2.5 * (per * w).mean()
    )
    eps = torch.finfo(torch.float32).eps
    torch.testing.assert_close(
        _call(name, loss, zs, zt, t, labels, weight=w, avg_factor=3.0),
        2.5 * (per * w).sum() / (3.0 + eps),
    )
    with pytest.raises(ValueError, match='avg_factor'):
        _call(name, loss, zs, zt, t, labels, avg_factor=3.0, reduction_override='sum')
    with pytest.raises(ValueError, match='reduction_override'):
        _call(name, loss, zs, zt, t, labels, reduction_override='batchmean')
    with pytest.raises(ValueError, match='weight'):
        _call(name, loss, zs, zt, t, labels, weight=torch.ones(N + 1))
    with pytest.raises(ValueError, match='reduction'):
        build(reduction='avg')


@pytest.mark.parametrize('name', list(CASES))
def test_gradient_reaches_student_only(name):
    build, make, _ = CASES[name]
    zs = make().requires_grad_()
    zt = make().requires_grad_()
    t = _positive_t().requires_grad_()
    _call(name, build(), zs, zt, t, _labels()).backward()
    assert zt.grad is None
    assert zs.grad is not None and zs.grad.abs().sum() > 0
    # The temperature keeps its gradient so that a learnable policy (CTKD) can be trained.
    assert t.grad is not None and t.grad.abs().sum() > 0


@pytest.mark.parametrize('name', list(CASES))
def test_finite_for_saturated_logits(name):
    build, make, _ = CASES[name]
    labels = _labels()
    shape = make().shape
    sign = torch.where(torch.rand(shape) > 0.5, 1.0, -1.0)
    zs = (sign * 1e4).requires_grad_()
    zt = -sign * 1e4  # teacher disagrees everywhere, one-hot-like
    for t in (0.1, 1.0, _positive_t().float()):
        for loss in (build(), build(reduction='none')):
            out = _call(name, loss, zs, zt, t, labels)
            assert torch.isfinite(out).all()
        zs.grad = None
        _call(name, build(), zs, zt, t, labels).backward()
        assert torch.isfinite(zs.grad).all()
    # Agreeing one-hot-like models: (near) zero loss.
    same = _call(name, build(), zs.detach(), zs.detach(), 1.0, labels)
    assert torch.isfinite(same) and same.abs() < 1e-3


@pytest.mark.parametrize('name', list(CASES))
def test_empty_input_gives_zero_with_graph(name):
    build, make, _ = CASES[name]
    zs = make(n=0).requires_grad_()
    zt = make(n=0)
    labels = _labels(n=0)
    for reduction in ('mean', 'sum'):
        out = _call(name, build(reduction=reduction), zs, zt, 4.0, labels)
        assert out.shape == () and out.item() == 0 and out.requires_grad
        out.backward()
        assert zs.grad is not None and zs.grad.shape == zs.shape
    out = _call(name, build(reduction='none'), zs, zt, torch.ones(0), labels)
    assert out.shape == (0,)


@pytest.mark.parametrize('name', list(CASES))
@pytest.mark.parametrize(
    'temperature, error, match',
    [
        (torch.ones(N + 1), ValueError, 'shape'),
        (torch.ones(N, 1), ValueError, 'shape'),
        (torch.ones(1), ValueError, 'shape'),
        (0.0, ValueError, 'temperature=0.0'),
        (-2, ValueError, 'temperature=-2'),
        (torch.tensor([1.0, 2.0, 0.0, 1.0, 1.0, 1.0]), ValueError, '> 0'),
        (torch.tensor(float('nan')), ValueError, '> 0'),
        ((torch.ones(N), -torch.ones(N)), ValueError, r'temperature\[1\]'),
        ((torch.ones(N), torch.ones(N + 2)), ValueError, r'temperature\[1\].*shape'),
        ((1.0, 2.0, 3.0), TypeError, 'pair'),
        ('4', TypeError, 'str'),
        (None, TypeError, 'NoneType'),
        (True, TypeError, 'bool'),
    ],
)
def test_bad_temperature_raises(name, temperature, error, match):
    build, make, _ = CASES[name]
    with pytest.raises(error, match=match):
        _call(name, build(), make(), make(), temperature, _labels())


@pytest.mark.parametrize('name', list(CASES))
def test_mismatched_shapes_raise(name):
    build, make, _ = CASES[name]
    with pytest.raises(ValueError, match='preds_S and preds_T'):
        _call(name, build(), make(), make(n=N + 1), 4.0, _labels())


@pytest.mark.parametrize('name', list(CASES))
def test_labels_are_an_optional_keyword_of_every_kd_loss(name):
    build, make, _ = CASES[name]
    zs, zt, labels, t = make(), make(), _labels(), _positive_t()
    with_labels = build(reduction='none')(zs, zt, t, gt_labels=labels)
    if name == 'dkd':  # the one loss that uses them: it needs them
        with pytest.raises(ValueError, match='gt_labels'):
            build()(zs, zt, t)
        assert torch.equal(build(reduction='none')(zs, zt, t, labels), with_labels)
    else:
        assert torch.equal(build(reduction='none')(zs, zt, t), with_labels)


def test_registered_in_models():
    for cls in (InstanceKDLoss, InstanceDKDLoss, InstanceLDLoss, InstanceSigmoidKDLoss):
        built = MODELS.build(dict(type=cls.__name__, loss_weight=0.5))
        assert isinstance(built, cls) and built.loss_weight == 0.5


# ---------------------------------------------------------------------------------------------
# DKD specifics


def test_dkd_hand_computed_three_classes():
    # Uniform student; teacher p = [1/2, 1/4, 1/4] (row 0) and [1/3, 1/2, 1/6] (row 1); y = 0.
    # Row 0: b_t = (1/2, 1/2), b_s = (1/3, 2/3), equal non-target shapes -> NCKD = 0.
    # Row 1: b_t = b_s = (1/3, 2/3) -> TCKD = 0; q_t = (3/4, 1/4), q_s = (1/2, 1/2).
    zs = torch.zeros(2, 3, dtype=torch.float64)
    zt = torch.tensor(
        [[math.log(2), 0.0, 0.0], [math.log(2), math.log(3), 0.0]], dtype=torch.float64
    )
    labels = torch.tensor([0, 0])
    tckd0 = 0.5 * math.log(0.5 / (1 / 3)) + 0.5 * math.log(0.5 / (2 / 3))
    nckd1 = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    out = InstanceDKDLoss(alpha=2.0, beta=8.0, reduction='none')(zs, zt, 1.0, labels)
    torch.testing.assert_close(out, torch.tensor([2.0 * tckd0, 8.0 * nckd1], dtype=torch.float64))
    # T scales the logits and the loss: T = 2 on logits 2 * z equals 4 x the T = 1 loss.
    out2 = InstanceDKDLoss(alpha=2.0, beta=8.0, reduction='none')(2 * zs, 2 * zt, 2.0, labels)
    torch.testing.assert_close(out2, 4 * out)


def test_dkd_matches_reference_code_formulation_for_moderate_logits():
    # The reference DKD code masks the target by subtracting 1000 from the tempered logit; with a
    # shared T and moderate logits it must agree with our exact masking.
    zs, zt, labels, t = _logits(), _logits(), _labels(), 3.0
    mask = F.one_hot(labels, C).double()
    p_s, p_t = F.softmax(zs / t, dim=1), F.softmax(zt / t, dim=1)
    b_s = torch.stack([(p_s * mask).sum(1), (p_s * (1 - mask)).sum(1)], dim=1)
    b_t = torch.stack([(p_t * mask).sum(1), (p_t * (1 - mask)).sum(1)], dim=1)
    tckd = F.kl_div(torch.log(b_s), b_t, reduction='sum') * t**2 / N
    nckd = (
        F.kl_div(
            F.log_softmax(zs / t - 1000 * mask, dim=1),
            F.softmax(zt / t - 1000 * mask, dim=1),
            reduction='sum',
        )
        * t**2
        / N
    )
    expected = 1.0 * tckd + 8.0 * nckd
    torch.testing.assert_close(InstanceDKDLoss()(zs, zt, t, labels), expected)


def test_dkd_bad_labels_raise():
    loss = InstanceDKDLoss()
    zs, zt = _logits(), _logits()
    with pytest.raises(ValueError, match='gt_labels.*shape'):
        loss(zs, zt, 4.0, torch.zeros(N + 1, dtype=torch.long))
    with pytest.raises(ValueError, match=r'gt_labels must lie in \[0, 5\)'):
        loss(zs, zt, 4.0, torch.full((N,), C))
    with pytest.raises(ValueError, match='gt_labels'):
        loss(zs, zt, 4.0, torch.full((N,), -1))
    with pytest.raises(TypeError, match='dtype'):
        loss(zs, zt, 4.0, torch.zeros(N))
    with pytest.raises(ValueError, match='2 classes'):
        loss(zs[:, :1], zt[:, :1], 4.0, torch.zeros(N, dtype=torch.long))


# ---------------------------------------------------------------------------------------------
# Relations to mmdet's losses that the docstrings state


def test_kd_is_mmdet_kd_times_num_classes():
    from mmdet.models.losses import KnowledgeDistillationKLDivLoss

    zs, zt, w = _logits().float(), _logits().float(), torch.rand(N)
    mm = KnowledgeDistillationKLDivLoss(T=4)(zs, zt, weight=w)
    ours = InstanceKDLoss()(zs, zt, 4.0, weight=w)
    torch.testing.assert_close(ours, C * mm)


def test_ld_sum_is_mmdet_ld_head_convention_times_bins():
    from mmdet.models.losses import KnowledgeDistillationKLDivLoss

    ds, dt, w = _dists().float(), _dists().float(), torch.rand(N)
    # mmdet LDHead: flatten the sides, repeat each prior's weight 4 times, avg_factor=4.
    mm = KnowledgeDistillationKLDivLoss(T=10)(
        ds.reshape(-1, R + 1),
        dt.reshape(-1, R + 1),
        weight=w[:, None].expand(-1, 4).reshape(-1),
        avg_factor=4.0,
    )
    ours = InstanceLDLoss(reduction='sum')(ds, dt, 10.0, weight=w)
    torch.testing.assert_close(ours, (R + 1) * mm, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Helpers


def test_weight_reduce_loss_semantics():
    loss = torch.tensor([1.0, 2.0, 3.0])
    w = torch.tensor([0.0, 1.0, 2.0])
    assert weight_reduce_loss(loss, w, 'sum').item() == 8.0
    assert weight_reduce_loss(loss, w, 'mean').item() == pytest.approx(8.0 / 3)
    torch.testing.assert_close(weight_reduce_loss(loss, w, 'none'), loss * w)
    assert weight_reduce_loss(loss, None, 'mean', avg_factor=4.0).item() == pytest.approx(1.5)
    # avg_factor=0 (no positives) stays finite thanks to eps.
    assert torch.isfinite(weight_reduce_loss(torch.zeros(0), None, 'mean', avg_factor=0))
    assert weight_reduce_loss(torch.zeros(0), None, 'mean').item() == 0.0
    with pytest.raises(ValueError, match='reduction'):
        weight_reduce_loss(loss, None, 'max')


def test_split_temperature_dtype_device_and_gradient():
    like = torch.zeros(3, 2, dtype=torch.float64)
    t_s, t_t = split_temperature(2, 3, like)
    assert t_s is t_t and t_s.dtype == torch.float64 and t_s.tolist() == [2.0, 2.0, 2.0]
    theta = torch.tensor(1.5, requires_grad=True)
    t_s, t_t = split_temperature((theta, torch.tensor([1.0, 2.0, 3.0])), 3, like)
    assert t_s.shape == (3,) and t_s.requires_grad and not t_t.requires_grad
    t_s.sum().backward()
    assert theta.grad.item() == 3.0


# ---------------------------------------------------------------------------------------------
# prefactor: a per-instance multiplier of the divergence in place of T_s * T_t


@pytest.mark.parametrize('name', list(CASES))
def test_prefactor_replaces_the_temperature_product(name):
    build, make, ref = CASES[name]
    zs, zt, labels = make(), make(), _labels()
    t_s, t_t = _positive_t(), _positive_t()
    prefactor = _positive_t().requires_grad_()
    out = _call(name, build(reduction='none'), zs, zt, (t_s, t_t), labels, prefactor=prefactor)
    divergence = ref(zs, zt, labels, t_s, t_t) / (t_s * t_t)
    torch.testing.assert_close(out, prefactor.detach() * divergence, rtol=1e-7, atol=1e-10)
    # the prefactor keeps its gradient: d loss_i / d prefactor_i is the divergence
    (grad,) = torch.autograd.grad(out.sum(), prefactor)
    torch.testing.assert_close(grad, divergence, rtol=1e-7, atol=1e-10)
    # a number is broadcast; weight, reduction and loss_weight apply on top
    weight = _positive_t()
    out = _call(
        name, build(loss_weight=0.5), zs, zt, (t_s, t_t), labels, prefactor=4.0, weight=weight
    )
    torch.testing.assert_close(out, 0.5 * (4.0 * divergence * weight).mean())


@pytest.mark.parametrize('name', list(CASES))
def test_prefactor_none_is_the_default_and_bad_shapes_raise(name):
    build, make, _ = CASES[name]
    zs, zt, labels, t = make(), make(), _labels(), _positive_t()
    loss = build(reduction='none')
    default = _call(name, loss, zs, zt, t, labels)
    assert torch.equal(_call(name, loss, zs, zt, t, labels, prefactor=None), default)
    with pytest.raises(ValueError, match='prefactor'):
        _call(name, loss, zs, zt, t, labels, prefactor=torch.ones(N + 1, dtype=torch.float64))
    with pytest.raises(TypeError, match='prefactor'):
        _call(name, loss, zs, zt, t, labels, prefactor='2')


def test_policy_output_as_temperature_names_the_fix():
    from rlkd_mm.temperature import TemperatureOutput

    zs, zt, t = _logits(), _logits(), _positive_t()
    with pytest.raises(TypeError, match='output.temperatures'):
        InstanceKDLoss()(zs, zt, TemperatureOutput(t, t))
