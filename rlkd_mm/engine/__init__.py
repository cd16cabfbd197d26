"""Training-loop components: the RLKD hook and the distiller optimizer constructor."""

from .hooks import KDWarmupHook, RandomStateHook, RLKDHook, TeacherValHook
from .optimizers import DistillerOptimWrapperConstructor

__all__ = [
    'KDWarmupHook',
    'RLKDHook',
    'RandomStateHook',
    'TeacherValHook',
    'DistillerOptimWrapperConstructor',
]
