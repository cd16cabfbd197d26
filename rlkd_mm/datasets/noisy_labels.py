"""A partly mislabelled copy of a classification training set: what a teacher trained on noisy
labels learnt from, so that its reliability varies from instance to instance, or a student's
training set with label noise that a teacher trained on clean labels can correct."""

from typing import Any, Dict, List, Optional, Sequence, Union

import torch
from mmengine.dataset import BaseDataset

from rlkd_mm.registry import DATASETS


def flipped_labels(
    labels: Sequence[int],
    pairs: Optional[Sequence[Sequence[int]]],
    fraction: float,
    seed: int = 0,
    num_classes: Optional[int] = None,
) -> List[int]:
    """``labels`` with a seeded ``fraction`` of the images of each class relabelled.

    With ``pairs`` (disjoint class pairs ``(a, b)``), only the paired classes are touched and a
    chosen image gets the other class of its pair (some a's become b and some b's become a).
    With ``pairs=None`` (symmetric noise), every class is touched and a chosen image gets one of
    the ``num_classes - 1`` other classes, uniformly (default ``num_classes``: the largest label
    plus one).
    """
    if not 0 <= fraction <= 1:
        raise ValueError(f'fraction must be in [0, 1], got fraction={fraction}')
    labels = [int(y) for y in labels]
    gen = torch.Generator().manual_seed(seed)
    out = list(labels)
    if pairs is None:
        num_classes = max(labels) + 1 if num_classes is None else int(num_classes)
        if num_classes < 2 or max(labels) >= num_classes:
            raise ValueError(
                f'symmetric noise needs num_classes >= 2 above every label, got '
                f'num_classes={num_classes} for labels up to {max(labels)}'
            )
        for cls in sorted(set(labels)):
            idx = [i for i, y in enumerate(labels) if y == cls]
            chosen = torch.randperm(len(idx), generator=gen)[: round(fraction * len(idx))]
            shifts = torch.randint(1, num_classes, (len(chosen),), generator=gen)
            for j, shift in zip(chosen.tolist(), shifts.tolist()):
                out[idx[j]] = (cls + shift) % num_classes
        return out
    partner: Dict[int, int] = {}
    for pair in pairs:
        a, b = (int(c) for c in pair)
        if a == b or a in partner or b in partner:
            raise ValueError(f'pairs must be disjoint pairs of two classes, got pairs={pairs!r}')
        partner[a], partner[b] = b, a
    for cls in sorted(partner):
        idx = [i for i, y in enumerate(labels) if y == cls]
        num = round(fraction * len(idx))
        chosen = torch.randperm(len(idx), generator=gen)[:num].tolist()
        for j in chosen:
            out[idx[j]] = partner[cls]
    return out


@DATASETS.register_module()
class NoisyLabelDataset:
    """A classification dataset with a seeded fraction of its labels changed
    (:func:`flipped_labels`): swapped within class pairs, or, with ``pairs=None``, symmetric
    noise. A partly mislabelled training split, e.g. for a teacher whose reliability varies by
    instance. The images, their order and every other label are the wrapped dataset's; items are
    packed by its pipeline and then relabelled. (A student's training set with symmetric label
    noise: ``label_noise`` of :class:`rlkd_mm.ClutteredDigitsDataset`, which keeps ``indices``.)

    Args:
        dataset (dict | BaseDataset): the classification dataset (``gt_label`` per item).
        pairs (list[tuple[int, int]], optional): disjoint class pairs whose labels are swapped;
            None for symmetric noise over every class. Defaults to ((1, 7), (3, 8), (4, 9)).
        fraction (float): share of each touched class's images relabelled. Defaults to 0.4.
        seed (int): seed of which images are relabelled. Defaults to 0.
    """

    def __init__(
        self,
        dataset: Union[dict, BaseDataset],
        pairs: Optional[Sequence[Sequence[int]]] = ((1, 7), (3, 8), (4, 9)),
        fraction: float = 0.4,
        seed: int = 0,
    ) -> None:
        if isinstance(dataset, dict):
            dataset = DATASETS.build(dataset)
        self.dataset = dataset
        clean = [int(dataset.get_data_info(i)['gt_label']) for i in range(len(dataset))]
        num_classes = len(dataset.metainfo.get('classes', ())) or None
        self.labels = flipped_labels(clean, pairs, fraction, seed, num_classes=num_classes)
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
