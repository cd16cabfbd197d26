from .accumulated_grad_hook import AccumulatedGradHook
from .headroom_hook import HeadroomHook
from .kd_warmup_hook import KDWarmupHook
from .random_state_hook import RandomStateHook
from .rlkd_hook import RLKDHook
from .teacher_val_hook import TeacherValHook

__all__ = [
    'AccumulatedGradHook',
    'HeadroomHook',
    'KDWarmupHook',
    'RLKDHook',
    'RandomStateHook',
    'TeacherValHook',
]
