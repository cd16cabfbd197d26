"""Logit standardisation and DTKD against independent transcriptions of their authors' losses.

Each reference below is written from the papers' formulas (and the authors' public code's
choices: unbiased std, eps 1e-7 added to it; DTKD's mean over the batch and gradient through
both temperatures), not from our implementation. They are compared on batches whose rows have
very different logit scales, value and gradient w.r.t. the student logits, through the policy and
the distillers' sum over the policy's terms, and through the whole ClassifierDistiller forward.
"""

import math
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config

from rlkd_mm.models.distillers.base import BaseDistiller
from rlkd_mm.models.losses import InstanceKDLoss
from rlkd_mm.temperature import DTKDTemperature, LogitStdTemperature

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
N, C = 6, 10
# per-row scales: the student's and the teacher's differ, and differ between rows
S_SCALE = torch.tensor([0.3, 0.5, 1.0, 4.0, 16.0, 40.0], dtype=torch.float64)
T_SCALE = torch.tensor([3.0, 0.2, 10.0, 1.0, 30.0, 8.0], dtype=torch.float64)


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    z_s = torch.randn(N, C, generator=g, dtype=torch.float64) * S_SCALE[:, None]
    z_t = torch.randn(N, C, generator=g, dtype=torch.float64) * T_SCALE[:, None]
    # DTKD's formula needs positive maxima: shift each row (softmax is shift invariant)
    return z_s + 2 * S_SCALE[:, None], z_t + 2 * T_SCALE[:, None]


def _kl(log_p, log_q):
    """KL(p || q) per row from log-probabilities."""
    return (log_p.exp() * (log_p - log_q)).sum(dim=1)


def authors_logit_std(z_s, z_t, tau):
    """tau^2 * KL(softmax(zscore(z_t) / tau) || softmax(zscore(z_s) / tau)), batch mean."""

    def zscore(z):
        centred = z - z.mean(dim=-1, keepdim=True)
        return centred / (1e-7 + z.std(dim=-1, keepdim=True))

    log_p_t = F.log_softmax(zscore(z_t.detach()) / tau, dim=1)
    log_p_s = F.log_softmax(zscore(z_s) / tau, dim=1)
    return tau**2 * _kl(log_p_t, log_p_s).mean()


def authors_dtkd(z_s, z_t, alpha, beta, tau):
    """alpha * mean(T_s T_t KL(T_s, T_t)) + beta * mean(tau^2 KL(tau, tau)), with
    T_s = 2 tau m_s / (m_s + m_t), T_t = 2 tau m_t / (m_s + m_t), m the largest logit."""
    z_t = z_t.detach()
    m_s, m_t = z_s.max(dim=1).values, z_t.max(dim=1).values
    t_s = 2 * tau * m_s / (m_s + m_t)
    t_t = 2 * tau * m_t / (m_s + m_t)
    dynamic = _kl(F.log_softmax(z_t / t_t[:, None], 1), F.log_softmax(z_s / t_s[:, None], 1))
    vanilla = _kl(F.log_softmax(z_t / tau, 1), F.log_softmax(z_s / tau, 1))
    return alpha * (t_s * t_t * dynamic).mean() + beta * (tau**2 * vanilla).mean()


def _value_and_grad(fn, z_s, z_t):
    z_s = z_s.detach().clone().requires_grad_()
    value = fn(z_s, z_t)
    (grad,) = torch.autograd.grad(value, z_s)
    return value.detach(), grad


def _policy_loss(policy):
    def fn(z_s, z_t):
        return BaseDistiller.policy_kd_loss(InstanceKDLoss(), z_s, z_t, policy(z_s, z_t))

    return fn


def _assert_close(ours, ref):
    value, grad = ours
    ref_value, ref_grad = ref
    torch.testing.assert_close(value, ref_value, rtol=1e-5, atol=0)
    # relative to the largest gradient entry (single entries can be ~0)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-5, atol=1e-5 * ref_grad.abs().max())


@pytest.mark.parametrize('tau', [1.0, 2.0, 4.0])
def test_logit_std_matches_authors(tau):
    z_s, z_t = _batch()
    ours = _value_and_grad(_policy_loss(LogitStdTemperature(base_temperature=tau)), z_s, z_t)
    ref = _value_and_grad(lambda s, t: authors_logit_std(s, t, tau), z_s, z_t)
    _assert_close(ours, ref)


@pytest.mark.parametrize('alpha, beta, tau', [(3.0, 1.0, 4.0), (1.0, 0.5, 2.0), (2.0, 0.0, 3.0)])
def test_dtkd_matches_authors(alpha, beta, tau):
    z_s, z_t = _batch(1)
    # our guards (clamp to [t_min, t_max]) widened: the authors' code has none
    policy = DTKDTemperature(base_temperature=tau, alpha=alpha, beta=beta, t_min=1e-3, t_max=1e3)
    t_s, t_t = policy(z_s, z_t).temperatures
    # the batch stays inside the formula's domain (no guard of ours is active)
    assert bool(((t_s > policy.t_min) & (t_s < policy.t_max)).all())
    assert bool(((t_t > policy.t_min) & (t_t < policy.t_max)).all())
    ours = _value_and_grad(_policy_loss(policy), z_s, z_t)
    ref = _value_and_grad(lambda s, t: authors_dtkd(s, t, alpha, beta, tau), z_s, z_t)
    _assert_close(ours, ref)


def test_dtkd_detached_variant_is_the_first_term_without_gradient_through_t():
    """alpha=1, beta=0, detach=True: what this project shipped as DTKD before."""
    z_s, z_t = _batch(2)
    policy = DTKDTemperature(base_temperature=4.0, alpha=1.0, beta=0.0, detach=True)

    def old(s, t):
        with torch.no_grad():
            m_s, m_t = s.max(dim=1).values, t.max(dim=1).values
            t_s, t_t = 8 * m_s / (m_s + m_t), 8 * m_t / (m_s + m_t)
        kl = _kl(F.log_softmax(t / t_t[:, None], 1), F.log_softmax(s / t_s[:, None], 1))
        return (t_s * t_t * kl).mean()

    _assert_close(_value_and_grad(_policy_loss(policy), z_s, z_t), _value_and_grad(old, z_s, z_t))
    # and it is not the authors' objective
    ours = _value_and_grad(_policy_loss(policy), z_s, z_t)
    ref = _value_and_grad(lambda s, t: authors_dtkd(s, t, 1.0, 0.0, 4.0), z_s, z_t)
    assert not torch.allclose(ours[1], ref[1], rtol=1e-3)


# --------------------------------------------------------------------------- full distiller path
@pytest.fixture
def distiller_with_scaled_logits():
    """A ClassifierDistiller whose student and teacher logits are rescaled (and shifted) per
    image by forward hooks; yields (build, captured), where ``captured`` receives the student
    logits of each forward."""
    from test_models.test_classifier_distiller import build_distiller, make_batch

    handles, captured = [], []

    def build(temperature):
        model = build_distiller(temperature=temperature)
        model.train()
        scale_s, scale_t = S_SCALE.float(), T_SCALE.float()

        def student_hook(module, args, out):
            out = out * scale_s[:, None] + 2 * scale_s[:, None]
            captured.append(out)
            return out

        def teacher_hook(module, args, out):
            return out * scale_t[:, None] + 2 * scale_t[:, None]

        handles.append(model.student.head.fc.register_forward_hook(student_hook))
        handles.append(model.teacher.head.fc.register_forward_hook(teacher_hook))
        data = model.data_preprocessor(make_batch(n=N), True)
        return model, data

    yield build, captured
    for handle in handles:
        handle.remove()


def _teacher_logits(model, inputs):
    with torch.no_grad():
        return model.teacher(inputs, mode='tensor')


@pytest.mark.parametrize(
    'temperature, reference',
    [
        (
            dict(type='rlkd_mm.LogitStdTemperature', base_temperature=2.0),
            lambda s, t: authors_logit_std(s, t, 2.0),
        ),
        (
            dict(
                type='rlkd_mm.DTKDTemperature',
                base_temperature=4.0,
                alpha=3.0,
                beta=1.0,
                t_min=1e-3,
                t_max=1e3,
            ),
            lambda s, t: authors_dtkd(s, t, 3.0, 1.0, 4.0),
        ),
    ],
    ids=['logit_std', 'dtkd'],
)
def test_distiller_kd_loss_matches_authors(distiller_with_scaled_logits, temperature, reference):
    build, captured = distiller_with_scaled_logits
    model, data = build(temperature)
    losses = model(**data, mode='loss')
    student_logits = captured[-1]
    (grad,) = torch.autograd.grad(losses['loss_kd'], student_logits)
    z_t = _teacher_logits(model, data['inputs']).double()
    ref = _value_and_grad(reference, student_logits.detach().double(), z_t)
    _assert_close((losses['loss_kd'].detach().double(), grad.double()), ref)
    # the rows' scales really differ (the point of the test)
    spread = student_logits.detach().std(dim=1)
    assert float(spread.max() / spread.min()) > 50


# --------------------------------------------------------------------------- DTKD warm-up configs
def _warmup_fraction(path):
    cfg = Config.fromfile(osp.join(ROOT, path))
    hooks = [h for h in cfg.custom_hooks if h['type'] == 'rlkd_mm.KDWarmupHook']
    assert len(hooks) == 1
    hook = hooks[0]
    epochs = cfg.train_cfg.max_epochs
    if hook.get('by_epoch', True):
        return hook['warmup'] / epochs, 0.0
    # the digits classification train split has 1078 images (configs/_base_/datasets)
    iters_per_epoch = math.ceil(1078 / cfg.train_dataloader.batch_size)
    return hook['warmup'] / (epochs * iters_per_epoch), 1 / (epochs * iters_per_epoch)


@pytest.mark.parametrize('path', ['configs/digits/cls_kd_dtkd.py', 'configs/digits/gfl_ld_dtkd.py'])
def test_dtkd_configs_warm_up_over_the_authors_fraction(path):
    """The authors ramp DTKD in over 20 of 240 epochs: 1/12 of the schedule."""
    fraction, resolution = _warmup_fraction(path)
    assert abs(fraction - 20 / 240) <= resolution
    cfg = Config.fromfile(osp.join(ROOT, path))
    assert cfg.model.temperature.alpha == 3.0 and cfg.model.temperature.beta == 1.0
