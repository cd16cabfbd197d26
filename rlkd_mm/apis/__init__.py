"""What the training tools call: the final model's evaluation of ``tools/train.py``, and the run
helpers of the benchmark and analysis scripts (:mod:`rlkd_mm.apis.runs`, which need a source
checkout)."""

from .final_metrics import (
    FINAL_METRICS,
    FINAL_MODEL,
    final_metrics_config,
    save_final_metrics,
    teacher_sha256,
)
from .runs import (
    check_one_teacher,
    config_digest,
    ensure_teacher,
    quiz_holdout_options,
    run_digest,
    run_many,
    run_one,
    split_quiz,
)

__all__ = [
    'FINAL_METRICS',
    'FINAL_MODEL',
    'check_one_teacher',
    'config_digest',
    'ensure_teacher',
    'final_metrics_config',
    'quiz_holdout_options',
    'run_digest',
    'run_many',
    'run_one',
    'save_final_metrics',
    'split_quiz',
    'teacher_sha256',
]
