"""The headroom oracle's evaluator on a dense detector (SingleStageDetDistiller): each positive's
candidate gradients equal the gradient the distiller trains with at that temperature, the quiz
gradient equals the head's own classification-loss gradient at its last class conv, and the
oracle's scores equal the quiz direction against each positive's real last-layer gradient (anchor
slices included)."""

import pytest
import torch

from rlkd_mm.models.distillers.dense_heads import flatten_levels
from rlkd_mm.temperature import FixedTemperature, OracleTemperature
from rlkd_mm.temperature.oracle import multiplier_grid, quiz_direction, scale_output

T0 = 2.0


@pytest.fixture
def det():
    import test_detection_distillers as helpers
    from mmdet.utils import register_all_modules
    from mmengine.registry import DefaultScope

    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('mmdet'):
        yield helpers


def _build(det, kind, temperature=None):
    return det.build_single(
        kind,
        temperature=temperature or dict(type='rlkd_mm.FixedTemperature', temperature=T0),
        kd_loss=dict(type='rlkd_mm.InstanceSigmoidKDLoss', loss_weight=0.5),
    ).train()


def _trained_grads(distiller, data):
    """The gradient of the objective the distiller trains its class scores with (the head's
    classification loss + the class-score KD) w.r.t. every prior's class logits ``[P_all, C]``,
    taken from the outputs of the head's last class conv."""
    outputs = []
    conv = distiller.adapter.final_cls_conv
    handle = conv.register_forward_hook(lambda mod, args, out: outputs.append(out))
    try:
        losses = distiller.loss(data['inputs'], data['data_samples'])
    finally:
        handle.remove()
    total = sum(losses['loss_cls']) + losses['loss_kd']
    grads = torch.autograd.grad(total, outputs)
    return flatten_levels(grads, distiller.student.bbox_head.num_classes)


@pytest.mark.parametrize('kind', ['gfl', 'retina'])
def test_candidate_grads_equal_the_trained_gradient_at_each_temperature(det, kind):
    distiller = _build(det, kind)
    data = det.make_batch(distiller)
    grid = multiplier_grid(3).tolist()
    distiller.reward_keep = ('candidate_grads',)
    trained = []
    for a in grid:
        distiller.temperature = FixedTemperature(T0 * a, score_type='sigmoid')
        trained.append(_trained_grads(distiller, data))
    kept = distiller.pop_reward_cache()
    pos = kept['pos']
    assert pos.numel() > 0
    n = torch.tensor(float(pos.numel()))  # the positives' divisor (one process)
    base = FixedTemperature(T0, score_type='sigmoid')
    a = torch.tensor(grid).repeat_interleave(pos.numel())

    def candidates(z, t, y):
        return scale_output(base(z, t, y), a.to(z.dtype))

    grads = distiller.candidate_logit_grads(
        kept['logits'], kept['teacher_logits'], kept['labels'], len(grid), candidates
    )
    assert grads.shape == (len(grid), pos.numel(), det.NUM_CLASSES)
    for k in range(len(grid)):
        torch.testing.assert_close(grads[k], trained[k][pos] * n, rtol=1e-4, atol=1e-6)
    # the task term is kept with the positives (the counterfactual reward passes it back)
    torch.testing.assert_close(kept['task_grads'], distiller._task_grads, rtol=0, atol=0)


def test_candidate_grads_need_the_class_score_kd(det):
    distiller = det.build_single('gfl', kd_loss=None)
    z = torch.zeros(2, det.NUM_CLASSES)
    with pytest.raises(ValueError, match='kd_loss is None'):
        distiller.candidate_logit_grads(z, z, torch.zeros(2).long(), 1, distiller.temperature)


def test_quiz_layer_gradients_equal_the_heads_own_loss_gradient(det):
    distiller = _build(det, 'retina').eval()  # eval: BN statistics do not depend on the batch
    data = det.make_batch(distiller, num_items=(3, 2, 1, 2), training=True)
    halves = distiller.quiz_layer_gradients(data['inputs'], data['data_samples'])
    conv = distiller.adapter.final_cls_conv
    for half, sl in zip(halves, (slice(0, 2), slice(2, 4))):
        losses = distiller.student.loss(data['inputs'][sl], data['data_samples'][sl])
        g_w, g_b = torch.autograd.grad(sum(losses['loss_cls']), (conv.weight, conv.bias))
        expected = torch.cat([g_w.reshape(g_w.shape[0], -1), g_b[:, None]], dim=1)
        assert half.shape == expected.shape == (3 * det.NUM_CLASSES, 16 * 9 + 1)
        torch.testing.assert_close(half, expected, rtol=1e-4, atol=1e-7)


def test_oracle_scores_are_the_quiz_direction_against_each_positives_layer_gradient(det):
    """Retina has 3 anchors per location: each positive's step lands in its anchor's rows."""
    distiller = _build(
        det,
        'retina',
        dict(type='rlkd_mm.OracleTemperature', base=dict(type='rlkd_mm.FixedTemperature')),
    )
    oracle = distiller.temperature
    assert isinstance(oracle, OracleTemperature)
    data = det.make_batch(distiller)
    gen = torch.Generator().manual_seed(0)
    weight, bias = distiller.last_layer()
    shape = (weight.shape[0], weight[0].numel() + 1)
    direction, p_sq = quiz_direction(torch.randn(shape, generator=gen))
    oracle.set_quiz([(direction, p_sq), (-direction, p_sq)])
    distiller.reward_keep = ('candidate_grads',)
    distiller.loss(data['inputs'], data['data_samples'])
    kept = distiller.pop_reward_cache()
    pos, groups = kept['pos'], kept['groups']
    assert len(groups.unique()) > 1  # positives on different anchors
    scores = oracle.score(kept['logits'], kept['teacher_logits'], kept['labels'])
    grads = oracle.logit_grads_fn(
        kept['logits'],
        kept['teacher_logits'],
        kept['labels'],
        len(oracle.multipliers),
        lambda z, t, y: scale_output(
            oracle.base(z, t, y), oracle.multipliers.repeat_interleave(pos.numel())
        ),
    )
    # each positive's real last-layer gradient d(g . z_i) / d(conv), from a fresh forward; the
    # oracle rescales each candidate's step to the norm of the base's (P = 1: plain norms)
    student = distiller.student
    checked = 0
    for i in range(0, pos.numel(), max(1, pos.numel() // 6)):
        maps = student.bbox_head(student.extract_feat(data['inputs']))[0]
        z_i = flatten_levels(maps, det.NUM_CLASSES)[pos[i]]
        layers = []
        for k in range(len(oracle.multipliers)):
            g_w, g_b = torch.autograd.grad(
                (grads[k, i] * z_i).sum(), (weight, bias), retain_graph=True
            )
            layers.append(torch.cat([g_w.reshape(g_w.shape[0], -1), g_b[:, None]], dim=1))
        base_norm = layers[oracle.base_index].norm()
        for k, layer in enumerate(layers):
            expected = (layer * direction).sum() * base_norm / layer.norm()
            torch.testing.assert_close(
                scores['half_scores'][0][k, i], expected, rtol=1e-4, atol=1e-6
            )
        checked += 1
    assert checked >= 3
    # the halves' directions are opposite: so are their scores
    torch.testing.assert_close(scores['half_scores'][0], -scores['half_scores'][1])


def test_counterfactual_reward_scores_positive_priors(det):
    """RLKD on a base with the counterfactual reward on a detector: an action's score is the quiz
    direction against the positive's real last-layer step, rescaled to the norm of the base's
    (a = 1) step."""
    from rlkd_mm.engine.rewards import CounterfactualReward

    distiller = _build(
        det,
        'gfl',
        dict(
            type='rlkd_mm.RLTemperature',
            base=dict(type='rlkd_mm.FixedTemperature', temperature=T0),
            agent=dict(seed=0),
        ),
    )
    unit = CounterfactualReward(num_samples=2)
    unit.check(distiller)  # the distiller can keep 'candidate_grads'
    data = det.make_batch(distiller)
    distiller.reward_keep = unit.keeps
    distiller.loss(data['inputs'], data['data_samples'])
    kept = distiller.pop_reward_cache()
    pos = kept['pos']
    weight, bias = distiller.last_layer()
    gen = torch.Generator().manual_seed(1)
    direction = torch.randn(weight.shape[0], weight[0].numel() + 1, generator=gen)
    unit.direction = quiz_direction(direction)
    actions = torch.tensor([1.0, 2.0])[:, None].expand(2, pos.numel())
    scores = unit.score(distiller, kept, actions, distiller.temperature)
    assert scores.shape == (2, pos.numel())

    student = distiller.student
    for i in range(0, pos.numel(), max(1, pos.numel() // 4)):
        layers = []
        for a in (1.0, 2.0):
            one = FixedTemperature(T0 * a, score_type='sigmoid')
            g = distiller.candidate_logit_grads(
                kept['logits'][i : i + 1],
                kept['teacher_logits'][i : i + 1],
                kept['labels'][i : i + 1],
                1,
                one,
                task_grads=kept['task_grads'][i : i + 1],
            )[0, 0]
            maps = student.bbox_head(student.extract_feat(data['inputs']))[0]
            z_i = flatten_levels(maps, det.NUM_CLASSES)[pos[i]]
            g_w, g_b = torch.autograd.grad((g * z_i).sum(), (weight, bias))
            layers.append(torch.cat([g_w.reshape(g_w.shape[0], -1), g_b[:, None]], dim=1))
        ref = layers[0].norm()
        for k, layer in enumerate(layers):
            expected = (layer * direction).sum() * ref / layer.norm()
            torch.testing.assert_close(scores[k, i], expected, rtol=1e-4, atol=1e-6)
