"""Cluttered digits: a harder, deterministic variant of the UCI digits for classification.

Every source digit of a split is rendered ``copies`` times at ``img_size`` with its own difficulty
``d ~ U(0, 1)``: a random affine warp (rotation, scale, shear, shift) whose amplitude grows with
``d``, up to three stroke fragments cut from other digits of the same split, a contrast loss and
Gaussian noise that both grow with ``d``. Easy renderings look like the clean digits; hard ones
are ambiguous even for a large network, so a teacher's confidence varies from instance to
instance, which is what a per-instance temperature needs to act on. The output depends only on
the arguments (a generator seeded by ``split_seed``, ``gen_seed`` and the split), so every
machine builds the same images. This module has no OpenMMLab import.
"""

from typing import Tuple

import numpy as np
from PIL import Image

from .digits_source import SPLITS, check_split, check_split_seed, load_digits_split

# Largest amplitudes, reached at difficulty 1 (the warp is the identity at difficulty 0).
MAX_ROTATION_DEG = 25.0
MAX_SHEAR = 0.25
SCALE_RANGE = (0.75, 1.1)
MAX_SHIFT = 0.1  # of the image side
MAX_FRAGMENTS = 2
FRAGMENT_SIDE = 0.4  # of the image side
NOISE_STD = (5.0, 45.0)  # grey levels, at difficulty 0 and 1
MIN_CONTRAST = 0.6


def _upsample(img: np.ndarray, size: int) -> np.ndarray:
    big = Image.fromarray(img).resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(big, dtype=np.float32)


def _warp(img: np.ndarray, rng: np.random.Generator, difficulty: float) -> np.ndarray:
    """Affine-warp a float image about its centre; the amplitude grows with ``difficulty``."""
    size = img.shape[0]
    angle = np.deg2rad(rng.uniform(-1, 1) * MAX_ROTATION_DEG * difficulty)
    lo, hi = SCALE_RANGE
    scale = 1.0 + difficulty * (rng.uniform(lo, hi) - 1.0)
    shear = rng.uniform(-1, 1) * MAX_SHEAR * difficulty
    shift = rng.uniform(-1, 1, size=2) * MAX_SHIFT * size * difficulty
    cos, sin = np.cos(angle), np.sin(angle)
    forward = scale * np.array([[cos, -sin], [sin, cos]]) @ np.array([[1.0, shear], [0.0, 1.0]])
    # PIL maps each output pixel to an input pixel: invert the forward map about the centre.
    inverse = np.linalg.inv(forward)
    centre = np.array([size / 2.0, size / 2.0])
    offset = centre - inverse @ (centre + shift)
    coeffs = (inverse[0, 0], inverse[0, 1], offset[0], inverse[1, 0], inverse[1, 1], offset[1])
    out = Image.fromarray(img, mode='F').transform(
        (size, size), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BILINEAR
    )
    return np.array(out, dtype=np.float32)


def _add_fragments(
    canvas: np.ndarray, pool: np.ndarray, rng: np.random.Generator, count: int
) -> np.ndarray:
    """Paste ``count`` square cut-outs of random pool digits at random places (pixel max)."""
    size = canvas.shape[0]
    side = max(2, int(round(FRAGMENT_SIDE * size)))
    for _ in range(count):
        source = pool[rng.integers(len(pool))]
        sy, sx = rng.integers(0, size - side + 1, size=2)
        dy, dx = rng.integers(0, size - side + 1, size=2)
        patch = source[sy : sy + side, sx : sx + side] * rng.uniform(0.5, 1.0)
        region = canvas[dy : dy + side, dx : dx + side]
        np.maximum(region, patch, out=region)
    return canvas


def clutter_digits(
    images: np.ndarray, img_size: int, copies: int, rng: np.random.Generator
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render each digit ``copies`` times with a random difficulty.

    Args:
        images (np.ndarray): uint8 source digits of shape (N, h, w); fragments are cut from them.
        img_size (int): Side of the output images.
        copies (int): Renderings per source digit.
        rng (np.random.Generator): The only source of randomness.

    Returns:
        tuple: uint8 images of shape (N * copies, img_size, img_size) (source digit ``i``'s
        renderings are rows ``i * copies ... i * copies + copies - 1``), the index of each
        rendering's source digit (N * copies,), and each rendering's difficulty in [0, 1).
    """
    pool = np.stack([_upsample(img, img_size) for img in images])
    out = np.empty((len(images) * copies, img_size, img_size), dtype=np.uint8)
    source = np.repeat(np.arange(len(images)), copies)
    difficulty = rng.uniform(0.0, 1.0, size=len(out))
    for k, (i, d) in enumerate(zip(source, difficulty)):
        img = _warp(pool[i], rng, d)
        img = _add_fragments(img, pool, rng, int(rng.binomial(MAX_FRAGMENTS, d)))
        contrast = 1.0 - (1.0 - MIN_CONTRAST) * d * rng.uniform(0.5, 1.0)
        noise = rng.normal(0.0, NOISE_STD[0] + (NOISE_STD[1] - NOISE_STD[0]) * d, img.shape)
        out[k] = np.clip(img * contrast + noise, 0, 255).round().astype(np.uint8)
    return out, source, difficulty


def check_copies(copies: int) -> int:
    """Return ``copies`` if it is an int >= 1, else raise a ``ValueError`` naming it."""
    if isinstance(copies, bool) or not isinstance(copies, (int, np.integer)) or copies < 1:
        raise ValueError(f'copies must be an int >= 1, got copies={copies!r}')
    return int(copies)


def load_cluttered_digits_split(
    split: str, img_size: int = 32, copies: int = 1, split_seed: int = 0, gen_seed: int = 0
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cluttered renderings of one split of the UCI digits (see the module docstring).

    Args:
        split (str): One of ``'train'``, ``'val'``, ``'test'``.
        img_size (int): Side of the output images. Defaults to 32.
        copies (int): Renderings per source digit. Defaults to 1.
        split_seed (int): Seed of the stratified split of the source digits. Defaults to 0.
        gen_seed (int): Seed of the renderings. Defaults to 0.

    Returns:
        tuple: uint8 images (M, img_size, img_size), int64 labels (M,), float difficulties (M,).
    """
    check_split(split)
    split_seed = check_split_seed(split_seed)
    gen_seed = check_split_seed(gen_seed)
    copies = check_copies(copies)
    images, labels = load_digits_split(split, split_seed)
    rng = np.random.default_rng([gen_seed, split_seed, SPLITS.index(split)])
    out, source, difficulty = clutter_digits(images, int(img_size), copies, rng)
    return out, labels[source], difficulty
