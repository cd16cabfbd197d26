"""DigitsDet: a small COCO-format detection set made of real UCI digits pasted on dark canvases.

Each canvas holds 1 to ``max_digits`` digits of the matching split of the UCI digits
(:func:`rlkd_mm.datasets.digits_source.split_indices` with seed 0, the split
:class:`DigitsDataset` uses by default), so train canvases use train digits only, and likewise for
val and test. The output is byte-identical for the same arguments, which lets a config name
``data/digits_det/`` and every machine rebuild the same data.
"""

import json
import os
import os.path as osp
import shutil
from typing import Dict, List, Tuple

import numpy as np
from PIL import Image

from .digits_source import CLASSES, SPLITS, load_digits_split

# A source pixel counts as ink from 2/16 of full intensity: fainter pixels are dropped when a digit
# is cropped, so the pasted patch, and hence its box, ends where the visible ink ends.
INK_THRESHOLD = 32
# Digits are resampled until their box overlaps every earlier box of the canvas by at most this.
MAX_IOU = 0.1
MAX_PLACEMENT_TRIES = 50
# COCO category ids start at 1; category ``d + 1`` is named ``str(d)``, so mmdet's CocoDataset with
# ``classes=('0', ..., '9')`` maps it to label ``d``.
CATEGORY_ID_OFFSET = 1
BACKGROUND_MAX_LEVEL = 40.0
BACKGROUND_NOISE_STD = 6.0
SUBDIRS = SPLITS + ('annotations',)


def crop_to_ink(img: np.ndarray, threshold: int = INK_THRESHOLD) -> np.ndarray:
    """Crop a grey digit to the rows and columns holding ink.

    Args:
        img (np.ndarray): uint8 image of shape (h, w).
        threshold (int): Smallest pixel value that counts as ink. Defaults to
            :data:`INK_THRESHOLD`.

    Returns:
        np.ndarray: The crop, uint8 of shape (h', w'); pixels below ``threshold`` are zeroed.
    """
    ink = img >= threshold
    if not ink.any():
        raise ValueError(
            f'the digit image holds no ink above the threshold threshold={threshold!r}'
        )
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    crop = img[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].copy()
    crop[crop < threshold] = 0
    return crop


def render_digit(crop: np.ndarray, size: int) -> np.ndarray:
    """Resize an ink crop so that its longer side is ``size``, keeping its aspect ratio.

    Args:
        crop (np.ndarray): uint8 crop of shape (h, w), see :func:`crop_to_ink`.
        size (int): Length of the longer side after resizing.

    Returns:
        np.ndarray: float32 ink intensity in [0, 1] of shape (H, W), max(H, W) == size.
    """
    h, w = crop.shape
    scale = size / max(h, w)
    out_h = max(1, int(round(h * scale)))
    out_w = max(1, int(round(w * scale)))
    big = Image.fromarray(crop).resize((out_w, out_h), Image.Resampling.BILINEAR)
    return np.asarray(big, dtype=np.float32) / 255.0


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one box with several, all as [x, y, w, h].

    Args:
        box (np.ndarray): Shape (4,).
        boxes (np.ndarray): Shape (K, 4).

    Returns:
        np.ndarray: Shape (K,).
    """
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[0] + box[2], boxes[:, 0] + boxes[:, 2])
    y2 = np.minimum(box[1] + box[3], boxes[:, 1] + boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    union = box[2] * box[3] + boxes[:, 2] * boxes[:, 3] - inter
    return inter / union


def make_canvas(
    rng: np.random.Generator,
    digit_images: np.ndarray,
    digit_labels: np.ndarray,
    img_size: int,
    max_digits: int,
    min_digit_size: int,
    max_digit_size: int,
) -> Tuple[np.ndarray, List[Tuple[List[int], int]]]:
    """Paste 1 to ``max_digits`` random digits on a dark, noisy canvas.

    Args:
        rng (np.random.Generator): Source of all randomness.
        digit_images (np.ndarray): uint8 source digits of shape (M, 8, 8).
        digit_labels (np.ndarray): Their labels, shape (M,).
        img_size (int): Side of the square canvas.
        max_digits (int): Most digits on the canvas.
        min_digit_size (int): Smallest longer side of a pasted digit, in pixels.
        max_digit_size (int): Largest longer side of a pasted digit, in pixels.

    Returns:
        tuple[np.ndarray, list]: the canvas, uint8 of shape (img_size, img_size, 3), and one
        ``([x, y, w, h], label)`` per pasted digit; each box lies inside the canvas.
    """
    level = rng.uniform(0.0, BACKGROUND_MAX_LEVEL)
    canvas = level + rng.normal(0.0, BACKGROUND_NOISE_STD, size=(img_size, img_size, 3))
    canvas = canvas.clip(0.0, 255.0)
    num_digits = int(rng.integers(1, max_digits + 1))
    objects: List[Tuple[List[int], int]] = []
    for _ in range(num_digits):
        k = int(rng.integers(len(digit_images)))
        patch = render_digit(
            crop_to_ink(digit_images[k]), int(rng.integers(min_digit_size, max_digit_size + 1))
        )
        h, w = patch.shape
        placed = None
        for _ in range(MAX_PLACEMENT_TRIES):
            x = int(rng.integers(0, img_size - w + 1))
            y = int(rng.integers(0, img_size - h + 1))
            box = np.array([x, y, w, h], dtype=np.float64)
            if not objects:
                placed = (x, y)
                break
            others = np.array([b for b, _ in objects], dtype=np.float64)
            if box_iou(box, others).max() <= MAX_IOU:
                placed = (x, y)
                break
        if placed is None:
            # A crowded canvas keeps the digits it has rather than a heavily overlapping one.
            continue
        x, y = placed
        brightness = rng.uniform(160.0, 255.0)
        color = brightness * (1.0 - rng.uniform(0.0, 0.3, size=3))
        region = canvas[y : y + h, x : x + w]
        # max() keeps both digits readable where two boxes touch.
        canvas[y : y + h, x : x + w] = np.maximum(region, patch[..., None] * color)
        objects.append(([x, y, w, h], int(digit_labels[k])))
    return np.rint(canvas).astype(np.uint8), objects


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f'{name} must be an int, got {name}={value!r}')
    if value < minimum:
        raise ValueError(f'{name} must be >= {minimum}, got {name}={value!r}')
    return int(value)


def _prepare_out_dir(out_dir: str, overwrite: bool) -> None:
    if osp.exists(out_dir) and not osp.isdir(out_dir):
        raise NotADirectoryError(f'out_dir={out_dir!r} exists and is not a folder')
    if osp.isdir(out_dir) and os.listdir(out_dir):
        if not overwrite:
            raise FileExistsError(
                f'out_dir={out_dir!r} is not empty; pass overwrite=True (CLI: --overwrite) to '
                'replace its train/, val/, test/ and annotations/ folders'
            )
        # Only what this generator writes is removed; anything else the user put there stays.
        for sub in SUBDIRS:
            path = osp.join(out_dir, sub)
            if osp.isdir(path):
                shutil.rmtree(path)
            elif osp.exists(path):
                os.remove(path)
    for sub in SUBDIRS:
        os.makedirs(osp.join(out_dir, sub), exist_ok=True)


def make_digits_det(
    out_dir: str,
    num_train: int = 1500,
    num_val: int = 300,
    num_test: int = 300,
    img_size: int = 96,
    max_digits: int = 4,
    min_digit_size: int = 16,
    max_digit_size: int = 38,
    seed: int = 0,
    overwrite: bool = False,
) -> Dict[str, str]:
    """Write the DigitsDet detection set in COCO format.

    Layout::

        out_dir/
            train/000000.png ...    val/...    test/...
            annotations/instances_{train,val,test}.json

    Each json has ``images`` (``file_name`` relative to the split folder, so a config uses
    ``data_prefix=dict(img='train/')``), ``annotations`` (``bbox`` [x, y, w, h] in pixels, tight
    around the digit's ink and inside the image, ``area`` = w * h, ``iscrowd`` 0) and 10
    ``categories`` with ids 1..10 named '0'..'9'. Boxes of one image overlap by IoU <= 0.1.
    Images are RGB PNGs of shape (img_size, img_size, 3). The same arguments give byte-identical
    files.

    Args:
        out_dir (str): Output folder; created if missing. It must be empty unless ``overwrite``.
        num_train (int): Number of train images. Defaults to 1500.
        num_val (int): Number of val images. Defaults to 300.
        num_test (int): Number of test images. Defaults to 300.
        img_size (int): Side of the square images. Defaults to 96.
        max_digits (int): Most digits per image (at least one). Defaults to 4.
        min_digit_size (int): Smallest longer side of a digit in pixels. Defaults to 16.
        max_digit_size (int): Largest longer side of a digit in pixels. Defaults to 38.
        seed (int): Seed of the canvases (the digits' split is fixed). Defaults to 0.
        overwrite (bool): Replace the generated folders of a non-empty ``out_dir``.
            Defaults to False.

    Returns:
        dict[str, str]: Path of the annotation json of each split ('train', 'val', 'test').
    """
    nums = dict(
        train=_check_int('num_train', num_train, 1),
        val=_check_int('num_val', num_val, 1),
        test=_check_int('num_test', num_test, 1),
    )
    img_size = _check_int('img_size', img_size, 8)
    max_digits = _check_int('max_digits', max_digits, 1)
    min_digit_size = _check_int('min_digit_size', min_digit_size, 2)
    max_digit_size = _check_int('max_digit_size', max_digit_size, 2)
    seed = _check_int('seed', seed, 0)
    if max_digit_size < min_digit_size:
        raise ValueError(
            f'max_digit_size must be >= min_digit_size, got max_digit_size={max_digit_size!r} '
            f'and min_digit_size={min_digit_size!r}'
        )
    if max_digit_size > img_size:
        raise ValueError(
            f'max_digit_size must be <= img_size, got max_digit_size={max_digit_size!r} and '
            f'img_size={img_size!r}'
        )
    if not isinstance(out_dir, (str, os.PathLike)):
        raise TypeError(f'out_dir must be a path, got out_dir={out_dir!r}')
    out_dir = os.fspath(out_dir)
    _prepare_out_dir(out_dir, bool(overwrite))

    categories = [
        dict(id=label + CATEGORY_ID_OFFSET, name=name, supercategory='digit')
        for label, name in enumerate(CLASSES)
    ]
    ann_paths = {}
    for split_idx, split in enumerate(SPLITS):
        digit_images, digit_labels = load_digits_split(split, split_seed=0)
        # One stream per split, so the size of one split does not change the others.
        rng = np.random.default_rng(np.random.SeedSequence([seed, split_idx]))
        images, annotations = [], []
        for i in range(nums[split]):
            canvas, objects = make_canvas(
                rng,
                digit_images,
                digit_labels,
                img_size,
                max_digits,
                min_digit_size,
                max_digit_size,
            )
            file_name = f'{i:06d}.png'
            # Fixed PNG options and no metadata chunks keep the bytes reproducible.
            Image.fromarray(canvas).save(
                osp.join(out_dir, split, file_name), format='PNG', compress_level=6
            )
            image_id = i + 1
            images.append(dict(id=image_id, file_name=file_name, width=img_size, height=img_size))
            for box, label in objects:
                annotations.append(
                    dict(
                        id=len(annotations) + 1,
                        image_id=image_id,
                        category_id=label + CATEGORY_ID_OFFSET,
                        bbox=box,
                        area=box[2] * box[3],
                        iscrowd=0,
                    )
                )
        coco = dict(
            info=dict(
                description='DigitsDet: UCI digits on dark canvases (rlkd_mm)',
                split=split,
                seed=seed,
                version='1.0',
            ),
            licenses=[],
            images=images,
            annotations=annotations,
            categories=categories,
        )
        ann_path = osp.join(out_dir, 'annotations', f'instances_{split}.json')
        with open(ann_path, 'w', encoding='utf-8') as f:
            f.write(json.dumps(coco, sort_keys=True, separators=(',', ':')))
            f.write('\n')
        ann_paths[split] = ann_path
    return ann_paths
