"""Every shipped RLKD config uses the hook's default reward, a per-instance mode its distiller
supports (the mode chosen on the validation split: configs/digits/README.md, "Which per-instance
reward mode is the default")."""

import glob
import inspect
import os.path as osp

import pytest
from mmengine.config import Config

import rlkd_mm  # noqa: F401  (registers the distillers)
from rlkd_mm.engine import RLKDHook
from rlkd_mm.engine.rewards import build_reward
from rlkd_mm.models import distillers

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
RLKD_CONFIGS = sorted(
    p
    for p in glob.glob(osp.join(ROOT, 'configs', '*', '*.py'))
    if 'rlkd' in osp.basename(p) and '_base_' not in p
)


def test_the_hook_default_is_a_per_instance_mode():
    default = inspect.signature(RLKDHook).parameters['reward'].default
    assert default == 'influence'
    assert RLKDHook().reward == default


def test_every_rlkd_config_is_found():
    # digits cls / dkd / gfl / frcnn, coco gfl / frcnn, cifar100, imagenet
    assert len(RLKD_CONFIGS) >= 8, RLKD_CONFIGS


@pytest.mark.parametrize('path', RLKD_CONFIGS, ids=lambda p: osp.relpath(p, ROOT))
def test_rlkd_config_uses_the_default_reward(path):
    cfg = Config.fromfile(path)
    hooks = [h for h in cfg.custom_hooks if h['type'] == 'rlkd_mm.RLKDHook']
    assert len(hooks) == 1
    default = inspect.signature(RLKDHook).parameters['reward'].default
    assert hooks[0].get('reward', default) == default
    distiller = getattr(distillers, cfg.model.type.split('.')[-1])
    assert set(build_reward(default).keeps) <= set(distiller.reward_items)
