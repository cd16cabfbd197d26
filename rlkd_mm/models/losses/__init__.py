"""KD losses that take one temperature (or a student/teacher pair) per instance."""

from .base_kd_loss import BaseInstanceKDLoss
from .detection_kd_loss import InstanceLDLoss, InstanceSigmoidKDLoss
from .instance_dkd_loss import InstanceDKDLoss
from .instance_kd_loss import InstanceKDLoss

__all__ = [
    'BaseInstanceKDLoss',
    'InstanceKDLoss',
    'InstanceDKDLoss',
    'InstanceLDLoss',
    'InstanceSigmoidKDLoss',
]
