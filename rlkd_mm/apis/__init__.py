"""What the training tools call: the final model's evaluation of ``tools/train.py``."""

from .final_metrics import (
    FINAL_METRICS,
    FINAL_MODEL,
    final_metrics_config,
    save_final_metrics,
    teacher_sha256,
)

__all__ = [
    'FINAL_METRICS',
    'FINAL_MODEL',
    'final_metrics_config',
    'save_final_metrics',
    'teacher_sha256',
]
