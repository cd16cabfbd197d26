import importlib.util
import json
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from rlkd_mm.datasets import digits_det, make_digits_det
from rlkd_mm.datasets.digits_det import MAX_IOU, box_iou, crop_to_ink, render_digit
from rlkd_mm.datasets.digits_source import SPLITS, load_digits_split

TINY = dict(num_train=8, num_val=4, num_test=4, img_size=64, max_digits=4, max_digit_size=30)
CLASSES = tuple(str(i) for i in range(10))


def _read_tree(root):
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = osp.join(dirpath, name)
            with open(path, 'rb') as f:
                out[osp.relpath(path, root)] = f.read()
    return out


@pytest.fixture(scope='module')
def tiny_set(tmp_path_factory):
    out = tmp_path_factory.mktemp('digits_det') / 'out'
    paths = make_digits_det(str(out), seed=0, **TINY)
    return out, paths


def test_layout_and_return_value(tiny_set):
    out, paths = tiny_set
    assert set(paths) == set(SPLITS)
    for split in SPLITS:
        assert paths[split] == osp.join(str(out), 'annotations', f'instances_{split}.json')
        n = TINY[f'num_{split}']
        assert sorted(os.listdir(out / split)) == [f'{i:06d}.png' for i in range(n)]
        img = np.asarray(Image.open(out / split / '000000.png'))
        assert img.shape == (64, 64, 3) and img.dtype == np.uint8


def test_same_seed_gives_identical_bytes(tiny_set, tmp_path):
    out, _ = tiny_set
    make_digits_det(str(tmp_path / 'again'), seed=0, **TINY)
    assert _read_tree(out) == _read_tree(tmp_path / 'again')


def test_different_seed_gives_different_data(tiny_set, tmp_path):
    out, _ = tiny_set
    make_digits_det(str(tmp_path / 'other'), seed=1, **TINY)
    a, b = _read_tree(out), _read_tree(tmp_path / 'other')
    assert a.keys() == b.keys()
    assert a['annotations/instances_train.json'] != b['annotations/instances_train.json']
    assert sum(a[k] != b[k] for k in a if k.endswith('.png')) >= 10


def test_pycocotools_loads_and_boxes_are_valid(tiny_set):
    from pycocotools.coco import COCO

    out, paths = tiny_set
    for split in SPLITS:
        coco = COCO(paths[split])
        cats = coco.loadCats(coco.getCatIds())
        assert [c['name'] for c in cats] == list(CLASSES)
        assert [c['id'] for c in cats] == list(range(1, 11))
        img_ids = coco.getImgIds()
        assert len(img_ids) == TINY[f'num_{split}']
        for img_id in img_ids:
            info = coco.loadImgs(img_id)[0]
            assert osp.isfile(out / split / info['file_name'])
            anns = coco.loadAnns(coco.getAnnIds(imgIds=img_id))
            assert 1 <= len(anns) <= TINY['max_digits']
            boxes = np.array([a['bbox'] for a in anns], dtype=np.float64)
            x, y, w, h = boxes.T
            assert (w > 0).all() and (h > 0).all()
            assert (x >= 0).all() and (y >= 0).all()
            assert (x + w <= info['width']).all() and (y + h <= info['height']).all()
            assert (np.maximum(w, h) >= 16).all() and (np.maximum(w, h) <= 30).all()
            for a in anns:
                assert a['iscrowd'] == 0 and 1 <= a['category_id'] <= 10
                assert a['area'] == a['bbox'][2] * a['bbox'][3]
            for i in range(len(boxes)):
                others = np.delete(boxes, i, axis=0)
                if len(others):
                    assert box_iou(boxes[i], others).max() <= MAX_IOU + 1e-9


def test_digits_are_visible_inside_their_boxes(tiny_set):
    out, paths = tiny_set
    with open(paths['train']) as f:
        coco = json.load(f)
    names = {im['id']: im['file_name'] for im in coco['images']}
    for ann in coco['annotations']:
        img = np.asarray(Image.open(out / 'train' / names[ann['image_id']])).astype(np.float64)
        x, y, w, h = ann['bbox']
        inside = img[y : y + h, x : x + w]
        # ink is pasted at >= 112 of 255 before bilinear blur; the background is <= ~40 + noise
        assert inside.max() > 100


def test_rendered_digit_is_tight():
    images, _ = load_digits_split('train')
    for img in images[:50]:
        crop = crop_to_ink(img)
        # every border row / column of the crop holds ink, so a box around the crop is tight
        assert crop[0].max() > 0 and crop[-1].max() > 0
        assert crop[:, 0].max() > 0 and crop[:, -1].max() > 0
        patch = render_digit(crop, 24)
        assert max(patch.shape) == 24
        assert patch[0].max() > 0 and patch[-1].max() > 0
        assert patch[:, 0].max() > 0 and patch[:, -1].max() > 0


def test_box_iou_against_hand_values():
    box = np.array([0.0, 0.0, 10.0, 10.0])
    others = np.array([[5.0, 0.0, 10.0, 10.0], [20.0, 20.0, 5.0, 5.0], [0.0, 0.0, 10.0, 10.0]])
    np.testing.assert_allclose(box_iou(box, others), [50 / 150, 0.0, 1.0])


def test_each_split_draws_from_its_own_digits(tmp_path, monkeypatch):
    # Give each split a pool holding a single digit class; the labels then reveal which pool each
    # split's canvases were built from.
    real = load_digits_split
    pool_class = dict(train=1, val=2, test=3)
    calls = []

    def fake_load(split, split_seed=0):
        calls.append((split, split_seed))
        images, labels = real(split, split_seed)
        keep = labels == pool_class[split]
        return images[keep], labels[keep]

    monkeypatch.setattr(digits_det, 'load_digits_split', fake_load)
    paths = make_digits_det(str(tmp_path / 'o'), seed=0, **TINY)
    assert sorted(calls) == sorted((s, 0) for s in SPLITS)
    for split in SPLITS:
        with open(paths[split]) as f:
            cat_ids = {a['category_id'] for a in json.load(f)['annotations']}
        assert cat_ids == {pool_class[split] + 1}


def test_refuses_non_empty_out_dir(tmp_path):
    out = tmp_path / 'busy'
    out.mkdir()
    (out / 'notes.txt').write_text('mine')
    with pytest.raises(FileExistsError, match='overwrite') as err:
        make_digits_det(str(out), **TINY)
    assert str(out) in str(err.value)
    assert os.listdir(out) == ['notes.txt']


def test_overwrite_replaces_generated_folders_only(tmp_path):
    out = tmp_path / 'o'
    make_digits_det(str(out), seed=0, **TINY)
    stale = out / 'train' / '999999.png'
    stale.write_bytes(b'stale')
    (out / 'notes.txt').write_text('mine')
    make_digits_det(str(out), seed=0, overwrite=True, **TINY)
    assert not stale.exists()
    assert (out / 'notes.txt').read_text() == 'mine'
    assert len(os.listdir(out / 'train')) == TINY['num_train']


@pytest.mark.parametrize(
    'kwargs, exc, key',
    [
        (dict(num_train=0), ValueError, 'num_train=0'),
        (dict(num_val=2.5), TypeError, 'num_val=2.5'),
        (dict(max_digits=0), ValueError, 'max_digits=0'),
        (dict(min_digit_size=20, max_digit_size=10), ValueError, 'max_digit_size=10'),
        (dict(img_size=32, max_digit_size=40), ValueError, 'img_size=32'),
        (dict(seed=-1), ValueError, 'seed=-1'),
    ],
)
def test_bad_arguments_raise(tmp_path, kwargs, exc, key):
    with pytest.raises(exc, match=key):
        make_digits_det(str(tmp_path / 'o'), **kwargs)


def test_mmdet_coco_dataset_maps_categories_to_labels(tiny_set):
    from mmdet.datasets import CocoDataset

    out, paths = tiny_set
    with open(paths['val']) as f:
        coco = json.load(f)
    ds = CocoDataset(
        data_root=str(out) + '/',
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'),
        metainfo=dict(classes=CLASSES),
        test_mode=True,
        pipeline=[],
    )
    assert len(ds) == TINY['num_val']
    by_image = {}
    for ann in coco['annotations']:
        by_image.setdefault(ann['image_id'], []).append(ann['category_id'] - 1)
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        assert osp.isfile(info['img_path'])
        labels = [inst['bbox_label'] for inst in info['instances']]
        assert labels == by_image[info['img_id']]
        assert all(0 <= label <= 9 for label in labels)


def test_mmdet_pipeline_packs_boxes(tiny_set):
    from mmdet.datasets import CocoDataset
    from mmdet.utils import register_all_modules

    register_all_modules()
    out, _ = tiny_set
    ds = CocoDataset(
        data_root=str(out) + '/',
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        metainfo=dict(classes=CLASSES),
        filter_cfg=dict(filter_empty_gt=True, min_size=8),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', with_bbox=True),
            dict(type='Resize', scale=(64, 64), keep_ratio=True),
            dict(type='PackDetInputs'),
        ],
    )
    assert len(ds) == TINY['num_train']
    item = ds[0]
    assert item['inputs'].shape == (3, 64, 64)
    gt = item['data_samples'].gt_instances
    assert len(gt) >= 1 and gt.labels.max() <= 9
    assert item['data_samples'].scale_factor == (1.0, 1.0)


def _load_cli():
    path = osp.join(
        osp.dirname(__file__), '..', '..', 'tools', 'dataset_converters', 'make_digits_det.py'
    )
    spec = importlib.util.spec_from_file_location('make_digits_det_cli', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_writes_and_refuses(tmp_path, capsys):
    cli = _load_cli()
    out = str(tmp_path / 'cli')
    args = [
        '--out',
        out,
        '--num-train',
        '2',
        '--num-val',
        '1',
        '--num-test',
        '1',
        '--img-size',
        '48',
        '--max-digit-size',
        '20',
        '--seed',
        '3',
    ]
    cli.main(args)
    assert 'instances_train.json' in capsys.readouterr().out
    assert len(os.listdir(osp.join(out, 'train'))) == 2
    with pytest.raises(SystemExit) as exit_info:
        cli.main(args)
    assert exit_info.value.code == 2
    assert '--overwrite' in capsys.readouterr().err
    cli.main(args + ['--overwrite'])
