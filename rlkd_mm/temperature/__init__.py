"""Temperature policies: one temperature (or a student/teacher pair) per KD instance."""

from .base import BaseTemperature, TemperatureOutput, check_temperature_range
from .cist import CISTTemperature
from .class_temperature import ClassTemperature
from .ctkd import CTKDTemperature, gradient_reversal
from .dtkd import DTKDTemperature
from .fixed import FixedTemperature
from .logit_std import LogitStdTemperature, ScaledLogitStdTemperature
from .oracle import OracleTemperature, ScaledTemperature
from .random_temperature import RandomTemperature
from .rl import RLTemperature
from .rule import RuleTemperature

__all__ = [
    'BaseTemperature',
    'TemperatureOutput',
    'check_temperature_range',
    'FixedTemperature',
    'CTKDTemperature',
    'LogitStdTemperature',
    'ScaledLogitStdTemperature',
    'DTKDTemperature',
    'CISTTemperature',
    'ClassTemperature',
    'RandomTemperature',
    'RuleTemperature',
    'OracleTemperature',
    'ScaledTemperature',
    'gradient_reversal',
    'RLTemperature',
]
