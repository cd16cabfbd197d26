"""UCI handwritten digits as an mmpretrain classification dataset (bundled, no download)."""

from typing import List, Optional, Sequence

import numpy as np
from mmpretrain.datasets import BaseDataset
from PIL import Image

from rlkd_mm.registry import DATASETS

from .digits_clutter import check_copies, load_cluttered_digits_split
from .digits_source import CLASSES, check_split, check_split_seed, load_digits_split
from .noisy_labels import flipped_labels


def upsample_digits(images: np.ndarray, img_size: int) -> np.ndarray:
    """Bilinearly upsample grey digit images and repeat them over three channels.

    Args:
        images (np.ndarray): uint8 images of shape (N, h, w).
        img_size (int): Side of the output images.

    Returns:
        np.ndarray: uint8 images of shape (N, img_size, img_size, 3).
    """
    out = np.empty((len(images), img_size, img_size, 3), dtype=np.uint8)
    for i, img in enumerate(images):
        big = Image.fromarray(img).resize((img_size, img_size), Image.Resampling.BILINEAR)
        out[i] = np.asarray(big)[..., None]
    return out


@DATASETS.register_module()
class DigitsDataset(BaseDataset):
    """The 1797 UCI 8x8 handwritten digits of scikit-learn as a 10-class dataset.

    The digits are split once, stratified by class, into train / val / test (60 / 20 / 20 %,
    :func:`rlkd_mm.datasets.digits_source.split_indices`); the split depends on ``split_seed``
    only. Images are upsampled bilinearly to ``img_size`` and kept in memory as uint8 arrays of
    shape (img_size, img_size, 3) under the key ``img`` (with ``img_shape`` and ``ori_shape``, as
    ``LoadImageFromFile`` would set them), so a pipeline needs no loading step:
    ``[dict(type='PackInputs')]`` is enough. Each item's ``gt_label`` is the digit (int, 0-9).

    Args:
        split (str): ``'train'``, ``'val'`` or ``'test'``. Defaults to ``'train'``.
        img_size (int): Side of the square images, at least 8. Defaults to 32.
        split_seed (int): Seed of the stratified split. Defaults to 0.
        label_noise (float): Share of each class's images given a wrong label, one of the other
            classes uniformly (symmetric label noise, :func:`rlkd_mm.datasets.flipped_labels`),
            chosen over the whole split before ``indices`` takes a subset. Such items also carry
            ``clean_label`` and ``noisy_label`` (bool). Defaults to 0 (clean labels).
        noise_seed (int): Seed of which images get a wrong label, and which. Defaults to 0.
        ann_file (str): Unused (the data are bundled); kept for the BaseDataset interface.
            Defaults to ''.
        metainfo (dict, optional): Overrides of :attr:`METAINFO`. Defaults to None.
        data_root (str): Unused; kept for the BaseDataset interface. Defaults to ''.
        pipeline (Sequence): Transforms applied to each item. Defaults to ().
        test_mode (bool): Whether the dataset is used for testing. Defaults to False.
        **kwargs: Other arguments of :class:`mmpretrain.datasets.BaseDataset`
            (``indices``, ``serialize_data``, ``lazy_init``, ...).

    Example:
        >>> ds = DigitsDataset(split='val', pipeline=[dict(type='PackInputs')])
        >>> ds[0]['inputs'].shape
        torch.Size([3, 32, 32])
    """

    METAINFO = dict(classes=CLASSES)

    def __init__(
        self,
        split: str = 'train',
        img_size: int = 32,
        split_seed: int = 0,
        label_noise: float = 0.0,
        noise_seed: int = 0,
        ann_file: str = '',
        metainfo: Optional[dict] = None,
        data_root: str = '',
        pipeline: Sequence = (),
        test_mode: bool = False,
        **kwargs,
    ) -> None:
        self.split = check_split(split)
        if isinstance(img_size, bool) or not isinstance(img_size, (int, np.integer)):
            raise TypeError(f'img_size must be an int, got img_size={img_size!r}')
        if img_size < 8:
            raise ValueError(
                f'img_size must be >= 8 (the source digits are 8x8), got img_size={img_size!r}'
            )
        self.img_size = int(img_size)
        self.split_seed = check_split_seed(split_seed)
        if not 0 <= label_noise < 1:
            raise ValueError(f'label_noise must be in [0, 1), got label_noise={label_noise!r}')
        self.label_noise = float(label_noise)
        self.noise_seed = check_split_seed(noise_seed)
        super().__init__(
            ann_file=ann_file,
            metainfo=metainfo,
            data_root=data_root,
            pipeline=pipeline,
            test_mode=test_mode,
            **kwargs,
        )

    def load_data_list(self) -> List[dict]:
        """Build the items of the split.

        Returns:
            list[dict]: One dict per image with ``img`` (uint8, (H, W, 3)), ``img_shape`` and
            ``ori_shape`` ((H, W)) and ``gt_label`` (int).
        """
        images, labels = load_digits_split(self.split, self.split_seed)
        images = upsample_digits(images, self.img_size)
        shape = (self.img_size, self.img_size)
        return self._add_label_noise(
            [
                dict(img=img, img_shape=shape, ori_shape=shape, gt_label=int(label))
                for img, label in zip(images, labels)
            ]
        )

    def _add_label_noise(self, data_list: List[dict]) -> List[dict]:
        """``data_list`` with ``label_noise`` of each class relabelled (nothing when 0)."""
        if not self.label_noise:
            return data_list
        clean = [item['gt_label'] for item in data_list]
        noisy = flipped_labels(
            clean, None, self.label_noise, self.noise_seed, num_classes=len(CLASSES)
        )
        for item, y, y_noisy in zip(data_list, clean, noisy):
            item.update(gt_label=y_noisy, clean_label=y, noisy_label=y_noisy != y)
        return data_list

    def extra_repr(self) -> List[str]:
        """Lines added to ``repr(dataset)``."""
        return [
            f'Split: \t{self.split}',
            f'Image size: \t{self.img_size}',
            f'Split seed: \t{self.split_seed}',
        ] + (
            [f'Label noise: \t{self.label_noise} (seed {self.noise_seed})']
            if self.label_noise
            else []
        )


@DATASETS.register_module()
class ClutteredDigitsDataset(DigitsDataset):
    """The UCI digits rendered harder: warped, cluttered with stroke fragments, noisy.

    Each source digit of the split is rendered ``copies`` times, each rendering with its own
    difficulty in [0, 1) (:func:`rlkd_mm.datasets.digits_clutter.load_cluttered_digits_split`):
    easy renderings look like the clean digits, hard ones are ambiguous, so a teacher's
    confidence varies across instances. The source split is the one of :class:`DigitsDataset`
    (same ``split_seed``), and the images depend only on the arguments. Items carry ``img``,
    ``img_shape``, ``ori_shape``, ``gt_label`` and the rendering's ``difficulty`` (float).

    Args:
        split (str): ``'train'``, ``'val'`` or ``'test'``. Defaults to ``'train'``.
        img_size (int): Side of the square images, at least 8. Defaults to 32.
        copies (int): Renderings per source digit (more renderings of the val / test digits
            make the metric less noisy). Defaults to 1.
        split_seed (int): Seed of the stratified split. Defaults to 0.
        gen_seed (int): Seed of the renderings. Defaults to 0.
        **kwargs: Other arguments of :class:`DigitsDataset`.
    """

    def __init__(
        self,
        split: str = 'train',
        img_size: int = 32,
        copies: int = 1,
        split_seed: int = 0,
        gen_seed: int = 0,
        **kwargs,
    ) -> None:
        self.copies = check_copies(copies)
        self.gen_seed = check_split_seed(gen_seed)
        super().__init__(split=split, img_size=img_size, split_seed=split_seed, **kwargs)

    def load_data_list(self) -> List[dict]:
        """Build the renderings of the split (see the class docstring)."""
        images, labels, difficulty = load_cluttered_digits_split(
            self.split, self.img_size, self.copies, self.split_seed, self.gen_seed
        )
        shape = (self.img_size, self.img_size)
        return self._add_label_noise(
            [
                dict(
                    img=np.repeat(img[..., None], 3, axis=2),
                    img_shape=shape,
                    ori_shape=shape,
                    gt_label=int(label),
                    difficulty=float(d),
                )
                for img, label, d in zip(images, labels, difficulty)
            ]
        )

    def extra_repr(self) -> List[str]:
        """Lines added to ``repr(dataset)``."""
        return super().extra_repr() + [
            f'Copies: \t{self.copies}',
            f'Generation seed: \t{self.gen_seed}',
        ]
