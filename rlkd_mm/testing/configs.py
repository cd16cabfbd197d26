"""Small versions of the shipped configs for tests: a few images, no dataloader workers."""

import os.path as osp
from typing import Any, Optional

from mmengine.config import Config


def small_config(
    config: str,
    train: Optional[int] = None,
    val: Optional[int] = None,
    test: Optional[int] = None,
    batch_size: Optional[int] = None,
    max_epochs: Optional[int] = None,
    val_interval: Optional[int] = None,
    in_process: bool = True,
) -> Config:
    """``config`` (a file) with the given settings (None keeps the config's).

    Args:
        config (str): the config file.
        train, val, test (int, optional): ``indices`` of each split's dataset (the first N).
        batch_size (int, optional): the training batch size.
        max_epochs (int, optional): ``train_cfg.max_epochs``.
        val_interval (int, optional): ``train_cfg.val_interval``.
        in_process (bool): load the training data in the main process (``num_workers=0``, not
            persistent). Defaults to True.
    """
    cfg = Config.fromfile(config)
    for split, num in (('train', train), ('val', val), ('test', test)):
        if num is not None:
            cfg[f'{split}_dataloader'].dataset.indices = num
    if batch_size is not None:
        cfg.train_dataloader.batch_size = batch_size
    if in_process:
        cfg.train_dataloader.num_workers = 0
        cfg.train_dataloader.persistent_workers = False
    if max_epochs is not None:
        cfg.train_cfg.max_epochs = max_epochs
    if val_interval is not None:
        cfg.train_cfg.val_interval = val_interval
    return cfg


def use_digits_det(cfg: Config, data_root: str, in_process: bool = False) -> Config:
    """Point a DigitsDet config's dataloaders and evaluators at ``data_root`` (ending with '/',
    e.g. made by ``rlkd_mm.datasets.digits_det.make_digits_det``); with ``in_process`` every
    split is loaded in the main process. Returns ``cfg``, changed in place."""
    for split in ('train', 'val', 'test'):
        loader = cfg[f'{split}_dataloader']
        loader.dataset.data_root = data_root
        if in_process:
            loader.num_workers = 0
            loader.persistent_workers = False
    for split in ('val', 'test'):
        cfg[f'{split}_evaluator'].ann_file = osp.join(
            data_root, f'annotations/instances_{split}.json'
        )
    return cfg


def save_random_teacher(teacher_config: str, path: str, scope: str) -> str:
    """Build the model of ``teacher_config`` (randomly initialised, in registry scope
    ``scope``: 'mmpretrain' or 'mmdet') and save its weights to ``path`` as a teacher
    checkpoint; returns ``path``."""
    import torch
    from mmengine.registry import init_default_scope

    from rlkd_mm.registry import MODELS

    init_default_scope(scope)
    teacher: Any = MODELS.build(Config.fromfile(teacher_config).model)
    torch.save(dict(state_dict=teacher.state_dict()), path)
    return path
