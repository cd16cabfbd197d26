"""Every classification config loads, keeps mmpretrain's scope and builds its model."""

import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from rlkd_mm.registry import MODELS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CLS_CONFIGS = sorted(
    glob.glob(osp.join(ROOT, 'configs/digits/cls_*.py'))
    + glob.glob(osp.join(ROOT, 'configs/cifar100/*.py'))
    + glob.glob(osp.join(ROOT, 'configs/imagenet/*.py'))
)
POLICY_CONFIGS = {
    'cls_kd_fixed.py': 'FixedTemperature',
    'cls_kd_ctkd_global.py': 'CTKDTemperature',
    'cls_kd_ctkd_instance.py': 'CTKDTemperature',
    'cls_kd_logitstd.py': 'LogitStdTemperature',
    'cls_kd_logitstd_scaled.py': 'ScaledLogitStdTemperature',
    'cls_kd_dtkd.py': 'DTKDTemperature',
    'cls_kd_cist.py': 'CISTTemperature',
    'cls_kd_random.py': 'RandomTemperature',
    'cls_kd_rule.py': 'RuleTemperature',
    'cls_dkd_fixed.py': 'FixedTemperature',
    'cls_kd_rlkd.py': 'RLTemperature',
    'cls_dkd_rlkd.py': 'RLTemperature',
}


def test_every_policy_has_a_digits_config():
    names = {osp.basename(p) for p in CLS_CONFIGS}
    assert set(POLICY_CONFIGS) <= names
    assert len(glob.glob(osp.join(ROOT, 'configs/cifar100/*.py'))) >= 2
    assert len(glob.glob(osp.join(ROOT, 'configs/imagenet/*.py'))) >= 2


@pytest.mark.parametrize('path', CLS_CONFIGS, ids=lambda p: osp.relpath(p, ROOT))
def test_cls_config_builds(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmpretrain'
    assert 'rlkd_mm' in cfg.custom_imports['imports']
    model_cfg = cfg.model
    if 'teacher_ckpt' in model_cfg:
        model_cfg.teacher_ckpt = None  # the checkpoints are not part of the repository
    init_default_scope('mmpretrain')
    model = MODELS.build(model_cfg)
    name = osp.basename(path)
    if name in POLICY_CONFIGS:
        assert type(model.temperature).__name__ == POLICY_CONFIGS[name]
        assert model.teacher.head.num_classes == model.student.head.num_classes == 10
    if 'RLTemperature' in str(model_cfg.get('temperature', {}).get('type', '')):
        assert any(h['type'] == 'rlkd_mm.RLKDHook' for h in cfg.custom_hooks)
    if 'digits' in path:
        size = 32
        model.eval()
        with torch.no_grad():
            out = model(torch.rand(2, 3, size, size), mode='tensor')
        assert out.shape == (2, 10)
