from .random_state_hook import RandomStateHook
from .rlkd_hook import RLKDHook

__all__ = ['RLKDHook', 'RandomStateHook']
