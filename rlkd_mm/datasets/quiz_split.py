"""A quiz split carved from a training set: the held-out images that the headroom oracle and the
counterfactual reward evaluate on, and the rest, which the student trains on."""

from typing import Any, List, Sequence, Tuple, Union

import torch
from mmengine.dataset import BaseDataset

from rlkd_mm.registry import DATASETS


def quiz_split(pool: Sequence[int], fraction: float, seed: int = 0) -> Tuple[List[int], List[int]]:
    """``(train, quiz)``: a seeded ``fraction`` of ``pool`` (indices) held out as the quiz split
    (at least 2), the rest kept for training; both sorted.

    Raises:
        ValueError: ``fraction`` outside ``(0, 1)``, or a pool too small to leave both parts.
    """
    if not 0 < fraction < 1:
        raise ValueError(f'the quiz fraction must be in (0, 1), got {fraction}')
    pool = [int(i) for i in pool]
    num_quiz = max(2, round(fraction * len(pool)))
    if num_quiz >= len(pool):
        raise ValueError(
            f'a quiz split of {num_quiz} images leaves none of the {len(pool)} to train on'
        )
    perm = torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed)).tolist()
    quiz = sorted(pool[i] for i in perm[:num_quiz])
    train = sorted(pool[i] for i in perm[num_quiz:])
    return train, quiz


@DATASETS.register_module()
class QuizSplitDataset:
    """One part of a training set split into a quiz split and the rest (:func:`quiz_split`).

    ``part='train'`` is what the student trains on; ``part='quiz'`` the held-out images of the
    counterfactual reward (``RLKDHook(reward=dict(type='counterfactual', quiz_dataset=...))``)
    and of the headroom oracle. Both parts of one ``(dataset, fraction, seed)`` are disjoint
    and together the whole dataset, the same split as the tables' ``--quiz-fraction``. The
    validation and test splits are refused.

    Args:
        dataset (dict | BaseDataset): the training dataset (its own ``indices`` give the pool).
        fraction (float): share of the pool held out as the quiz split. Defaults to 0.1.
        seed (int): seed of the split. Defaults to 0.
        part (str): 'train' or 'quiz'. Defaults to 'train'.
    """

    def __init__(
        self,
        dataset: Union[dict, BaseDataset],
        fraction: float = 0.1,
        seed: int = 0,
        part: str = 'train',
    ) -> None:
        if part not in ('train', 'quiz'):
            raise ValueError(f"part must be 'train' or 'quiz', got part={part!r}")
        if isinstance(dataset, dict):
            split = dataset.get('split', 'train')
            if split in ('val', 'test'):
                raise ValueError(
                    f'the quiz split must come from the training source, got split={split!r}'
                )
            dataset = DATASETS.build(dataset)
        self.dataset = dataset
        self.fraction, self.seed, self.part = float(fraction), int(seed), part
        train, quiz = quiz_split(range(len(dataset)), fraction, seed)
        self.indices = train if part == 'train' else quiz

    @property
    def metainfo(self) -> dict:
        return self.dataset.metainfo

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, idx: int) -> Any:
        return self.dataset[self.indices[idx]]

    def get_data_info(self, idx: int) -> dict:
        return self.dataset.get_data_info(self.indices[idx])
