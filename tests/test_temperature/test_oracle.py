"""The headroom oracle picks, per instance, the multiplier whose real step lowers a quiz loss most;
the null oracle (quiz gradient rows permuted) does not."""

import torch
import torch.nn.functional as F

from rlkd_mm.models.losses import InstanceKDLoss
from rlkd_mm.temperature import FixedTemperature, OracleTemperature, TemperatureOutput
from rlkd_mm.temperature.oracle import candidate_scores, multiplier_grid, scale_output

C, D, N, M, LR = 5, 8, 64, 256, 1e-3


def _toy(seed=0):
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(C, D + 1, generator=gen) * 0.5
    h = torch.randn(N, D, generator=gen)
    y = torch.randint(0, C, (N,), generator=gen)
    # a teacher that is right on some instances and wrong on others, at varied sharpness
    t = torch.randn(N, C, generator=gen) * 2
    t[torch.arange(N), y] += torch.randn(N, generator=gen) * 3
    hq = torch.randn(M, D, generator=gen)
    yq = torch.randint(0, C, (M,), generator=gen)
    return w, h, y, t, hq, yq


def _logits(w, h):
    return torch.cat([h, torch.ones(h.shape[0], 1)], dim=1) @ w.t()


def _quiz_loss(w, hq, yq):
    return F.cross_entropy(_logits(w, hq), yq)


KD = InstanceKDLoss(reduction='none')


def _instance_grads(z, t, y, policy_fn):
    """The distiller's contract: per-instance gradients of CE + KD w.r.t. the logits."""
    z = z.detach().requires_grad_(True)
    out = policy_fn(z, t, y)
    total = F.cross_entropy(z, y, reduction='sum')
    for term in out.terms():
        total = total + KD(z, t, term.temperatures, prefactor=term.prefactor).sum()
    (g,) = torch.autograd.grad(total, z)
    return g


def _oracle(null=False):
    policy = OracleTemperature(
        base=dict(type='rlkd_mm.FixedTemperature', temperature=2.0), null=null
    )

    def logit_grads_fn(z, t, y, num, policy_fn):
        zk, tk, yk = z.repeat(num, 1), t.repeat(num, 1), y.repeat(num)
        return _instance_grads(zk, tk, yk, policy_fn).reshape(num, *z.shape)

    object.__setattr__(policy, 'logit_grads_fn', logit_grads_fn)
    return policy.train()


def _quiz_gradient(w, hq, yq):
    w = w.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(_quiz_loss(w, hq, yq), w)
    return g


def _true_best(w, h, y, t, hq, yq, grid):
    """argmin_k of the quiz loss after a real SGD step on instance i's loss under candidate k,
    each step rescaled to the size of the base candidate's (a = 1), as the oracle scores."""
    z = _logits(w, h)
    h1 = torch.cat([h, torch.ones(N, 1)], dim=1)
    steps = []
    for a in grid:
        g = _instance_grads(
            z,
            t,
            y,
            lambda z_, t_, y_, a=a: scale_output(
                FixedTemperature(2.0)(z_, t_, y_), torch.tensor(float(a))
            ),
        )
        steps.append(g[:, :, None] * h1[:, None, :])  # [N, C, D + 1]
    base = steps[int((torch.tensor(grid).log().abs()).argmin())]
    base_norm = base.flatten(1).norm(dim=1)
    before = _quiz_loss(w, hq, yq)
    change = torch.empty(len(grid), N)
    for k, step in enumerate(steps):
        scale = base_norm / step.flatten(1).norm(dim=1).clamp_min(1e-30)
        for i in range(N):
            change[k, i] = _quiz_loss(w - LR * scale[i] * step[i], hq, yq) - before
    return change.argmin(dim=0), change


def _picks(policy, w, h, y, t):
    z = _logits(w, h)
    policy.features = h
    out = policy(z, t, y)
    a = out.t_student / 2.0
    return (a[:, None] - policy.multipliers[None]).abs().argmin(dim=1)


def test_oracle_picks_the_candidate_of_the_real_best_step_and_the_null_does_not():
    w, h, y, t, hq, yq = _toy()
    grid = multiplier_grid(5).tolist()
    best, change = _true_best(w, h, y, t, hq, yq, grid)
    # the choice matters: the true best is spread over the grid, not one constant multiplier
    assert len(best.unique()) >= 3
    g = _quiz_gradient(w, hq, yq)
    halves = [(g, torch.ones_like(g)), (g, torch.ones_like(g))]

    oracle = _oracle()
    oracle.set_quiz(halves, refresh=0)
    agree = float((_picks(oracle, w, h, y, t) == best).float().mean())
    assert agree >= 0.95, agree
    assert oracle.last_stats['oracle_half_agreement'] == 1.0  # both halves are the same quiz
    assert oracle.last_stats['oracle_gain'] >= 0

    null = _oracle(null=True)
    null.set_quiz(halves, refresh=0)
    null_agree = float((_picks(null, w, h, y, t) == best).float().mean())
    majority = float(torch.bincount(best, minlength=5).max()) / N
    assert null_agree < max(0.6, majority + 0.1) and null_agree < agree - 0.3, (
        null_agree,
        majority,
    )


def test_oracle_is_its_base_until_a_quiz_gradient_and_in_eval():
    w, h, y, t, hq, yq = _toy(1)
    policy = _oracle()
    z = _logits(w, h)
    base = FixedTemperature(2.0)(z, t, y)
    out = policy(z, t, y)
    assert torch.equal(out.t_student, base.t_student) and out.prefactor is None
    g = _quiz_gradient(w, hq, yq)
    policy.set_quiz([(g, torch.ones_like(g))] * 2, refresh=0)
    policy.features = h
    policy.eval()
    assert torch.equal(policy(z, t, y).t_student, base.t_student)


def test_scale_output_scales_every_temperature_and_explicit_prefactors():
    t_s, t_t = torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0])
    out = TemperatureOutput(
        t_s,
        t_t,
        weight=torch.tensor([0.5, 1.0]),
        prefactor=torch.tensor([9.0, 9.0]),
        extra=(TemperatureOutput(t_t, t_t, prefactor=torch.tensor([1.0, 1.0])),),
    )
    a = torch.tensor([2.0, 0.5])
    scaled = scale_output(out, a)
    assert torch.equal(scaled.t_student, t_s * a) and torch.equal(scaled.t_teacher, t_t * a)
    assert torch.equal(scaled.prefactor, 9.0 * a * a)
    assert torch.equal(scaled.weight, out.weight)  # a CIST weight is unchanged
    assert torch.equal(scaled.extra[0].t_student, t_t * a)
    assert torch.equal(scaled.extra[0].prefactor, a * a)


def test_candidate_scores_against_explicit_layer_gradients():
    gen = torch.Generator().manual_seed(3)
    grads = torch.randn(3, 4, C, generator=gen)
    feats = torch.randn(4, D, generator=gen)
    direction = torch.randn(C, D + 1, generator=gen)
    p_sq = torch.rand(C, D + 1, generator=gen) + 0.5
    out = candidate_scores(grads, feats, direction, p_sq)
    h1 = torch.cat([feats, torch.ones(4, 1)], dim=1)
    for k in range(3):
        for i in range(4):
            layer = torch.outer(grads[k, i], h1[i])
            assert torch.allclose(out['decrease'][k, i], (layer * direction).sum(), atol=1e-5)
            expected = (layer * layer * p_sq).sum().sqrt()
            assert torch.allclose(out['norm'][k, i], expected, rtol=1e-5)


def test_headroom_hook_names_a_bad_setting():
    import pytest

    from rlkd_mm.engine import HeadroomHook

    with pytest.raises(
        ValueError, match='refresh_interval must be an int >= 1, got refresh_interval=0'
    ):
        HeadroomHook(quiz_dataset=dict(), refresh_interval=0)
    with pytest.raises(
        ValueError, match='quiz_batch_size must be an int >= 2, got quiz_batch_size=1'
    ):
        HeadroomHook(quiz_dataset=dict(), quiz_batch_size=1)
