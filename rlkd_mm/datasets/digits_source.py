"""The UCI handwritten digits bundled with scikit-learn, split once for every rlkd_mm dataset.

Both the classification dataset (:class:`DigitsDataset`) and the detection generator
(:func:`make_digits_det`) draw their digits from the same stratified split, so a digit image used
for training one task never appears in the validation or test data of the other. This module has
no OpenMMLab import: the detection generator must work without mmpretrain.
"""

from typing import Dict, Tuple

import numpy as np

SPLITS = ('train', 'val', 'test')
# Share of each class that goes to train / val / test; test takes what is left after rounding.
SPLIT_RATIOS = (0.6, 0.2, 0.2)
NUM_CLASSES = 10
CLASSES = tuple(str(i) for i in range(NUM_CLASSES))
# The UCI images count ink in 4x4 blocks of a 32x32 bitmap, so pixel values lie in [0, 16].
MAX_PIXEL_VALUE = 16


def check_split(split: str) -> str:
    """Return ``split`` if it names a split, else raise a ``ValueError`` naming it."""
    if not isinstance(split, str) or split not in SPLITS:
        raise ValueError(f'split must be one of {SPLITS}, got split={split!r}')
    return split


def check_split_seed(split_seed: int) -> int:
    """Return ``split_seed`` if it is a non-negative int, else raise naming it."""
    if isinstance(split_seed, bool) or not isinstance(split_seed, (int, np.integer)):
        raise TypeError(f'split_seed must be an int, got split_seed={split_seed!r}')
    if split_seed < 0:
        raise ValueError(f'split_seed must be >= 0, got split_seed={split_seed!r}')
    return int(split_seed)


def load_digits_arrays() -> Tuple[np.ndarray, np.ndarray]:
    """Load all 1797 UCI digits as uint8 images.

    Returns:
        tuple[np.ndarray, np.ndarray]: images of shape (1797, 8, 8), uint8 in [0, 255], and
        labels of shape (1797,), int64 in [0, 9].
    """
    # sklearn is only needed here; importing it lazily keeps `import rlkd_mm` light.
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.rint(digits.images * (255.0 / MAX_PIXEL_VALUE)).clip(0, 255).astype(np.uint8)
    labels = digits.target.astype(np.int64)
    return images, labels


def split_indices(labels: np.ndarray, split_seed: int = 0) -> Dict[str, np.ndarray]:
    """Stratified, deterministic train/val/test split.

    Each class is shuffled with a generator seeded by ``split_seed`` and cut by
    :data:`SPLIT_RATIOS`, so every split keeps the class proportions of the whole set.

    Args:
        labels (np.ndarray): Class labels of shape (N,).
        split_seed (int): Seed of the shuffle. Defaults to 0.

    Returns:
        dict[str, np.ndarray]: For each name in :data:`SPLITS`, sorted indices into ``labels``.
        The three index sets are disjoint and cover ``range(N)``.
    """
    split_seed = check_split_seed(split_seed)
    labels = np.asarray(labels)
    rng = np.random.default_rng(split_seed)
    parts = {name: [] for name in SPLITS}
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n_train = int(round(SPLIT_RATIOS[0] * len(idx)))
        n_val = int(round(SPLIT_RATIOS[1] * len(idx)))
        parts['train'].append(idx[:n_train])
        parts['val'].append(idx[n_train : n_train + n_val])
        parts['test'].append(idx[n_train + n_val :])
    return {name: np.sort(np.concatenate(chunks)) for name, chunks in parts.items()}


def load_digits_split(split: str, split_seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Images and labels of one split of the UCI digits.

    Args:
        split (str): One of ``'train'``, ``'val'``, ``'test'``.
        split_seed (int): Seed of the stratified split. Defaults to 0.

    Returns:
        tuple[np.ndarray, np.ndarray]: images of shape (M, 8, 8), uint8 in [0, 255], and labels
        of shape (M,), int64 in [0, 9].
    """
    check_split(split)
    images, labels = load_digits_arrays()
    idx = split_indices(labels, split_seed)[split]
    return images[idx], labels[idx]
