"""Embedded real data: UCI digits for classification and the DigitsDet COCO generator."""

from .digits_clutter import load_cluttered_digits_split
from .digits_det import make_digits_det
from .digits_source import CLASSES, SPLITS, load_digits_split, split_indices
from .noisy_labels import NoisyLabelDataset, flipped_labels
from .quiz_split import QuizSplitDataset, quiz_split

__all__ = [
    'CLASSES',
    'SPLITS',
    'load_cluttered_digits_split',
    'load_digits_split',
    'make_digits_det',
    'NoisyLabelDataset',
    'QuizSplitDataset',
    'flipped_labels',
    'quiz_split',
    'split_indices',
]

# mmpretrain is optional for rlkd_mm as a whole (detection users may not have it); the
# classification dataset is only registered where it is installed.
try:
    from .digits import ClutteredDigitsDataset, DigitsDataset
except ImportError:
    pass
else:
    __all__ += ['ClutteredDigitsDataset', 'DigitsDataset']
