from .base import BaseDistiller, RewardCacheMixin, load_teacher_checkpoint
from .classifier_distiller import ClassifierDistiller
from .dense_heads import DENSE_HEAD_ADAPTERS, DenseHeadAdapter
from .single_stage_distiller import SingleStageDetDistiller
from .two_stage_distiller import TwoStageDetDistiller

__all__ = [
    'BaseDistiller',
    'ClassifierDistiller',
    'DENSE_HEAD_ADAPTERS',
    'DenseHeadAdapter',
    'RewardCacheMixin',
    'SingleStageDetDistiller',
    'TwoStageDetDistiller',
    'load_teacher_checkpoint',
]
