from .base import BaseDistiller, load_teacher_checkpoint
from .classifier_distiller import ClassifierDistiller
from .single_stage_distiller import SingleStageDetDistiller
from .two_stage_distiller import TwoStageDetDistiller

__all__ = [
    'BaseDistiller',
    'ClassifierDistiller',
    'SingleStageDetDistiller',
    'TwoStageDetDistiller',
    'load_teacher_checkpoint',
]
