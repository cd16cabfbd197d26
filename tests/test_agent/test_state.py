"""State features of the RLKD agent, checked against formulas written out independently."""

import math

import pytest
import torch

from rlkd_mm.agent import STATE_DIM, STATE_NAMES, RunningNorm, high_quality_mask, instance_state

COL = {name: i for i, name in enumerate(STATE_NAMES)}


def _entropy(p):
    """Entropy divided by log C."""
    return -sum(float(x) * math.log(float(x)) for x in p if x > 0) / math.log(len(p))


def _reference(s, t, gt, progress, score_type):
    """Row-by-row float64 reference with explicit formulas."""
    rows = []
    for zs, zt, y in zip(s.double(), t.double(), gt.tolist()):
        if score_type == 'softmax':
            ps = torch.exp(zs - zs.max()) / torch.exp(zs - zs.max()).sum()
            pt = torch.exp(zt - zt.max()) / torch.exp(zt - zt.max()).sum()
            s_gt, t_gt = ps[y], pt[y]
            ce = -torch.log(ps[y])
        else:
            ss, st = 1 / (1 + torch.exp(-zs)), 1 / (1 + torch.exp(-zt))
            ps, pt = ss / ss.sum(), st / st.sum()
            s_gt, t_gt = ss[y], st[y]
            ce = -torch.log(ss[y])
        kl = sum(float(a) * math.log(float(a) / float(b)) for a, b in zip(pt, ps) if a > 0)
        srt_s, srt_t = sorted(ps.tolist(), reverse=True), sorted(pt.tolist(), reverse=True)
        rows.append(
            [
                float(s_gt),
                float(t_gt),
                float(int(zs.argmax()) == y),
                float(int(zt.argmax()) == y),
                float(ce),
                kl,
                _entropy(ps),
                _entropy(pt),
                srt_s[0] - srt_s[1],
                srt_t[0] - srt_t[1],
                progress,
            ]
        )
    return torch.tensor(rows, dtype=torch.float64)


@pytest.mark.parametrize('score_type', ['softmax', 'sigmoid'])
def test_columns_match_reference(score_type):
    s, t = torch.randn(6, 5) * 2, torch.randn(6, 5) * 2
    gt = torch.randint(0, 5, (6,))
    out = instance_state(s, t, gt, 0.25, score_type)
    assert out.shape == (6, STATE_DIM) and out.dtype == torch.float32
    torch.testing.assert_close(
        out.double(), _reference(s, t, gt, 0.25, score_type), atol=1e-5, rtol=1e-4
    )


def test_margin_is_top1_minus_top2_not_second_smallest():
    probs = torch.tensor([[0.4, 0.3, 0.2, 0.1]])
    logits = probs.log()
    out = instance_state(logits, logits, torch.tensor([0]), 0.0)
    # kthvalue(p, 2) is the 2nd smallest (0.2) and would give 0.2; the margin is 0.1.
    assert out[0, COL['student_margin']] == pytest.approx(0.1, abs=1e-6)
    assert out[0, COL['teacher_margin']] == pytest.approx(0.1, abs=1e-6)


@pytest.mark.parametrize('score_type', ['softmax', 'sigmoid'])
def test_finite_and_in_range_for_extreme_inputs(score_type):
    c = 4
    s = torch.tensor(
        [[1e4, -1e4, 0.0, 0.0], [-1e4] * c, [1e4] * c, [0.0] * c, [3.0, 3.0, 3.0, 3.0]]
    )
    t_onehot = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 3, 0]), c).float() * 1e4
    gt = torch.tensor([1, 0, 3, 2, 0])
    for teacher in (t_onehot, -t_onehot, s.flip(0)):
        out = instance_state(s, teacher, gt, 1.0, score_type)
        assert torch.isfinite(out).all()
        for name in (
            'student_gt_prob',
            'teacher_gt_prob',
            'student_entropy',
            'teacher_entropy',
            'student_margin',
            'teacher_margin',
        ):
            col = out[:, COL[name]]
            assert (col >= 0).all() and (col <= 1 + 1e-6).all(), name
        assert (out[:, COL['kl_teacher_student']] >= 0).all()
        assert (out[:, COL['student_ce']] >= 0).all()
    # Constant rows: uniform distribution, entropy 1, margin 0.
    out = instance_state(s, s, gt, 0.5, score_type)
    for row in (1, 2, 3, 4):
        assert out[row, COL['student_entropy']] == pytest.approx(1.0, abs=1e-6)
        assert out[row, COL['student_margin']] == pytest.approx(0.0, abs=1e-6)
        assert out[row, COL['kl_teacher_student']] == pytest.approx(0.0, abs=1e-6)


def test_sigmoid_ce_is_bce_of_gt_class_and_extremes_are_exact():
    s = torch.tensor([[1e4, -1e4], [-1e4, 5.0]])
    out = instance_state(s, s, torch.tensor([0, 0]), 0.0, 'sigmoid')
    # BCE-with-logits of the gt class: softplus(-z).
    assert out[0, COL['student_ce']] == pytest.approx(0.0, abs=1e-6)
    assert out[1, COL['student_ce']] == pytest.approx(1e4, rel=1e-6)
    assert out[0, COL['student_gt_prob']] == pytest.approx(1.0)


def test_no_gradient_and_dtype():
    s = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    out = instance_state(s, s.detach().half(), torch.tensor([0, 1, 2]), 0.1)
    assert not out.requires_grad and out.dtype == torch.float32


def test_empty_batch():
    out = instance_state(
        torch.zeros(0, 5), torch.zeros(0, 5), torch.zeros(0, dtype=torch.long), 0.0
    )
    assert out.shape == (0, STATE_DIM)


@pytest.mark.parametrize(
    'kwargs, key',
    [
        (dict(score_type='softmaxx'), 'score_type'),
        (dict(progress=1.5), 'progress'),
        (dict(gt_labels=torch.tensor([0, 5])), 'gt_labels'),
        (dict(gt_labels=torch.tensor([0])), 'gt_labels'),
        (dict(teacher_logits=torch.zeros(2, 4)), 'teacher_logits'),
    ],
)
def test_bad_input_raises_naming_key(kwargs, key):
    args = dict(
        student_logits=torch.zeros(2, 5),
        teacher_logits=torch.zeros(2, 5),
        gt_labels=torch.tensor([0, 1]),
        progress=0.5,
    )
    args.update(kwargs)
    with pytest.raises(ValueError, match=key):
        instance_state(**args)


def test_float_labels_are_rejected():
    with pytest.raises(TypeError, match='gt_labels'):
        instance_state(torch.zeros(2, 3), torch.zeros(2, 3), torch.tensor([0.0, 1.0]), 0.0)


@pytest.mark.parametrize('score_type', ['softmax', 'sigmoid'])
def test_high_quality_mask(score_type):
    t = torch.tensor(
        [[3.0, 0.0, 0.0], [3.0, 0.0, 0.0], [0.1, 0.0, 0.0], [0.0, 0.0, 3.0], [-1.0, -5.0, -5.0]]
    )
    gt = torch.tensor([0, 1, 0, 2, 0])
    mask = high_quality_mask(t, gt, 0.5, score_type)
    if score_type == 'softmax':
        conf = torch.softmax(t, 1)[torch.arange(5), gt]
    else:
        conf = torch.sigmoid(t[torch.arange(5), gt])
    expected = (t.argmax(1) == gt) & (conf >= 0.5)
    assert mask.dtype == torch.bool
    assert mask.tolist() == expected.tolist()
    # The cases are not trivial: correct-but-unconfident rows exist.
    assert expected.any() and not expected.all()
    assert high_quality_mask(t, gt, 0.0, score_type).tolist() == (t.argmax(1) == gt).tolist()


def test_running_norm_merges_exactly_and_clips():
    norm = RunningNorm(3, clip=5.0)
    chunks = [torch.randn(n, 3) * torch.tensor([1.0, 10.0, 0.1]) + 4 for n in (1, 7, 64, 3)]
    for chunk in chunks:
        norm.update(chunk)
    everything = torch.cat(chunks).double()
    torch.testing.assert_close(norm.mean, everything.mean(0))
    torch.testing.assert_close(norm.var, everything.var(0, unbiased=False))
    assert float(norm.count) == everything.size(0)
    x = torch.tensor([[4.0, 4.0, 4.0], [1e6, -1e6, 4.0]])
    y = norm.normalize(x)
    expected = ((x.double() - everything.mean(0)) / everything.std(0, unbiased=False)).clamp(-5, 5)
    torch.testing.assert_close(y.double(), expected, atol=1e-5, rtol=1e-5)
    assert y[1, 0] == 5.0 and y[1, 1] == -5.0

    other = RunningNorm(3)
    other.load_state_dict(norm.state_dict())
    torch.testing.assert_close(other.normalize(x), y)


def test_running_norm_constant_column_is_finite():
    norm = RunningNorm(2)
    norm.update(torch.ones(10, 2))
    out = norm.normalize(torch.tensor([[1.0, 2.0]]))
    assert torch.isfinite(out).all() and out[0, 0] == 0 and out[0, 1] == 5.0


def test_running_norm_fixed_column_keeps_drifting_progress_informative():
    # Progress grows over training; a cumulative mean/std lags behind it, so standardising it
    # makes it nearly constant. The fixed map 2p - 1 keeps p = 0.1 and p = 0.9 apart.
    col = COL['progress']
    norm = RunningNorm(STATE_DIM, fixed_columns={col: (0.5, 0.5)})
    plain = RunningNorm(STATE_DIM)
    gen = torch.Generator().manual_seed(0)
    for k in range(200):
        x = torch.rand(32, STATE_DIM, generator=gen)
        x[:, col] = k / 200
        norm.update(x)
        plain.update(x)
    x = torch.rand(2, STATE_DIM, generator=gen)
    x[:, col] = torch.tensor([0.1, 0.9])
    y = norm.normalize(x)
    torch.testing.assert_close(y[:, col], torch.tensor([-0.8, 0.8]))
    # The other columns are still standardised with the running statistics.
    other = [i for i in range(STATE_DIM) if i != col]
    torch.testing.assert_close(y[:, other], plain.normalize(x)[:, other])
    # The mask is configuration, not state: the state dict layout is unchanged.
    assert set(norm.state_dict()) == {'mean', 'var', 'count'}
    with pytest.raises(ValueError, match='fixed_columns'):
        RunningNorm(3, fixed_columns={3: (0.0, 1.0)})
    with pytest.raises(ValueError, match='scale'):
        RunningNorm(3, fixed_columns={0: (0.0, 0.0)})
