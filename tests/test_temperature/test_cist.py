"""CISTTemperature: per-instance (T_s, T_t) from each model's largest logit and a KD weight."""

import pytest
import torch
import torch.nn.functional as F

from rlkd_mm.models.losses import InstanceKDLoss
from rlkd_mm.registry import MODELS
from rlkd_mm.temperature import CISTTemperature


def test_temperatures_follow_the_centred_max_logit_over_rho():
    s = torch.tensor([[4.0, 0.0, -1.0], [1.0, 1.0, 1.0], [30.0, 0.0, 0.0]])
    t = torch.tensor([[2.0, 8.0, 2.0], [0.0, 3.0, 0.0], [9.0, 0.0, 0.0]])
    policy = CISTTemperature(rho=2.0, t_min=0.5, t_max=10.0, reweight=False)
    t_s, t_t = policy(s, t).temperatures
    # centred maxima: student 4 - 1 = 3, 1 - 1 = 0 (-> t_min), 30 - 10 = 20 (-> t_max)
    assert t_s.tolist() == pytest.approx([1.5, 0.5, 10.0])
    # teacher 8 - 4 = 4, 3 - 1 = 2, 9 - 3 = 6
    assert t_t.tolist() == pytest.approx([2.0, 1.0, 3.0])
    # shifting every logit of an instance changes nothing (softmax is shift invariant)
    t_s2, t_t2 = policy(s + 5.0, t - 7.0).temperatures
    assert torch.allclose(t_s2, t_s) and torch.allclose(t_t2, t_t)
    # the teacher's soft label then has the target ratio: centred max / T_t == rho
    assert ((t.max(1).values - t.mean(1)) / t_t).tolist() == pytest.approx([2.0] * 3)


def test_sigmoid_scores_use_the_largest_absolute_logit():
    s = torch.tensor([[-6.0, -2.0], [1.0, -3.0]])
    t = torch.tensor([[-4.0, -9.0], [5.0, 0.0]])
    t_s, t_t = CISTTemperature(rho=2.0, t_max=100.0, reweight=False, score_type='sigmoid')(
        s, t
    ).temperatures
    assert t_s.tolist() == pytest.approx([3.0, 1.5])
    assert t_t.tolist() == pytest.approx([4.5, 2.5])


@pytest.mark.parametrize('score_type', ['softmax', 'sigmoid'])
def test_weight_against_independent_formula(score_type):
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(6, 5, generator=g) * 3, torch.randn(6, 5, generator=g) * 3
    labels = torch.tensor([0, 1, 2, 3, 4, 0])
    t_s, t_t, w = CISTTemperature(score_type=score_type)(s, t, labels)[:3]
    probs = torch.sigmoid if score_type == 'sigmoid' else (lambda z: F.softmax(z, dim=1))
    raw = []
    for i in range(6):
        confidence = float(probs(t[i : i + 1]).max())
        p_label = float(probs(s[i : i + 1])[0, labels[i]])
        raw.append(confidence * (1.0 + (1.0 - p_label)))
    expected = torch.tensor(raw) / (sum(raw) / 6)
    assert w.tolist() == pytest.approx(expected.tolist(), rel=1e-5)
    assert float(w.mean()) == pytest.approx(1.0)
    assert not (t_s.requires_grad or t_t.requires_grad or w.requires_grad)


def test_weight_grows_with_teacher_confidence_and_student_difficulty():
    policy = CISTTemperature()
    # same student, teacher sure on instance 0, unsure on instance 1
    s = torch.zeros(2, 4)
    t = torch.tensor([[8.0, 0.0, 0.0, 0.0], [0.5, 0.0, 0.0, 0.0]])
    w = policy(s, t, torch.tensor([0, 0])).weight
    assert w[0] > w[1]
    # same teacher, student right on instance 0, wrong on instance 1
    s = torch.tensor([[8.0, 0.0, 0.0, 0.0], [0.0, 8.0, 0.0, 0.0]])
    t = torch.tensor([[8.0, 0.0, 0.0, 0.0], [8.0, 0.0, 0.0, 0.0]])
    w = policy(s, t, torch.tensor([0, 0])).weight
    assert w[1] > w[0]
    # without labels the teacher's top class stands in for the label
    assert torch.allclose(policy(s, t).weight, w)


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_shapes_dtype_and_empty_batch(dtype):
    policy = CISTTemperature()
    out = policy(torch.randn(5, 3, dtype=dtype), torch.randn(5, 3, dtype=dtype))
    assert out.prefactor is None and out.extra == ()
    out = out[:3]
    assert all(x.shape == (5,) and x.dtype == dtype for x in out)
    out = policy(torch.zeros(0, 3, dtype=dtype), torch.zeros(0, 3, dtype=dtype))[:3]
    assert all(x.shape == (0,) for x in out)
    with pytest.raises(ValueError, match='student_logits and teacher_logits'):
        policy(torch.zeros(2, 3), torch.zeros(3, 3))


@pytest.mark.parametrize(
    'kwargs, match',
    [(dict(rho=0.0), 'rho'), (dict(t_min=0.0), 't_min'), (dict(t_min=5.0, t_max=1.0), 't_max')],
)
def test_invalid_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CISTTemperature(**kwargs)


def test_registered_and_weighted_kd_loss():
    policy = MODELS.build(dict(type='rlkd_mm.CISTTemperature', rho=1.5))
    assert isinstance(policy, CISTTemperature) and policy.rho == 1.5
    g = torch.Generator().manual_seed(1)
    s, t = torch.randn(4, 6, generator=g), torch.randn(4, 6, generator=g) * 4
    t_s, t_t, w = policy(s, t)[:3]
    loss = InstanceKDLoss()(s, t, (t_s, t_t), weight=w)
    per = [
        float(
            t_s[i]
            * t_t[i]
            * (
                F.softmax(t[i] / t_t[i], 0)
                * (F.log_softmax(t[i] / t_t[i], 0) - F.log_softmax(s[i] / t_s[i], 0))
            ).sum()
        )
        for i in range(4)
    ]
    assert float(loss) == pytest.approx(sum(float(w[i]) * per[i] for i in range(4)) / 4, rel=1e-5)
