from .rlkd_hook import RLKDHook

__all__ = ['RLKDHook']
