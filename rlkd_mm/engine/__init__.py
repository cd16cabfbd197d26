"""Training-loop components: the RLKD hook and its reward units, and the distiller optimizer
constructor."""

from .hooks import (
    AccumulatedGradHook,
    HeadroomHook,
    KDWarmupHook,
    RandomStateHook,
    RLKDHook,
    TeacherValHook,
)
from .optimizers import DistillerOptimWrapperConstructor
from .rewards import BaseReward, BatchReward, InfluenceReward, InstanceReward

__all__ = [
    'AccumulatedGradHook',
    'HeadroomHook',
    'KDWarmupHook',
    'RLKDHook',
    'RandomStateHook',
    'TeacherValHook',
    'DistillerOptimWrapperConstructor',
    'BaseReward',
    'BatchReward',
    'InfluenceReward',
    'InstanceReward',
]
