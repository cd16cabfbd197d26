"""A partly mislabelled training set: a seeded fraction of each paired class swapped to its
partner, every other label and every image kept."""

import pytest
import torch

from rlkd_mm.datasets import NoisyLabelDataset, flipped_labels


def test_flipped_labels_swap_a_fraction_of_each_paired_class():
    labels = [c for c in range(5) for _ in range(20)]  # 20 images per class
    out = flipped_labels(labels, [(1, 3)], fraction=0.25, seed=0)
    changed = [(a, b) for a, b in zip(labels, out) if a != b]
    assert sorted(set(changed)) == [(1, 3), (3, 1)]
    assert sum(a == 1 for a, _ in changed) == 5 and sum(a == 3 for a, _ in changed) == 5
    assert flipped_labels(labels, [(1, 3)], 0.25, seed=0) == out  # seeded
    assert flipped_labels(labels, [(1, 3)], 0.25, seed=1) != out
    assert flipped_labels(labels, [(1, 3)], 0.0) == labels
    with pytest.raises(ValueError, match='disjoint pairs'):
        flipped_labels(labels, [(1, 3), (3, 4)], 0.5)
    with pytest.raises(ValueError, match='fraction must be in'):
        flipped_labels(labels, [(1, 3)], 1.5)


def test_noisy_dataset_relabels_items_and_keeps_the_images():
    clean_cfg = dict(
        type='rlkd_mm.DigitsDataset', split='train', pipeline=[dict(type='PackInputs')]
    )
    noisy = NoisyLabelDataset(dataset=clean_cfg, pairs=[(1, 7)], fraction=0.5, seed=0)
    clean = noisy.dataset
    assert len(noisy) == len(clean) and noisy.metainfo == clean.metainfo
    flips = [i for i in range(len(noisy)) if noisy.labels[i] != clean.get_data_info(i)['gt_label']]
    num_1_7 = sum(clean.get_data_info(i)['gt_label'] in (1, 7) for i in range(len(clean)))
    assert noisy.num_flipped == len(flips) and abs(len(flips) - num_1_7 / 2) <= 1
    i = flips[0]
    item, original = noisy[i], clean[i]
    assert torch.equal(item['inputs'], original['inputs'])
    assert (
        int(item['data_samples'].gt_label)
        == noisy.get_data_info(i)['gt_label']
        != int(original['data_samples'].gt_label)
    )
