"""Training-loop components: the RLKD hook and the distiller optimizer constructor."""

from .hooks import RandomStateHook, RLKDHook, TeacherValHook
from .optimizers import DistillerOptimWrapperConstructor

__all__ = ['RLKDHook', 'RandomStateHook', 'TeacherValHook', 'DistillerOptimWrapperConstructor']
