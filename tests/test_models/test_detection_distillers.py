"""Tests of SingleStageDetDistiller (GFL/LD, ATSS, RetinaNet, FCOS) and TwoStageDetDistiller
(Faster R-CNN) on tiny models and random images."""

import copy

import pytest
import torch
import torch.nn.functional as F
from mmdet.testing import demo_mm_inputs
from mmdet.utils import register_all_modules
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope

from rlkd_mm.models.distillers import SingleStageDetDistiller, TwoStageDetDistiller
from rlkd_mm.registry import MODELS
from rlkd_mm.temperature import FixedTemperature, TemperatureOutput

NUM_CLASSES = 3
IMG = 64
BACKBONE = dict(
    type='ResNet',
    depth=18,
    base_channels=8,
    num_stages=4,
    out_indices=(1, 2, 3),
    frozen_stages=-1,
    norm_cfg=dict(type='BN', requires_grad=True),
    norm_eval=False,
    style='pytorch',
    init_cfg=None,
)
NECK = dict(
    type='FPN',
    in_channels=[16, 32, 64],
    out_channels=16,
    start_level=0,
    add_extra_convs='on_output',
    num_outs=3,
)
PREPROCESSOR = dict(
    type='DetDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_size_divisor=32,
)
DENSE_TEST_CFG = dict(
    nms_pre=100,
    min_bbox_size=0,
    score_thr=0.05,
    nms=dict(type='nms', iou_threshold=0.6),
    max_per_img=20,
)
POLICIES = {
    'fixed': dict(type='rlkd_mm.FixedTemperature', temperature=4.0),
    'ctkd': dict(type='rlkd_mm.CTKDTemperature', mode='global'),
    'logit_std': dict(type='rlkd_mm.LogitStdTemperature'),
    'logit_std_scaled': dict(type='rlkd_mm.ScaledLogitStdTemperature'),
    'dtkd': dict(type='rlkd_mm.DTKDTemperature'),
    'random': dict(type='rlkd_mm.RandomTemperature', t_min=1.0, t_max=8.0),
    'rule': dict(type='rlkd_mm.RuleTemperature', temperature=2.0, power=1.0),
    'cist': dict(type='rlkd_mm.CISTTemperature'),
    'rl': dict(type='rlkd_mm.RLTemperature'),
}


@MODELS.register_module(force=True)
class PairWeightTemperature(FixedTemperature):
    """T_s = 1, T_t = 3 and a weight 1, 2, 3, ... per instance (a planted policy)."""

    def forward(self, student_logits, teacher_logits, gt_labels=None):
        n = student_logits.shape[0]
        t_s = student_logits.new_full((n,), 1.0)
        t_t = student_logits.new_full((n,), 3.0)
        weight = torch.arange(1, n + 1, dtype=student_logits.dtype)
        return TemperatureOutput(t_s, t_t, weight)


@MODELS.register_module(force=True)
class PrefactorExtraTemperature(FixedTemperature):
    """(T_s, T_t) = (1, 3) with prefactor 2, plus an extra term (2, 2) with prefactor 5."""

    def forward(self, student_logits, teacher_logits, gt_labels=None):
        n = student_logits.shape[0]

        def full(value):
            return student_logits.new_full((n,), value)

        extra = TemperatureOutput(full(2.0), full(2.0), prefactor=full(5.0))
        return TemperatureOutput(full(1.0), full(3.0), prefactor=full(2.0), extra=(extra,))


@MODELS.register_module(force=True)
class RecordingTemperature(FixedTemperature):
    """A fixed temperature that remembers the inputs of its last call."""

    def forward(self, student_logits, teacher_logits, gt_labels=None):
        self.last_shapes = (tuple(student_logits.shape), tuple(teacher_logits.shape))
        self.last_labels = None if gt_labels is None else gt_labels.clone()
        self.calls = getattr(self, 'calls', 0) + 1
        return super().forward(student_logits, teacher_logits, gt_labels)


@pytest.fixture(autouse=True, scope='module')
def mmdet_scope():
    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('mmdet'):
        yield


# --------------------------------------------------------------------------- model configs
def gfl_cfg(num_classes=NUM_CLASSES, reg_max=4, strides=(8, 16, 32), head_type='GFLHead'):
    # mmdet 3.3's LDHead default loss_ld names a loss that is not registered
    extra = (
        dict(loss_ld=dict(type='KnowledgeDistillationKLDivLoss', loss_weight=0.25, T=10))
        if head_type == 'LDHead'
        else {}
    )
    return dict(
        type='GFL',
        data_preprocessor=PREPROCESSOR,
        backbone=BACKBONE,
        neck=NECK,
        bbox_head=dict(
            type=head_type,
            num_classes=num_classes,
            in_channels=16,
            stacked_convs=1,
            feat_channels=16,
            norm_cfg=dict(type='GN', num_groups=4, requires_grad=True),
            anchor_generator=dict(
                type='AnchorGenerator',
                ratios=[1.0],
                octave_base_scale=4,
                scales_per_octave=1,
                strides=list(strides),
            ),
            loss_cls=dict(type='QualityFocalLoss', use_sigmoid=True, beta=2.0, loss_weight=1.0),
            loss_dfl=dict(type='DistributionFocalLoss', loss_weight=0.25),
            reg_max=reg_max,
            loss_bbox=dict(type='GIoULoss', loss_weight=2.0),
            **extra,
        ),
        train_cfg=dict(
            assigner=dict(type='ATSSAssigner', topk=9),
            allowed_border=-1,
            pos_weight=-1,
            debug=False,
        ),
        test_cfg=DENSE_TEST_CFG,
    )


def atss_cfg(num_classes=NUM_CLASSES):
    return dict(
        type='ATSS',
        data_preprocessor=PREPROCESSOR,
        backbone=BACKBONE,
        neck=NECK,
        bbox_head=dict(
            type='ATSSHead',
            num_classes=num_classes,
            in_channels=16,
            stacked_convs=1,
            feat_channels=16,
            norm_cfg=dict(type='GN', num_groups=4, requires_grad=True),
            anchor_generator=dict(
                type='AnchorGenerator',
                ratios=[1.0],
                octave_base_scale=4,
                scales_per_octave=1,
                strides=[8, 16, 32],
            ),
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[0.0, 0.0, 0.0, 0.0],
                target_stds=[0.1, 0.1, 0.2, 0.2],
            ),
            loss_cls=dict(
                type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0
            ),
            loss_bbox=dict(type='GIoULoss', loss_weight=2.0),
            loss_centerness=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        ),
        train_cfg=dict(
            assigner=dict(type='ATSSAssigner', topk=9),
            allowed_border=-1,
            pos_weight=-1,
            debug=False,
        ),
        test_cfg=DENSE_TEST_CFG,
    )


def retina_cfg(num_classes=NUM_CLASSES, ratios=(0.5, 1.0, 2.0), octave_base_scale=4):
    return dict(
        type='RetinaNet',
        data_preprocessor=PREPROCESSOR,
        backbone=BACKBONE,
        neck=NECK,
        bbox_head=dict(
            type='RetinaHead',
            num_classes=num_classes,
            in_channels=16,
            stacked_convs=1,
            feat_channels=16,
            anchor_generator=dict(
                type='AnchorGenerator',
                octave_base_scale=octave_base_scale,
                scales_per_octave=1,
                ratios=list(ratios),
                strides=[8, 16, 32],
            ),
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[0.0, 0.0, 0.0, 0.0],
                target_stds=[1.0, 1.0, 1.0, 1.0],
            ),
            loss_cls=dict(
                type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0
            ),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0),
        ),
        train_cfg=dict(
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.5,
                neg_iou_thr=0.4,
                min_pos_iou=0,
                ignore_iof_thr=-1,
            ),
            sampler=dict(type='PseudoSampler'),
            allowed_border=-1,
            pos_weight=-1,
            debug=False,
        ),
        test_cfg=DENSE_TEST_CFG,
    )


def fcos_cfg(num_classes=NUM_CLASSES):
    return dict(
        type='FCOS',
        data_preprocessor=PREPROCESSOR,
        backbone=BACKBONE,
        neck=NECK,
        bbox_head=dict(
            type='FCOSHead',
            num_classes=num_classes,
            in_channels=16,
            stacked_convs=1,
            feat_channels=16,
            strides=[8, 16, 32],
            regress_ranges=((-1, 16), (16, 32), (32, 1e8)),
            norm_on_bbox=True,
            centerness_on_reg=True,
            center_sampling=True,
            norm_cfg=dict(type='GN', num_groups=4, requires_grad=True),
            loss_cls=dict(
                type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0
            ),
            loss_bbox=dict(type='GIoULoss', loss_weight=1.0),
            loss_centerness=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        ),
        train_cfg=dict(
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.5,
                neg_iou_thr=0.4,
                min_pos_iou=0,
                ignore_iof_thr=-1,
            ),
            allowed_border=-1,
            pos_weight=-1,
            debug=False,
        ),
        test_cfg=DENSE_TEST_CFG,
    )


RCNN_SAMPLER_NUM = 16


def frcnn_cfg(num_classes=NUM_CLASSES, roi_head_type='StandardRoIHead'):
    return dict(
        type='FasterRCNN',
        data_preprocessor=PREPROCESSOR,
        backbone=BACKBONE,
        neck=dict(type='FPN', in_channels=[16, 32, 64], out_channels=16, num_outs=3),
        rpn_head=dict(
            type='RPNHead',
            in_channels=16,
            feat_channels=16,
            anchor_generator=dict(
                type='AnchorGenerator', scales=[4], ratios=[0.5, 1.0, 2.0], strides=[8, 16, 32]
            ),
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[0.0, 0.0, 0.0, 0.0],
                target_stds=[1.0, 1.0, 1.0, 1.0],
            ),
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0),
        ),
        roi_head=dict(
            type=roi_head_type,
            bbox_roi_extractor=dict(
                type='SingleRoIExtractor',
                roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
                out_channels=16,
                featmap_strides=[8, 16, 32],
            ),
            bbox_head=dict(
                type='Shared2FCBBoxHead',
                in_channels=16,
                fc_out_channels=32,
                roi_feat_size=7,
                num_classes=num_classes,
                bbox_coder=dict(
                    type='DeltaXYWHBBoxCoder',
                    target_means=[0.0, 0.0, 0.0, 0.0],
                    target_stds=[0.1, 0.1, 0.2, 0.2],
                ),
                reg_class_agnostic=False,
                loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                loss_bbox=dict(type='L1Loss', loss_weight=1.0),
            ),
        ),
        train_cfg=dict(
            rpn=dict(
                assigner=dict(
                    type='MaxIoUAssigner',
                    pos_iou_thr=0.7,
                    neg_iou_thr=0.3,
                    min_pos_iou=0.3,
                    match_low_quality=True,
                    ignore_iof_thr=-1,
                ),
                sampler=dict(
                    type='RandomSampler',
                    num=64,
                    pos_fraction=0.5,
                    neg_pos_ub=-1,
                    add_gt_as_proposals=False,
                ),
                allowed_border=-1,
                pos_weight=-1,
                debug=False,
            ),
            rpn_proposal=dict(
                nms_pre=200,
                max_per_img=100,
                nms=dict(type='nms', iou_threshold=0.7),
                min_bbox_size=0,
            ),
            rcnn=dict(
                assigner=dict(
                    type='MaxIoUAssigner',
                    pos_iou_thr=0.5,
                    neg_iou_thr=0.5,
                    min_pos_iou=0.5,
                    match_low_quality=False,
                    ignore_iof_thr=-1,
                ),
                sampler=dict(
                    type='RandomSampler',
                    num=RCNN_SAMPLER_NUM,
                    pos_fraction=0.25,
                    neg_pos_ub=-1,
                    add_gt_as_proposals=True,
                ),
                pos_weight=-1,
                debug=False,
            ),
        ),
        test_cfg=dict(
            rpn=dict(
                nms_pre=200,
                max_per_img=100,
                nms=dict(type='nms', iou_threshold=0.7),
                min_bbox_size=0,
            ),
            rcnn=dict(score_thr=0.0, nms=dict(type='nms', iou_threshold=0.5), max_per_img=20),
        ),
    )


DENSE_CFGS = {'gfl': gfl_cfg, 'atss': atss_cfg, 'retina': retina_cfg, 'fcos': fcos_cfg}


def build_single(kind='gfl', temperature=None, seed=0, **kwargs):
    torch.manual_seed(seed)
    cfg = DENSE_CFGS[kind]()
    kwargs.setdefault(
        'ld_loss', dict(type='rlkd_mm.InstanceLDLoss', loss_weight=0.25) if kind == 'gfl' else None
    )
    return SingleStageDetDistiller(
        student=cfg,
        teacher=copy.deepcopy(cfg),
        temperature=temperature or dict(type='rlkd_mm.FixedTemperature', temperature=4.0),
        **kwargs,
    )


def build_two_stage(temperature=None, seed=0, **kwargs):
    torch.manual_seed(seed)
    return TwoStageDetDistiller(
        student=frcnn_cfg(),
        teacher=frcnn_cfg(),
        temperature=temperature or dict(type='rlkd_mm.FixedTemperature', temperature=4.0),
        **kwargs,
    )


def make_batch(model, num_items=(3, 2), training=True):
    packed = demo_mm_inputs(
        batch_size=len(num_items),
        image_shapes=(3, IMG, IMG),
        num_items=list(num_items),
        num_classes=NUM_CLASSES,
    )
    return model.data_preprocessor(packed, training)


def all_finite(losses):
    values = []
    for value in losses.values():
        values += value if isinstance(value, list) else [value]
    return all(bool(torch.isfinite(v).all()) for v in values)


def total_loss(losses):
    total = 0
    for key, value in losses.items():
        if 'loss' in key:
            total = total + (sum(v.sum() for v in value) if isinstance(value, list) else value)
    return total


def as_float(value):
    value = sum(v.sum() for v in value) if isinstance(value, list) else value
    return float(value.detach())


def positives_by_image_and_level(distiller, data):
    """The student's positive priors, found image by image and level by level (independently of
    the distiller's flattening), as tuples (student cls logits [C], teacher cls logits [C],
    student box outputs, teacher box outputs, label)."""
    from mmdet.models.utils import unpack_gt_instances

    inputs, samples = data['inputs'], data['data_samples']
    gts, ignores, metas = unpack_gt_instances(samples)
    head = distiller.student.bbox_head
    with torch.no_grad():
        s_outs = head(distiller.student.extract_feat(inputs))
        t_outs = distiller.teacher.bbox_head(distiller.teacher.extract_feat(inputs))
    sizes = [s.shape[-2:] for s in s_outs[0]]
    anchors, flags = head.get_anchors(sizes, metas, inputs.device)
    targets = head.get_targets(anchors, flags, gts, metas, batch_gt_instances_ignore=ignores)
    labels_list = targets[1] if len(targets) == 6 else targets[0]
    rows = []
    c = NUM_CLASSES
    for img in range(inputs.shape[0]):
        for lvl, labels in enumerate(labels_list):
            s_cls = s_outs[0][lvl][img].permute(1, 2, 0).reshape(-1, c)
            t_cls = t_outs[0][lvl][img].permute(1, 2, 0).reshape(-1, c)
            width = s_outs[1][lvl].shape[1] // distiller.student.bbox_head.num_base_priors
            s_box = s_outs[1][lvl][img].permute(1, 2, 0).reshape(-1, width)
            t_box = t_outs[1][lvl][img].permute(1, 2, 0).reshape(-1, width)
            for k in range(labels.shape[1]):
                label = int(labels[img, k])
                if 0 <= label < c:
                    rows.append((s_cls[k], t_cls[k], s_box[k], t_box[k], label))
    return rows


# --------------------------------------------------------------------------- single stage
@pytest.mark.parametrize('kind', ['gfl', 'atss', 'retina', 'fcos'])
def test_single_stage_task_losses_equal_student_losses(kind):
    distiller = build_single(kind)
    data = make_batch(distiller)
    losses = distiller.loss(data['inputs'], data['data_samples'])
    expected = distiller.student.loss(data['inputs'], copy.deepcopy(data['data_samples']))
    assert set(expected) <= set(losses)
    for key, value in expected.items():
        assert as_float(losses[key]) == pytest.approx(as_float(value), rel=1e-5, abs=1e-7), key
    assert 'loss_kd' in losses
    assert ('loss_ld' in losses) == (kind == 'gfl')


@pytest.mark.parametrize('policy', sorted(POLICIES))
def test_single_stage_loss_finite_with_every_policy(policy):
    distiller = build_single('gfl', temperature=POLICIES[policy])
    distiller.train()
    assert distiller.temperature.score_type == 'sigmoid'
    data = make_batch(distiller)
    losses = distiller.loss(data['inputs'], data['data_samples'])
    assert all_finite(losses)
    # a randomly initialised teacher differs from the student: KD is strictly positive
    assert float(losses['loss_kd'].detach()) > 0
    assert float(losses['loss_ld'].detach()) > 0
    assert float(losses['num_kd_instances']) > 0
    assert 0 < float(losses['t_min']) <= float(losses['t_mean']) <= float(losses['t_max'])


@pytest.mark.parametrize('builder', ['single', 'two_stage'])
def test_rl_policy_acts_once_per_kd_instance(builder):
    """With acting enabled (as RLKDHook does after its warm-up) the agent gives one temperature
    per positive prior / RoI, inside its range, and keeps them as its pending step."""
    distiller = (
        build_single('gfl', temperature=POLICIES['rl'])
        if builder == 'single'
        else build_two_stage(temperature=POLICIES['rl'])
    )
    distiller.train()
    policy = distiller.temperature
    policy.acting = True
    data = make_batch(distiller)
    losses = distiller.loss(data['inputs'], data['data_samples'])
    assert all_finite(losses)
    step = policy.pop_pending()
    num = int(losses['num_kd_instances'])
    assert num > 0 and step.num == num
    assert bool(((step.temperatures >= 1.0) & (step.temperatures <= 10.0)).all())
    assert float(losses['t_mean']) == pytest.approx(float(step.temperatures.mean()), rel=1e-5)


def test_single_stage_kd_losses_match_independent_formula():
    """LD and sigmoid KD recomputed image by image, level by level with T = 2."""
    t = 2.0
    distiller = build_single(
        'gfl', temperature=dict(type='rlkd_mm.FixedTemperature', temperature=t)
    )
    data = make_batch(distiller)
    losses = distiller.loss(data['inputs'], data['data_samples'])
    rows = positives_by_image_and_level(distiller, data)
    assert len(rows) == int(losses['num_kd_instances']) > 0
    bins = distiller.student.bbox_head.reg_max + 1
    cls_kd, ld = 0.0, 0.0
    for s_cls, t_cls, s_box, t_box, _ in rows:
        p_t, p_s = torch.sigmoid(t_cls / t), torch.sigmoid(s_cls / t)
        cls_kd += (
            float((p_t * torch.log(p_t / p_s) + (1 - p_t) * torch.log((1 - p_t) / (1 - p_s))).sum())
            * t
            * t
        )
        q_t = F.softmax(t_box.view(4, bins) / t, dim=1)
        q_s = F.softmax(s_box.view(4, bins) / t, dim=1)
        side_kl = (q_t * (q_t.log() - q_s.log())).sum(dim=1).mean()
        weight = torch.sigmoid(s_cls).max()
        ld += float(weight * side_kl) * t * t
    # the default class-score KD weight is 0.1 (chosen on DigitsDet's validation split)
    assert float(losses['loss_kd']) == pytest.approx(0.1 * cls_kd / len(rows), rel=1e-4)
    assert float(losses['loss_ld']) == pytest.approx(0.25 * ld, rel=1e-4)


@pytest.mark.parametrize('ld_temperature', ['pair', 'teacher'])
def test_single_stage_policy_weight_and_ld_temperature(ld_temperature):
    """A policy's per-instance weight multiplies both KD terms; ``ld_temperature='teacher'``
    gives LD (T_t, T_t) while the class-score KD keeps the pair (T_s, T_t)."""
    distiller = build_single(
        'gfl',
        temperature=dict(type='rlkd_mm.PairWeightTemperature'),
        ld_temperature=ld_temperature,
    )
    data = make_batch(distiller)
    losses = distiller.loss(data['inputs'], data['data_samples'])
    # the distiller's positive order (level, image, prior) differs from positives_by_image_and_
    # level's (image, level, prior): recompute per positive, then weight in the distiller's order
    rows = positives_by_image_and_level(distiller, data)
    assert len(rows) == int(losses['num_kd_instances']) > 0
    bins = distiller.student.bbox_head.reg_max + 1
    t_s, t_t = 1.0, 3.0
    ld_ts = t_t if ld_temperature == 'teacher' else t_s
    keyed = {}
    for s_cls, t_cls, s_box, t_box, _ in rows:
        p_t, p_s = torch.sigmoid(t_cls / t_t), torch.sigmoid(s_cls / t_s)
        cls_kd = (p_t * torch.log(p_t / p_s) + (1 - p_t) * torch.log((1 - p_t) / (1 - p_s))).sum()
        q_t = F.softmax(t_box.view(4, bins) / t_t, dim=1)
        q_s = F.log_softmax(s_box.view(4, bins) / ld_ts, dim=1)
        side_kl = (q_t * (q_t.log() - q_s)).sum(dim=1).mean()
        ld = torch.sigmoid(s_cls).max() * side_kl * ld_ts * t_t
        keyed[round(float(s_cls.sum()), 4)] = (float(cls_kd) * t_s * t_t, float(ld))
    # the distiller's order: its flattened positives
    head = distiller.student.bbox_head
    with torch.no_grad():
        s_outs = head(distiller.student.extract_feat(data['inputs']))
    flat = torch.cat([m.permute(0, 2, 3, 1).reshape(-1, NUM_CLASSES) for m in s_outs[0]])
    order = sorted(keyed, key=lambda k: int((flat.sum(1) - k).abs().argmin()))
    cls_kd = sum((i + 1) * keyed[k][0] for i, k in enumerate(order))
    ld = sum((i + 1) * keyed[k][1] for i, k in enumerate(order))
    assert float(losses['loss_kd']) == pytest.approx(0.1 * cls_kd / len(rows), rel=1e-4)
    assert float(losses['loss_ld']) == pytest.approx(0.25 * ld, rel=1e-4)


@pytest.mark.parametrize('ld_temperature', ['pair', 'teacher'])
def test_single_stage_prefactor_and_extra_terms(ld_temperature):
    """The class-score KD is the sum over the policy's terms, each with its prefactor; LD gets
    the same terms with ``'pair'`` and only (T_t, T_t) at T_t^2 with ``'teacher'``."""
    distiller = build_single(
        'gfl',
        temperature=dict(type='rlkd_mm.PrefactorExtraTemperature'),
        ld_temperature=ld_temperature,
    )
    data = make_batch(distiller)
    losses = distiller.loss(data['inputs'], data['data_samples'])
    rows = positives_by_image_and_level(distiller, data)
    assert len(rows) == int(losses['num_kd_instances']) > 0
    bins = distiller.student.bbox_head.reg_max + 1

    def bern_kl(s_cls, t_cls, t_s, t_t):
        p_t, p_s = torch.sigmoid(t_cls / t_t), torch.sigmoid(s_cls / t_s)
        return float(
            (p_t * torch.log(p_t / p_s) + (1 - p_t) * torch.log((1 - p_t) / (1 - p_s))).sum()
        )

    def side_kl(s_box, t_box, t_s, t_t):
        q_t = F.softmax(t_box.view(4, bins) / t_t, dim=1)
        q_s = F.log_softmax(s_box.view(4, bins) / t_s, dim=1)
        return float((q_t * (q_t.log() - q_s)).sum(dim=1).mean())

    terms = ((1.0, 3.0, 2.0), (2.0, 2.0, 5.0))
    ld_terms = terms if ld_temperature == 'pair' else ((3.0, 3.0, 9.0),)
    cls_kd = ld = 0.0
    for s_cls, t_cls, s_box, t_box, _ in rows:
        cls_kd += sum(f * bern_kl(s_cls, t_cls, a, b) for a, b, f in terms)
        score = float(torch.sigmoid(s_cls).max())
        ld += score * sum(f * side_kl(s_box, t_box, a, b) for a, b, f in ld_terms)
    assert float(losses['loss_kd']) == pytest.approx(0.1 * cls_kd / len(rows), rel=1e-4)
    assert float(losses['loss_ld']) == pytest.approx(0.25 * ld, rel=1e-4)


def test_single_stage_ld_temperature_invalid():
    with pytest.raises(ValueError, match='ld_temperature'):
        build_single('gfl', ld_temperature='student')


@pytest.mark.parametrize('kind', ['gfl', 'retina'])
def test_single_stage_one_temperature_per_positive(kind):
    distiller = build_single(kind, temperature=dict(type='rlkd_mm.RecordingTemperature'))
    data = make_batch(distiller)
    losses = distiller.loss(data['inputs'], data['data_samples'])
    rows = positives_by_image_and_level(distiller, data)
    policy = distiller.temperature
    assert policy.calls == 1
    assert policy.last_shapes == ((len(rows), NUM_CLASSES), (len(rows), NUM_CLASSES))
    assert int(losses['num_kd_instances']) == len(rows) > 0
    # the policy sees the positives' ground-truth classes (as a multiset: order may differ)
    assert sorted(policy.last_labels.tolist()) == sorted(r[4] for r in rows)


def test_single_stage_gradients_reach_student_only():
    distiller = build_single('gfl', temperature=POLICIES['ctkd'])
    data = make_batch(distiller)
    total_loss(distiller.loss(data['inputs'], data['data_samples'])).backward()
    assert all(p.grad is None for p in distiller.teacher.parameters())
    assert distiller.student.bbox_head.gfl_cls.weight.grad.abs().sum() > 0
    assert distiller.student.bbox_head.gfl_reg.weight.grad.abs().sum() > 0
    assert distiller.student.backbone.conv1.weight.grad.abs().sum() > 0


def _teacher_state(distiller):
    return {k: v.clone() for k, v in distiller.teacher.state_dict().items()}


def _train_steps(distiller, data, steps=3):
    from rlkd_mm.engine.optimizers.distiller_constructor import DistillerOptimWrapperConstructor

    wrapper = DistillerOptimWrapperConstructor(
        dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.01, momentum=0.9))
    )(distiller)
    assert isinstance(wrapper, OptimWrapper)
    optimized = {id(p) for group in wrapper.optimizer.param_groups for p in group['params']}
    assert not optimized & {id(p) for p in distiller.teacher.parameters()}
    distiller.train()
    log_vars = None
    for _ in range(steps):
        log_vars = distiller.train_step(copy.deepcopy(data), wrapper)
    return log_vars


@pytest.mark.parametrize('builder', ['single', 'two_stage'])
def test_teacher_unchanged_after_training_steps(builder):
    distiller = build_single('gfl') if builder == 'single' else build_two_stage()
    packed = demo_mm_inputs(
        batch_size=2, image_shapes=(3, IMG, IMG), num_items=[3, 2], num_classes=NUM_CLASSES
    )
    teacher_before = _teacher_state(distiller)
    student_before = {k: v.clone() for k, v in distiller.student.state_dict().items()}
    log_vars = _train_steps(distiller, packed)
    # the KD losses are optimised, the non-loss scalars only logged
    assert 'num_kd_instances' in log_vars and 't_mean' in log_vars
    assert any(key.startswith('loss') and key.endswith('kd') for key in log_vars)
    assert not distiller.teacher.training
    for key, value in distiller.teacher.state_dict().items():
        assert torch.equal(value, teacher_before[key]), key
    student_after = distiller.student.state_dict()
    # the check could fail: the student's weights and BN statistics did move
    assert not torch.equal(
        student_after['backbone.conv1.weight'], student_before['backbone.conv1.weight']
    )
    assert not torch.equal(
        student_after['backbone.bn1.running_mean'], student_before['backbone.bn1.running_mean']
    )


@pytest.mark.parametrize('builder', ['single', 'two_stage'])
def test_predict_equals_student(builder):
    distiller = build_single('gfl') if builder == 'single' else build_two_stage()
    distiller.eval()
    data = make_batch(distiller, training=False)
    with torch.no_grad():
        ours = distiller(data['inputs'], copy.deepcopy(data['data_samples']), mode='predict')
        theirs = distiller.student(
            data['inputs'], copy.deepcopy(data['data_samples']), mode='predict'
        )
        teacher = distiller.teacher(
            data['inputs'], copy.deepcopy(data['data_samples']), mode='predict'
        )
    for a, b in zip(ours, theirs):
        assert torch.equal(a.pred_instances.bboxes, b.pred_instances.bboxes)
        assert torch.equal(a.pred_instances.scores, b.pred_instances.scores)
        assert torch.equal(a.pred_instances.labels, b.pred_instances.labels)
    # and not the teacher's (they are differently initialised)
    assert any(
        a.pred_instances.scores.shape != c.pred_instances.scores.shape
        or not torch.equal(a.pred_instances.scores, c.pred_instances.scores)
        for a, c in zip(ours, teacher)
    )


@pytest.mark.parametrize('kind', ['gfl', 'retina', 'fcos'])
def test_single_stage_empty_ground_truth(kind):
    distiller = build_single(kind, temperature=dict(type='rlkd_mm.RecordingTemperature'))
    data = make_batch(distiller, num_items=(0, 0))
    losses = distiller.loss(data['inputs'], data['data_samples'])
    assert all_finite(losses)
    assert float(losses['num_kd_instances']) == 0
    assert distiller.temperature.last_shapes == ((0, NUM_CLASSES), (0, NUM_CLASSES))
    kd_keys = ['loss_kd'] + (['loss_ld'] if kind == 'gfl' else [])
    for key in kd_keys:
        assert float(losses[key].detach()) == 0
        assert losses[key].requires_grad
    total_loss(losses).backward()
    assert distiller.adapter.final_cls_conv.weight.grad is not None


@pytest.mark.parametrize(
    'teacher_cfg, attribute',
    [
        (gfl_cfg(num_classes=4), 'num_classes'),
        (gfl_cfg(reg_max=8), 'reg_max'),
        (gfl_cfg(strides=(8, 16, 64)), 'prior_generator.strides'),
    ],
)
def test_single_stage_head_mismatch(teacher_cfg, attribute):
    with pytest.raises(ValueError, match=attribute):
        SingleStageDetDistiller(student=gfl_cfg(), teacher=teacher_cfg)


def test_single_stage_prior_count_mismatch():
    with pytest.raises(ValueError, match='num_base_priors'):
        SingleStageDetDistiller(
            student=retina_cfg(), teacher=retina_cfg(ratios=(1.0,)), ld_loss=None
        )


def test_single_stage_anchor_shape_mismatch():
    # same strides and anchors per location, but anchors of other sizes: prior i differs
    with pytest.raises(ValueError, match='base_anchors') as err:
        SingleStageDetDistiller(
            student=retina_cfg(), teacher=retina_cfg(octave_base_scale=8), ld_loss=None
        )
    assert 'student' in str(err.value) and 'teacher' in str(err.value)


def test_single_stage_unknown_head():
    cfg = gfl_cfg(head_type='LDHead')
    with pytest.raises(TypeError, match='LDHead'):
        SingleStageDetDistiller(student=cfg, teacher=gfl_cfg())
    with pytest.raises(TypeError, match='SingleStageDetector'):
        SingleStageDetDistiller(student=frcnn_cfg(), teacher=gfl_cfg())


def test_single_stage_config_errors():
    with pytest.raises(ValueError, match='ld_loss'):
        SingleStageDetDistiller(student=retina_cfg(), teacher=retina_cfg())
    with pytest.raises(ValueError, match='temperature.score_type'):
        SingleStageDetDistiller(
            student=gfl_cfg(),
            teacher=gfl_cfg(),
            temperature=dict(type='rlkd_mm.FixedTemperature', score_type='softmax'),
        )


# --------------------------------------------------------------------------- two stage
def test_two_stage_task_losses_equal_student_losses():
    distiller = build_two_stage()
    data = make_batch(distiller)
    torch.manual_seed(1)
    losses = distiller.loss(data['inputs'], copy.deepcopy(data['data_samples']))
    torch.manual_seed(1)
    expected = distiller.student.loss(data['inputs'], copy.deepcopy(data['data_samples']))
    assert set(expected) <= set(losses)
    for key, value in expected.items():
        assert as_float(losses[key]) == pytest.approx(as_float(value), rel=1e-5, abs=1e-7), key


@pytest.mark.parametrize('policy', sorted(POLICIES))
@pytest.mark.parametrize('kd', ['kd', 'dkd'])
def test_two_stage_loss_finite_with_every_policy(policy, kd):
    kd_loss = (
        dict(type='rlkd_mm.InstanceKDLoss')
        if kd == 'kd'
        else dict(type='rlkd_mm.InstanceDKDLoss', alpha=1.0, beta=2.0)
    )
    distiller = build_two_stage(temperature=POLICIES[policy], kd_loss=kd_loss)
    distiller.train()
    assert distiller.temperature.score_type == 'softmax'
    data = make_batch(distiller)
    losses = distiller.loss(data['inputs'], data['data_samples'])
    assert all_finite(losses)
    assert float(losses['loss_kd']) > 0
    assert float(losses['num_kd_instances']) == 2 * RCNN_SAMPLER_NUM


def test_two_stage_one_temperature_per_roi_and_kd_value():
    t = 3.0
    distiller = build_two_stage(
        temperature=dict(type='rlkd_mm.RecordingTemperature', temperature=t),
        reg_kd_loss=dict(type='mmdet.MSELoss', loss_weight=1.0),
    )
    data = make_batch(distiller)
    losses = distiller.loss(data['inputs'], data['data_samples'])
    policy = distiller.temperature
    num_rois = 2 * RCNN_SAMPLER_NUM
    assert policy.calls == 1
    assert policy.last_shapes == ((num_rois, NUM_CLASSES + 1), (num_rois, NUM_CLASSES + 1))
    labels = policy.last_labels
    assert labels.min() >= 0 and labels.max() <= NUM_CLASSES
    assert (labels < NUM_CLASSES).any() and (labels == NUM_CLASSES).any()
    assert int(losses['num_kd_instances']) == num_rois
    assert float(losses['loss_reg_kd']) > 0
    assert all_finite(losses)


def test_two_stage_gradients_reach_student_only():
    distiller = build_two_stage(
        temperature=POLICIES['ctkd'], reg_kd_loss=dict(type='mmdet.MSELoss', loss_weight=1.0)
    )
    data = make_batch(distiller)
    total_loss(distiller.loss(data['inputs'], data['data_samples'])).backward()
    assert all(p.grad is None for p in distiller.teacher.parameters())
    bbox_head = distiller.student.roi_head.bbox_head
    assert bbox_head.fc_cls.weight.grad.abs().sum() > 0
    assert bbox_head.fc_reg.weight.grad.abs().sum() > 0
    assert distiller.temperature.theta.grad is not None


def test_two_stage_empty_ground_truth():
    distiller = build_two_stage(reg_kd_loss=dict(type='mmdet.MSELoss', loss_weight=1.0))
    data = make_batch(distiller, num_items=(0, 0))
    losses = distiller.loss(data['inputs'], data['data_samples'])
    assert all_finite(losses)
    assert float(losses['loss_reg_kd']) == 0 and losses['loss_reg_kd'].requires_grad
    # every RoI is background and still a KD instance
    assert int(losses['num_kd_instances']) > 0
    total_loss(losses).backward()
    assert distiller.student.roi_head.bbox_head.fc_cls.weight.grad is not None


def test_two_stage_build_errors():
    with pytest.raises(ValueError, match='num_classes'):
        TwoStageDetDistiller(student=frcnn_cfg(), teacher=frcnn_cfg(num_classes=5))
    with pytest.raises(TypeError, match='TwoStageDetector'):
        TwoStageDetDistiller(student=gfl_cfg(), teacher=frcnn_cfg())
    with pytest.raises(ValueError, match='temperature.score_type'):
        TwoStageDetDistiller(
            student=frcnn_cfg(),
            teacher=frcnn_cfg(),
            temperature=dict(type='rlkd_mm.DTKDTemperature', score_type='sigmoid'),
        )


def test_two_stage_unsupported_roi_head():
    from mmdet.models.roi_heads import StandardRoIHead
    from mmdet.registry import MODELS as MMDET_MODELS

    @MMDET_MODELS.register_module(force=True)
    class PatchedBoxRoIHead(StandardRoIHead):
        def bbox_loss(self, x, sampling_results):
            return super().bbox_loss(x, sampling_results)

    with pytest.raises(TypeError, match='PatchedBoxRoIHead'):
        TwoStageDetDistiller(
            student=frcnn_cfg(roi_head_type='PatchedBoxRoIHead'), teacher=frcnn_cfg()
        )


def test_single_stage_accepts_the_former_cls_kd_loss_name():
    with pytest.warns(UserWarning, match='renamed kd_loss'):
        distiller = build_single(
            'gfl', cls_kd_loss=dict(type='rlkd_mm.InstanceSigmoidKDLoss', loss_weight=0.3)
        )
    assert distiller.kd_loss.loss_weight == 0.3
    with pytest.warns(UserWarning):
        assert build_single('gfl', cls_kd_loss=None).kd_loss is None
