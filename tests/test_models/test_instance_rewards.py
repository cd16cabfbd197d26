"""Per-instance rewards of the reward units on the real distillers equal an independent
recomputation, and the re-evaluation leaves the student's buffers, parameters and every RNG stream
as they were."""

import copy
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.optim import OptimWrapper

from rlkd_mm.engine.rewards import build_reward, influence_rewards

RL = dict(type='rlkd_mm.RLTemperature', agent=dict(seed=0))


def _optim(distiller):
    from rlkd_mm.engine.optimizers.distiller_constructor import DistillerOptimWrapperConstructor

    wrapper = DistillerOptimWrapperConstructor(
        dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.05, momentum=0.0))
    )(distiller)
    assert isinstance(wrapper, OptimWrapper)
    return wrapper


def _rng_states():
    return (
        torch.get_rng_state(),
        random.getstate(),
        np.random.get_state()[1].copy(),
    )


def _assert_same_rng(a, b):
    assert torch.equal(a[0], b[0])
    assert a[1] == b[1]
    assert np.array_equal(a[2], b[2])


def _buffers(module):
    return {k: v.clone() for k, v in module.named_buffers()}


def _step_and_reward(distiller, data, unit):
    """One training step with the policy acting and the distiller keeping what the reward
    ``unit`` asks for (as RLKDHook has it do); then the unit's rewards.

    Returns (rewards, student before the step, student after the step, what was kept)."""
    policy = distiller.temperature
    distiller.train()
    policy.driven = policy.acting = True
    distiller.reward_keep = unit.keeps
    wrapper = _optim(distiller)
    before = copy.deepcopy(distiller.student)
    losses = distiller(**data, mode='loss')
    parsed, _ = distiller.parse_losses(losses)
    wrapper.update_params(parsed)
    distiller.reward_keep = ()
    after = copy.deepcopy(distiller.student)
    cache = distiller.pop_reward_cache()
    buffers, params, rng = (
        _buffers(distiller.student),
        copy.deepcopy(distiller.student.state_dict()),
        _rng_states(),
    )
    rewards = unit.measure(distiller, cache)
    # the re-evaluation changed nothing: buffers (BN statistics), parameters, RNG streams
    for key, value in _buffers(distiller.student).items():
        assert torch.equal(value, buffers[key]), key
    for key, value in distiller.student.state_dict().items():
        assert torch.equal(value, params[key]), key
    _assert_same_rng(rng, _rng_states())
    assert distiller.pop_reward_cache() is None
    step = policy.pop_pending()
    assert step is not None and rewards.shape == (step.num,)
    return rewards, before, after, cache


# --------------------------------------------------------------------------- classification
@pytest.fixture
def cls_distiller():
    from test_classifier_distiller import build_distiller

    torch.manual_seed(0)
    return build_distiller(temperature=RL)


def test_classification_instance_reward_is_the_loss_change(cls_distiller):
    from test_classifier_distiller import make_batch

    data = cls_distiller.data_preprocessor(make_batch(n=8), True)
    labels = torch.cat([s.gt_label for s in data['data_samples']])
    rewards, before, after, _ = _step_and_reward(cls_distiller, data, build_reward('instance'))
    # independently: each image's CE on copies of the student before / after the step, both in
    # training mode (BN on batch statistics)
    before.train(), after.train()
    with torch.no_grad():
        ce_before = F.cross_entropy(before(data['inputs'], mode='tensor'), labels, reduction='none')
        ce_after = F.cross_entropy(after(data['inputs'], mode='tensor'), labels, reduction='none')
    torch.testing.assert_close(rewards, ce_before - ce_after, rtol=1e-4, atol=1e-6)
    assert rewards.abs().sum() > 0


def test_classification_influence_reward_from_explicit_gradients(cls_distiller):
    from test_classifier_distiller import make_batch

    probe = cls_distiller.data_preprocessor(make_batch(n=5, seed=1), True)
    data = cls_distiller.data_preprocessor(make_batch(n=8, seed=2), True)
    # the first rewarded iteration only becomes the probe: no reward yet
    unit = build_reward('influence')
    first = _first_influence_step(cls_distiller, probe, unit)
    assert first is None
    rewards, _, after, cache = _step_and_reward(cls_distiller, data, unit)

    # Explicit last-layer gradients: every image's gradient of its own training loss (task + KD)
    # w.r.t. the fc weight and bias, and the probe batch's mean-CE gradient after the step.
    probe_labels = torch.cat([s.gt_label for s in probe['data_samples']])
    after.train()
    fc = after.head.fc
    feats = after.head.pre_logits(after.extract_feat(probe['inputs']))
    probe_ce = F.cross_entropy(fc(feats.detach()), probe_labels)
    gw_probe, gb_probe = torch.autograd.grad(probe_ce, (fc.weight, fc.bias))
    h, g = cache['features'], cache['grads']
    expected = torch.stack(
        [
            (torch.outer(g[i], h[i]) * gw_probe).sum() + (g[i] * gb_probe).sum()
            for i in range(h.shape[0])
        ]
    )
    torch.testing.assert_close(rewards, expected, rtol=1e-4, atol=1e-7)
    # the cached logit gradients are those of the training loss (CE + KD) of each image
    assert g.shape == (8, 10) and h.shape == (8, after.head.fc.in_features)


def _first_influence_step(distiller, data, unit):
    """A rewarded influence iteration with no probe yet: it only becomes the probe."""
    policy = distiller.temperature
    distiller.train()
    policy.driven = policy.acting = True
    distiller.reward_keep = unit.keeps
    losses = distiller(**data, mode='loss')
    parsed, _ = distiller.parse_losses(losses)
    _optim(distiller).update_params(parsed)
    distiller.reward_keep = ()
    rewards = unit.measure(distiller, distiller.pop_reward_cache())
    assert unit.probe is not None
    policy.pop_pending()
    return rewards


def test_influence_formula_matches_explicit_outer_products():
    gen = torch.Generator().manual_seed(0)
    h, g = torch.randn(4, 3, generator=gen), torch.randn(4, 2, generator=gen)
    hp, gp = torch.randn(5, 3, generator=gen), torch.randn(5, 2, generator=gen)
    expected = torch.tensor(
        [
            sum(
                float((torch.outer(g[i], h[i]) * torch.outer(gp[j], hp[j])).sum() + g[i] @ gp[j])
                for j in range(5)
            )
            for i in range(4)
        ]
    )
    torch.testing.assert_close(influence_rewards(h, g, hp, gp), expected)


# --------------------------------------------------------------------------- detection
@pytest.fixture
def det():
    import test_detection_distillers as helpers
    from mmdet.utils import register_all_modules
    from mmengine.registry import DefaultScope

    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('mmdet'):
        yield helpers


def test_single_stage_instance_reward_is_the_positive_loss_change(det):
    from mmdet.models.utils import unpack_gt_instances
    from mmdet.structures.bbox import bbox_overlaps

    distiller = det.build_single('gfl', temperature=RL)
    data = det.make_batch(distiller)
    rewards, before, after, _ = _step_and_reward(distiller, data, build_reward('instance'))

    def per_positive(student):
        """BCE(one-hot) + 1 - GIoU of every positive, image by image and level by level."""
        student.train()
        head = student.bbox_head
        inputs, samples = data['inputs'], data['data_samples']
        gts, ignores, metas = unpack_gt_instances(samples)
        with torch.no_grad():
            cls_scores, bbox_preds = head(student.extract_feat(inputs))
        sizes = [s.shape[-2:] for s in cls_scores]
        anchors, flags = head.get_anchors(sizes, metas, inputs.device)
        # GFL's ATSS assignment depends on anchors and boxes only: the same before and after
        targets = head.get_targets(anchors, flags, gts, metas, batch_gt_instances_ignore=ignores)
        level_anchors, labels_list, _, box_targets_list = targets[:4]
        out = []
        for img in range(inputs.shape[0]):
            for lvl, labels in enumerate(labels_list):
                stride = head.prior_generator.strides[lvl][0]
                cls = cls_scores[lvl][img].permute(1, 2, 0).reshape(-1, det.NUM_CLASSES)
                box = bbox_preds[lvl][img].permute(1, 2, 0).reshape(-1, 4 * (head.reg_max + 1))
                for k in range(labels.shape[1]):
                    label = int(labels[img, k])
                    if not 0 <= label < det.NUM_CLASSES:
                        continue
                    onehot = F.one_hot(torch.tensor(label), det.NUM_CLASSES).float()
                    bce = F.binary_cross_entropy_with_logits(cls[k], onehot, reduction='sum')
                    anchor = level_anchors[lvl][img, k]
                    center = torch.stack([anchor[0] + anchor[2], anchor[1] + anchor[3]]) / 2
                    dist = head.integral(box[k : k + 1])[0]
                    c = center / stride
                    pred = torch.cat([c - dist[:2], c + dist[2:]])
                    target = box_targets_list[lvl][img, k] / stride
                    giou = bbox_overlaps(pred[None], target[None], mode='giou', is_aligned=True)
                    out.append(float(bce + 1 - giou[0]))
        return torch.tensor(out)

    loss_before, loss_after = per_positive(before), per_positive(after)
    assert rewards.numel() == loss_before.numel() > 0
    # the distiller orders positives level-major, this recomputation image-major: compare sums
    # and sorted values of the rewards
    change = loss_before - loss_after
    torch.testing.assert_close(rewards.sum(), change.sum(), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(rewards.sort().values, change.sort().values, rtol=1e-3, atol=1e-5)


def test_fcos_instance_reward_is_the_positive_loss_change(det):
    """FCOS, a family added as one adapter: BCE(one-hot) + 1 - GIoU of each positive point's
    decoded distances (normalised by the stride, as the head's targets) before and after."""
    from mmdet.structures.bbox import bbox_overlaps

    distiller = det.build_single('fcos', temperature=RL)
    data = det.make_batch(distiller)
    rewards, before, after, cache = _step_and_reward(distiller, data, build_reward('instance'))

    def per_positive(student):
        student.train()
        head = student.bbox_head
        with torch.no_grad():
            cls_scores, bbox_preds, _ = head(student.extract_feat(data['inputs']))

        def flat(maps, c):
            return torch.cat([m.permute(0, 2, 3, 1).reshape(-1, c) for m in maps])

        pos = cache['pos']
        cls, box = flat(cls_scores, det.NUM_CLASSES)[pos], flat(bbox_preds, 4)[pos]
        onehot = F.one_hot(cache['labels'], det.NUM_CLASSES).float()
        bce = F.binary_cross_entropy_with_logits(cls, onehot, reduction='none').sum(1)
        points = cache['anchors']
        pred = head.bbox_coder.decode(points, box)
        target = head.bbox_coder.decode(points, cache['bbox_targets'])
        return bce + 1 - bbox_overlaps(pred, target, mode='giou', is_aligned=True)

    assert rewards.numel() == cache['pos'].numel() > 0 and cache['anchors'].shape[1] == 2
    change = per_positive(before) - per_positive(after)
    torch.testing.assert_close(rewards, change, rtol=1e-4, atol=1e-5)


def test_two_stage_instance_reward_is_the_roi_loss_change(det):
    distiller = det.build_two_stage(temperature=RL)
    data = det.make_batch(distiller)
    rewards, before, after, cache = _step_and_reward(distiller, data, build_reward('instance'))
    rois, labels = cache['rois'], cache['labels']

    def roi_ce(student):
        student.train()
        with torch.no_grad():
            x = student.extract_feat(data['inputs'])
            scores = student.roi_head._bbox_forward(x, rois)['cls_score']
        return F.cross_entropy(scores, labels, reduction='none')

    torch.testing.assert_close(rewards, roi_ce(before) - roi_ce(after), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize('kind', ['gfl', 'retina', 'fcos'])
def test_single_stage_influence_reward_from_explicit_conv_gradients(det, kind):
    """Each positive's last-layer gradient (g_i ⊗ patch_i, via autograd through the real conv on
    a copy of the student before the step) against the probe batch's gradient of its mean class
    BCE w.r.t. the same conv after the step."""
    from mmdet.models.utils import unpack_gt_instances

    distiller = det.build_single(kind, temperature=RL)
    probe = det.make_batch(distiller, num_items=(2, 3))
    data = det.make_batch(distiller, num_items=(3, 2))
    unit = build_reward('influence')
    assert _first_influence_step(distiller, probe, unit) is None
    rewards, before, after, cache = _step_and_reward(distiller, data, unit)
    head_name = {'gfl': 'gfl_cls', 'retina': 'retina_cls', 'fcos': 'conv_cls'}[kind]
    num_classes = det.NUM_CLASSES

    def positive_logits(student, batch, pos):
        student.train()
        cls_scores = student.bbox_head(student.extract_feat(batch['inputs']))[0]
        flat = torch.cat([m.permute(0, 2, 3, 1).reshape(-1, num_classes) for m in cls_scores])
        return flat[pos]

    # the probe's positives (same assignment code as the distiller's) after the step
    gts, ignores, metas = unpack_gt_instances(probe['data_samples'])
    head = after.bbox_head
    with torch.no_grad():
        sizes = [s.shape[-2:] for s in head(after.extract_feat(probe['inputs']))[0]]
    if kind == 'fcos':
        points = head.prior_generator.grid_priors(sizes, device=probe['inputs'].device)
        labels_list = head.get_targets(points, gts)[0]
    else:
        anchors, flags = head.get_anchors(sizes, metas, probe['inputs'].device)
        targets = head.get_targets(anchors, flags, gts, metas, batch_gt_instances_ignore=ignores)
        labels_list = targets[1] if len(targets) == 6 else targets[0]
    labels = torch.cat([lvl.reshape(-1) for lvl in labels_list])
    probe_pos = ((labels >= 0) & (labels < num_classes)).nonzero().squeeze(1)
    conv = getattr(after.bbox_head, head_name)
    z = positive_logits(after, probe, probe_pos)
    onehot = F.one_hot(labels[probe_pos], num_classes).float()
    bce = F.binary_cross_entropy_with_logits(z, onehot, reduction='none').sum(1).mean()
    gw_probe, gb_probe = torch.autograd.grad(bce, (conv.weight, conv.bias))

    conv_before = getattr(before.bbox_head, head_name)
    z_before = positive_logits(before, data, cache['pos'])
    expected = []
    for i in range(z_before.shape[0]):
        gw, gb = torch.autograd.grad(
            (z_before[i] * cache['grads'][i]).sum(),
            (conv_before.weight, conv_before.bias),
            retain_graph=True,
        )
        expected.append((gw * gw_probe).sum() + (gb * gb_probe).sum())
    expected = torch.stack(expected)
    assert rewards.numel() == expected.numel() > 0
    torch.testing.assert_close(rewards, expected, rtol=1e-3, atol=1e-6)


def test_two_stage_influence_reward_from_explicit_fc_gradients(det):
    distiller = det.build_two_stage(temperature=RL)
    probe = det.make_batch(distiller, num_items=(2, 3))
    data = det.make_batch(distiller, num_items=(3, 2))
    unit = build_reward('influence')
    assert _first_influence_step(distiller, probe, unit) is None
    probe_cache = unit.probe
    rewards, before, after, cache = _step_and_reward(distiller, data, unit)

    def roi_scores(student, batch, rois):
        student.train()
        x = student.extract_feat(batch['inputs'])
        return student.roi_head._bbox_forward(x, rois)['cls_score']

    fc_after = after.roi_head.bbox_head.fc_cls
    ce = F.cross_entropy(roi_scores(after, probe, probe_cache['rois']), probe_cache['labels'])
    gw_probe, gb_probe = torch.autograd.grad(ce, (fc_after.weight, fc_after.bias))
    fc_before = before.roi_head.bbox_head.fc_cls
    z = roi_scores(before, data, cache['rois'])
    expected = []
    for i in range(z.shape[0]):
        gw, gb = torch.autograd.grad(
            (z[i] * cache['grads'][i]).sum(), (fc_before.weight, fc_before.bias), retain_graph=True
        )
        expected.append((gw * gw_probe).sum() + (gb * gb_probe).sum())
    torch.testing.assert_close(rewards, torch.stack(expected), rtol=1e-3, atol=1e-6)
