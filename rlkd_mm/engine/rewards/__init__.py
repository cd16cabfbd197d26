"""Reward modes of ``RLKDHook``, one registered unit per mode (``rlkd_mm.registry.REWARDS``):
``'instance'``, ``'influence'``, ``'batch'`` and ``'counterfactual'``. A new mode is one new
:class:`BaseReward` subclass; see its docstring."""

from .base import BaseReward, HeldReward, build_reward
from .batch import BatchReward
from .counterfactual import CounterfactualReward
from .influence import InfluenceReward, influence_rewards
from .instance import InstanceReward

__all__ = [
    'BaseReward',
    'BatchReward',
    'CounterfactualReward',
    'HeldReward',
    'InfluenceReward',
    'InstanceReward',
    'build_reward',
    'influence_rewards',
]
