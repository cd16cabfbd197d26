"""Test helpers, as ``mmdet.testing``: a stand-in Runner, a driver of hooks, a linear
distiller, a contextual bandit whose best temperatures are known (trained through
``RLKDHook``) and small versions of the shipped configs."""

from .bandit import (
    BANDIT_REWARDS,
    T_STAR,
    BanditCounterfactualReward,
    BanditDistiller,
    BanditInfluenceReward,
    run_bandit,
)
from .configs import save_random_teacher, small_config, use_digits_det
from .runner import FakeRunner, drive_hook
from .toy import LinearDistiller

__all__ = [
    'BANDIT_REWARDS',
    'BanditCounterfactualReward',
    'BanditDistiller',
    'BanditInfluenceReward',
    'FakeRunner',
    'LinearDistiller',
    'T_STAR',
    'drive_hook',
    'run_bandit',
    'save_random_teacher',
    'small_config',
    'use_digits_det',
]
