"""Every detection config builds its model; the distiller configs also run one training loss."""

import copy
import glob
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.config import Config
from mmengine.registry import init_default_scope

from rlkd_mm.models.distillers import SingleStageDetDistiller, TwoStageDetDistiller

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DIGITS_DET = sorted(
    glob.glob(osp.join(ROOT, 'configs/digits/det_*.py'))
    + glob.glob(osp.join(ROOT, 'configs/digits/gfl_*.py'))
    + glob.glob(osp.join(ROOT, 'configs/digits/frcnn_*.py'))
)
COCO_DET = sorted(glob.glob(osp.join(ROOT, 'configs/coco/*.py')))
DISTILLERS = ('rlkd_mm.SingleStageDetDistiller', 'rlkd_mm.TwoStageDetDistiller')


def _name(path):
    return osp.relpath(path, ROOT)


def load(path):
    cfg = Config.fromfile(path)
    if cfg.model.type in DISTILLERS:
        cfg.model.teacher_ckpt = None
    return cfg


def build(cfg):
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    return MODELS.build(cfg.model)


def count(module):
    return sum(p.numel() for p in module.parameters())


def test_the_expected_configs_exist():
    names = {osp.basename(p) for p in DIGITS_DET + COCO_DET}
    for name in (
        'gfl_ld_fixed.py',
        'gfl_ld_rlkd.py',
        'gfl_ld_ctkd.py',
        'gfl_ld_logitstd.py',
        'gfl_ld_logitstd_scaled.py',
        'gfl_ld_dtkd.py',
        'gfl_ld_cist.py',
        'frcnn_teacher.py',
        'frcnn_student.py',
        'frcnn_kd_fixed.py',
        'frcnn_kd_rlkd.py',
        'ld-rlkd_gfl-r101_gfl-r18_fpn_1x_coco.py',
        'ld-fixed_gfl-r101_gfl-r18_fpn_1x_coco.py',
        'kd-rlkd_faster-rcnn-r101_faster-rcnn-r18_fpn_1x_coco.py',
        'kd-fixed_faster-rcnn-r101_faster-rcnn-r18_fpn_1x_coco.py',
    ):
        assert name in names


@pytest.mark.parametrize('path', DIGITS_DET + COCO_DET, ids=_name)
def test_config_keeps_mmdet_scope_and_imports_rlkd_mm(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmdet'
    assert 'rlkd_mm' in cfg.custom_imports['imports']
    assert cfg.custom_imports.get('allow_failed_imports', False) is False


@pytest.mark.parametrize('path', DIGITS_DET, ids=_name)
def test_digits_config_builds(path):
    cfg = load(path)
    model = build(cfg)
    if cfg.model.type not in DISTILLERS:
        assert (
            model.bbox_head.num_classes == 10
            if hasattr(model, 'bbox_head')
            else model.roi_head.bbox_head.num_classes == 10
        )
        return
    assert cfg.optim_wrapper.constructor == 'rlkd_mm.DistillerOptimWrapperConstructor'
    # the student and teacher are exactly the models of the configs the distiller names
    student = build(Config.fromfile(osp.join(ROOT, cfg.model.student)))
    teacher = build(Config.fromfile(osp.join(ROOT, cfg.model.teacher)))
    assert count(model.student) == count(student)
    assert count(model.teacher) == count(teacher)
    assert count(model.teacher) > 2 * count(model.student)
    # the teacher checkpoint follows the convention of the classification configs
    teacher_name = osp.splitext(osp.basename(cfg.model.teacher))[0]
    assert Config.fromfile(path).model.teacher_ckpt == f'checkpoints/digits/{teacher_name}.pth'
    is_rlkd = cfg.model.temperature.type == 'rlkd_mm.RLTemperature'
    hooks = [h.type for h in cfg.get('custom_hooks', [])]
    assert ('rlkd_mm.RLKDHook' in hooks) == is_rlkd


@pytest.mark.parametrize(
    'path', [p for p in DIGITS_DET if osp.basename(p).startswith(('gfl_', 'frcnn_kd'))], ids=_name
)
def test_digits_distiller_config_trains_one_step(path):
    cfg = load(path)
    model = build(cfg)
    model.train()
    packed = demo_mm_inputs(
        batch_size=2, image_shapes=(3, 96, 96), num_items=[3, 2], num_classes=10
    )
    data = model.data_preprocessor(copy.deepcopy(packed), True)
    losses = model.loss(data['inputs'], data['data_samples'])
    kd_keys = [k for k in losses if k.startswith('loss') and k.endswith(('kd', 'ld'))]
    expected = {'loss_kd', 'loss_ld'} if isinstance(model, SingleStageDetDistiller) else {'loss_kd'}
    assert set(kd_keys) == expected
    for key in kd_keys:
        assert torch.isfinite(losses[key]) and float(losses[key].detach()) > 0
    assert float(losses['num_kd_instances']) > 0


@pytest.mark.parametrize('path', COCO_DET, ids=_name)
def test_coco_config_builds(path):
    cfg = load(path)
    model = build(cfg)
    if cfg.model.type not in DISTILLERS:
        assert model.backbone.depth == 18
        return
    assert cfg.optim_wrapper.constructor == 'rlkd_mm.DistillerOptimWrapperConstructor'
    assert cfg.model.teacher.startswith('mmdet::')
    assert model.student.backbone.depth == 18 and model.teacher.backbone.depth == 101
    hooks = [h.type for h in cfg.custom_hooks]
    if 'rlkd' in osp.basename(path):
        assert 'rlkd_mm.RLKDHook' in hooks
        assert cfg.model.temperature.type == 'rlkd_mm.RLTemperature'
        assert osp.isfile(path.replace('-rlkd_', '-fixed_'))  # its fixed-T twin
    else:
        assert hooks == [] and cfg.model.temperature.type == 'rlkd_mm.FixedTemperature'
    if isinstance(model, SingleStageDetDistiller):
        assert model.student.bbox_head.num_classes == 80 and model.ld_loss is not None
    else:
        assert isinstance(model, TwoStageDetDistiller)
        assert model.student.roi_head.bbox_head.num_classes == 80
