"""Partly mislabelled training sets: a seeded fraction of each paired class swapped to its
partner, or symmetric label noise over every class; every image kept."""

import pytest
import torch

from rlkd_mm.datasets import (
    ClutteredDigitsDataset,
    DigitsDataset,
    NoisyLabelDataset,
    flipped_labels,
)


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


def test_symmetric_noise_relabels_a_fraction_of_every_class_to_another_class():
    labels = [c for c in range(4) for _ in range(40)]  # 40 images per class
    out = flipped_labels(labels, None, fraction=0.25, seed=0, num_classes=4)
    for cls in range(4):
        changed = [b for a, b in zip(labels, out) if a == cls and b != a]
        assert len(changed) == 10  # exactly round(0.25 * 40) per class
        assert set(changed) <= set(range(4)) - {cls}
    targets = [b for a, b in zip(labels, out) if a != b]
    assert len(set(targets)) == 4  # every class receives wrong labels
    assert flipped_labels(labels, None, 0.25, seed=0, num_classes=4) == out
    assert flipped_labels(labels, None, 0.25, seed=1, num_classes=4) != out
    # the other classes are drawn uniformly: 3 targets, 10 000 relabelled images
    many = flipped_labels([0] * 10000, None, 1.0, seed=0, num_classes=4)
    counts = torch.bincount(torch.tensor(many), minlength=4)
    assert counts[0] == 0 and (counts[1:] - 10000 / 3).abs().max() < 200
    with pytest.raises(ValueError, match='num_classes >= 2 above every label'):
        flipped_labels(labels, None, 0.5, num_classes=3)


def test_digits_label_noise_is_chosen_before_indices_and_keeps_the_images():
    noisy = DigitsDataset(split='train', label_noise=0.3, noise_seed=0)
    clean = DigitsDataset(split='train')
    infos = [noisy.get_data_info(i) for i in range(len(noisy))]
    wrong = [i for i, info in enumerate(infos) if info['noisy_label']]
    per_class = torch.bincount(torch.tensor([infos[i]['clean_label'] for i in wrong]))
    sizes = torch.bincount(torch.tensor([info['clean_label'] for info in infos]))
    assert torch.equal(per_class, (0.3 * sizes.double()).round().long())
    for i, info in enumerate(infos):
        original = clean.get_data_info(i)
        assert (info['img'] == original['img']).all()
        assert info['clean_label'] == original['gt_label']
        assert (info['gt_label'] != original['gt_label']) == info['noisy_label']
    # a subset keeps the noisy labels of the whole split (a quiz split, the rest)
    subset = DigitsDataset(split='train', label_noise=0.3, noise_seed=0, indices=wrong[:7])
    assert [subset.get_data_info(i)['gt_label'] for i in range(7)] == [
        infos[i]['gt_label'] for i in wrong[:7]
    ]
    other = DigitsDataset(split='train', label_noise=0.3, noise_seed=1)
    assert [other.get_data_info(i)['noisy_label'] for i in range(len(other))] != [
        info['noisy_label'] for info in infos
    ]
    assert 'noisy_label' not in clean.get_data_info(0)
    with pytest.raises(ValueError, match='label_noise must be in'):
        DigitsDataset(split='train', label_noise=1.0)


def test_cluttered_digits_label_noise_reaches_the_packed_sample():
    noisy = ClutteredDigitsDataset(
        split='train', label_noise=0.3, pipeline=[dict(type='PackInputs')]
    )
    i = next(i for i in range(len(noisy)) if noisy.get_data_info(i)['noisy_label'])
    info = noisy.get_data_info(i)
    assert int(noisy[i]['data_samples'].gt_label) == info['gt_label'] != info['clean_label']
    assert sum(noisy.get_data_info(j)['noisy_label'] for j in range(len(noisy))) == 324
