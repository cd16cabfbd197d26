import numpy as np
import pytest
import torch

from rlkd_mm.datasets import SPLITS, DigitsDataset, load_digits_split, split_indices
from rlkd_mm.datasets.digits_source import load_digits_arrays
from rlkd_mm.registry import DATASETS

NUM_DIGITS = 1797  # size of the UCI set bundled with scikit-learn


@pytest.fixture(scope='module')
def labels():
    return load_digits_arrays()[1]


def test_split_covers_all_digits_disjointly(labels):
    parts = split_indices(labels, split_seed=0)
    assert set(parts) == set(SPLITS)
    sizes = {name: len(idx) for name, idx in parts.items()}
    assert sum(sizes.values()) == NUM_DIGITS
    merged = np.concatenate([parts[name] for name in SPLITS])
    assert len(np.unique(merged)) == NUM_DIGITS  # disjoint and covering
    # 60 / 20 / 20 within rounding
    assert abs(sizes['train'] - 0.6 * NUM_DIGITS) <= 10
    assert abs(sizes['val'] - 0.2 * NUM_DIGITS) <= 10
    assert abs(sizes['test'] - 0.2 * NUM_DIGITS) <= 10


def test_split_is_stratified(labels):
    parts = split_indices(labels, split_seed=0)
    for cls in range(10):
        n_cls = int((labels == cls).sum())
        for name, ratio in zip(SPLITS, (0.6, 0.2, 0.2)):
            n_in_split = int((labels[parts[name]] == cls).sum())
            # each class is cut by the ratios, the last split takes the rounding remainder
            assert abs(n_in_split - ratio * n_cls) <= 1.0, (name, cls)


def test_split_is_deterministic_and_seeded(labels):
    a = split_indices(labels, split_seed=0)
    b = split_indices(labels, split_seed=0)
    c = split_indices(labels, split_seed=1)
    for name in SPLITS:
        np.testing.assert_array_equal(a[name], b[name])
    assert not np.array_equal(a['train'], c['train'])
    # a different seed still gives the same sizes per class
    for name in SPLITS:
        np.testing.assert_array_equal(
            np.bincount(labels[a[name]], minlength=10), np.bincount(labels[c[name]], minlength=10)
        )


def test_load_split_returns_matching_images_and_labels():
    images, labels = load_digits_split('val')
    assert images.dtype == np.uint8 and images.shape[1:] == (8, 8)
    assert images.shape[0] == labels.shape[0]
    assert images.max() == 255 and images.min() == 0
    assert set(np.unique(labels).tolist()) == set(range(10))


def test_dataset_items_and_metainfo():
    ds = DigitsDataset(split='test', img_size=32)
    _, src_labels = load_digits_split('test')
    assert len(ds) == len(src_labels)
    assert ds.metainfo['classes'] == tuple(str(i) for i in range(10))
    info = ds.get_data_info(0)
    assert info['img'].shape == (32, 32, 3) and info['img'].dtype == np.uint8
    assert info['img_shape'] == (32, 32)
    # grey digits: the three channels are equal
    np.testing.assert_array_equal(info['img'][..., 0], info['img'][..., 2])
    np.testing.assert_array_equal(ds.get_gt_labels(), src_labels)


def test_dataset_upsampling_keeps_the_digit():
    # Bilinear upsampling by 4 preserves the image up to blur: block-averaging the 32x32 image
    # back to 8x8 must be close to the source digit.
    ds = DigitsDataset(split='val', img_size=32)
    src, _ = load_digits_split('val')
    for i in (0, 7, 100):
        big = ds.get_data_info(i)['img'][..., 0].astype(np.float64)
        small = big.reshape(8, 4, 8, 4).mean(axis=(1, 3))
        assert np.abs(small - src[i]).mean() < 20.0


def test_labels_agree_with_images():
    # A nearest-centroid classifier fitted on train items reaches far above chance on val, which
    # fails if images and labels were shuffled apart.
    train = DigitsDataset(split='train', img_size=16)
    val = DigitsDataset(split='val', img_size=16)

    def arrays(ds):
        x = np.stack([ds.get_data_info(i)['img'][..., 0] for i in range(len(ds))])
        return x.reshape(len(ds), -1).astype(np.float64), ds.get_gt_labels()

    x_tr, y_tr = arrays(train)
    x_va, y_va = arrays(val)
    centroids = np.stack([x_tr[y_tr == c].mean(axis=0) for c in range(10)])
    dist = ((x_va[:, None, :] - centroids[None]) ** 2).sum(-1)
    acc = (dist.argmin(axis=1) == y_va).mean()
    assert acc > 0.85


def test_dataset_with_pack_inputs():
    ds = DigitsDataset(split='val', img_size=24, pipeline=[dict(type='PackInputs')])
    out = ds[3]
    assert isinstance(out['inputs'], torch.Tensor)
    assert out['inputs'].shape == (3, 24, 24) and out['inputs'].dtype == torch.uint8
    assert int(out['data_samples'].gt_label) == ds.get_data_info(3)['gt_label']
    assert out['data_samples'].img_shape == (24, 24)


def test_dataset_with_random_crop():
    # RandomCrop reads the image shape from the array: padding 2 keeps the size.
    ds = DigitsDataset(
        split='train',
        pipeline=[dict(type='RandomCrop', crop_size=32, padding=2), dict(type='PackInputs')],
    )
    assert ds[0]['inputs'].shape == (3, 32, 32)


def test_splits_are_disjoint_as_datasets():
    # Same source image in two splits would show up as identical arrays.
    keys = {}
    for split in SPLITS:
        images, _ = load_digits_split(split)
        keys[split] = {img.tobytes() for img in images}
    assert not keys['train'] & keys['test']
    assert not keys['train'] & keys['val']
    assert not keys['val'] & keys['test']


def test_registry_build():
    ds = DATASETS.build(dict(type='DigitsDataset', split='val', img_size=8))
    assert isinstance(ds, DigitsDataset) and ds.get_data_info(0)['img'].shape == (8, 8, 3)
    from mmpretrain.registry import DATASETS as PRETRAIN_DATASETS

    ds = PRETRAIN_DATASETS.build(dict(type='rlkd_mm.DigitsDataset', split='test', img_size=8))
    assert isinstance(ds, DigitsDataset) and ds.split == 'test'


@pytest.mark.parametrize('split', ['training', 'TRAIN', '', None])
def test_bad_split_raises(split):
    with pytest.raises(ValueError, match='split'):
        DigitsDataset(split=split)


def test_bad_img_size_and_seed_raise():
    with pytest.raises(ValueError, match='img_size=4'):
        DigitsDataset(img_size=4)
    with pytest.raises(TypeError, match='img_size'):
        DigitsDataset(img_size=32.0)
    with pytest.raises(ValueError, match='split_seed=-1'):
        DigitsDataset(split_seed=-1)


# --------------------------------------------------------------------------- cluttered digits
def test_cluttered_split_is_deterministic_and_seeded():
    from rlkd_mm.datasets import load_cluttered_digits_split

    a, la, da = load_cluttered_digits_split('val', img_size=16, copies=2)
    b, lb, db = load_cluttered_digits_split('val', img_size=16, copies=2)
    assert np.array_equal(a, b) and np.array_equal(la, lb) and np.array_equal(da, db)
    c, _, _ = load_cluttered_digits_split('val', img_size=16, copies=2, gen_seed=1)
    assert not np.array_equal(a, c)
    # copies renders each source digit several times, with the source digit's label
    _, labels = load_digits_split('val')
    assert a.shape == (2 * len(labels), 16, 16) and a.dtype == np.uint8
    assert np.array_equal(la, np.repeat(labels, 2))
    assert ((da >= 0) & (da < 1)).all()
    assert not np.array_equal(a[0], a[1])  # two renderings of one digit differ


def test_cluttered_difficulty_makes_images_harder():
    """Easy renderings stay close to the clean upsampled digit, hard ones do not."""
    from rlkd_mm.datasets import load_cluttered_digits_split
    from rlkd_mm.datasets.digits import upsample_digits

    images, _, difficulty = load_cluttered_digits_split('train', img_size=32)
    clean = upsample_digits(load_digits_split('train')[0], 32)[..., 0].astype(float)
    err = np.abs(images.astype(float) - clean).mean(axis=(1, 2))
    easy, hard = difficulty < 0.2, difficulty > 0.8
    assert err[easy].mean() * 3 < err[hard].mean()
    corr = np.corrcoef(difficulty, err)[0, 1]
    assert corr > 0.8


def test_cluttered_dataset_items_and_errors():
    from rlkd_mm.datasets import ClutteredDigitsDataset

    ds = ClutteredDigitsDataset(split='test', copies=3, pipeline=[dict(type='PackInputs')])
    _, labels = load_digits_split('test')
    assert len(ds) == 3 * len(labels)
    item = ds.get_data_info(4)
    assert item['img'].shape == (32, 32, 3) and item['gt_label'] == int(labels[1])
    assert np.array_equal(item['img'][..., 0], item['img'][..., 2])
    assert 0 <= item['difficulty'] < 1
    assert ds[0]['inputs'].shape == (3, 32, 32)
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match='copies'):
            ClutteredDigitsDataset(split='test', copies=bad)
    with pytest.raises(ValueError, match='split'):
        ClutteredDigitsDataset(split='dev')
