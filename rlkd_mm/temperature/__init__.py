"""Temperature policies: one temperature (or a student/teacher pair) per KD instance."""

from .base import BaseTemperature, check_temperature_range
from .cist import CISTTemperature
from .ctkd import CTKDTemperature, gradient_reversal
from .dtkd import DTKDTemperature
from .fixed import FixedTemperature
from .logit_std import LogitStdTemperature
from .rl import RLTemperature

__all__ = [
    'BaseTemperature',
    'check_temperature_range',
    'FixedTemperature',
    'CTKDTemperature',
    'LogitStdTemperature',
    'DTKDTemperature',
    'CISTTemperature',
    'gradient_reversal',
    'RLTemperature',
]
