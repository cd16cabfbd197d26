"""Training-loop components: the RLKD hook and the distiller optimizer constructor."""

from .hooks import (
    AccumulatedGradHook,
    HeadroomHook,
    KDWarmupHook,
    RandomStateHook,
    RLKDHook,
    TeacherValHook,
)
from .optimizers import DistillerOptimWrapperConstructor

__all__ = [
    'AccumulatedGradHook',
    'HeadroomHook',
    'KDWarmupHook',
    'RLKDHook',
    'RandomStateHook',
    'TeacherValHook',
    'DistillerOptimWrapperConstructor',
]
