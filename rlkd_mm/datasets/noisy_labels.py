"""A partly mislabelled copy of a classification training set: what a teacher trained on noisy
labels learnt from, so that its reliability varies from instance to instance."""

from typing import Any, Dict, List, Sequence, Union

import torch
from mmengine.dataset import BaseDataset

from rlkd_mm.registry import DATASETS


def flipped_labels(
    labels: Sequence[int], pairs: Sequence[Sequence[int]], fraction: float, seed: int = 0
) -> List[int]:
    """``labels`` with a seeded ``fraction`` of the images of each class in ``pairs`` given the
    other class of its pair (a pair ``(a, b)``: some a's become b and some b's become a)."""
    if not 0 <= fraction <= 1:
        raise ValueError(f'fraction must be in [0, 1], got fraction={fraction}')
    partner: Dict[int, int] = {}
    for pair in pairs:
        a, b = (int(c) for c in pair)
        if a == b or a in partner or b in partner:
            raise ValueError(f'pairs must be disjoint pairs of two classes, got pairs={pairs!r}')
        partner[a], partner[b] = b, a
    gen = torch.Generator().manual_seed(seed)
    out = [int(y) for y in labels]
    for cls in sorted(partner):
        idx = [i for i, y in enumerate(labels) if int(y) == cls]
        num = round(fraction * len(idx))
        chosen = torch.randperm(len(idx), generator=gen)[:num].tolist()
        for j in chosen:
            out[idx[j]] = partner[cls]
    return out


@DATASETS.register_module()
class NoisyLabelDataset:
    """A classification dataset with a seeded fraction of the labels of some class pairs swapped
    (:func:`flipped_labels`): a partly mislabelled training split, e.g. for a teacher whose
    reliability varies by instance. The images, their order and every other label are the
    wrapped dataset's; items are packed by its pipeline and then relabelled.

    Args:
        dataset (dict | BaseDataset): the classification dataset (``gt_label`` per item).
        pairs (list[tuple[int, int]]): disjoint class pairs whose labels are swapped.
        fraction (float): share of each paired class's images relabelled. Defaults to 0.4.
        seed (int): seed of which images are relabelled. Defaults to 0.
    """

    def __init__(
        self,
        dataset: Union[dict, BaseDataset],
        pairs: Sequence[Sequence[int]] = ((1, 7), (3, 8), (4, 9)),
        fraction: float = 0.4,
        seed: int = 0,
    ) -> None:
        if isinstance(dataset, dict):
            dataset = DATASETS.build(dataset)
        self.dataset = dataset
        clean = [int(dataset.get_data_info(i)['gt_label']) for i in range(len(dataset))]
        self.labels = flipped_labels(clean, pairs, fraction, seed)
        self.num_flipped = sum(a != b for a, b in zip(clean, self.labels))

    @property
    def metainfo(self) -> dict:
        return self.dataset.metainfo

    def __len__(self) -> int:
        return len(self.dataset)

    def get_data_info(self, idx: int) -> dict:
        return dict(self.dataset.get_data_info(idx), gt_label=self.labels[idx])

    def __getitem__(self, idx: int) -> Any:
        item = self.dataset[idx]
        item['data_samples'].set_gt_label(self.labels[idx])
        return item
