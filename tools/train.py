"""Train a model (a distiller, or a plain mmdet / mmpretrain model) from an OpenMMLab config.

With ``--final-metrics`` the final model is evaluated on the validation and test splits after
training (``final_metrics.json`` and ``final_model.pth`` in the work dir, see
``rlkd_mm.apis.final_metrics``); the benchmark tables and sweeps train every run this way.
"""

import argparse
import logging
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import rlkd_mm  # noqa: F401  (registers modules and the checkpoint allowlist)
from rlkd_mm.apis import final_metrics_config, save_final_metrics
from rlkd_mm.utils import (
    ATOMIC_BACKEND,
    UnreadableCheckpointError,
    check_checkpoint_readable,
    latest_readable_checkpoint,
)
from rlkd_mm.utils.dist import setup_cpu_distributed, shutdown_distributed


def parse_args():
    parser = argparse.ArgumentParser(description='Train with rlkd_mm')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--work-dir', help='folder for logs and checkpoints')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from this checkpoint, or (no value) from the latest one in the work dir',
    )
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, e.g. model.teacher_ckpt=path randomness.seed=1',
    )
    parser.add_argument(
        '--seed',
        type=int,
        help="the run's seed: randomness = dict(seed=SEED, deterministic=False)",
    )
    parser.add_argument(
        '--final-metrics',
        action='store_true',
        help='evaluate the final model on the val and test splits after training '
        '(final_metrics.json, final_model.pth); no intermediate checkpoint or validation',
    )
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.seed is not None:
        cfg.randomness = dict(seed=args.seed, deterministic=False)
    if args.final_metrics:
        final_metrics_config(cfg)
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.launcher == 'pytorch':
        setup_cpu_distributed(cfg)
    make_crash_safe(cfg)
    try:
        resolve_resume(cfg, args.resume)
    except (FileNotFoundError, UnreadableCheckpointError) as err:
        sys.exit(f'error: {err}')
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    runner.train()
    if args.final_metrics:
        save_final_metrics(runner)
    shutdown_distributed()


def make_crash_safe(cfg) -> None:
    """Atomic checkpoint writes and saved random streams, also for configs that do not set
    them (e.g. mmdet / mmpretrain runtimes): a checkpoint hook without ``backend_args`` (and
    without an ``out_dir`` on another storage) writes through ``ATOMIC_BACKEND``, and a
    ``RandomStateHook`` and an ``AccumulatedGradHook`` are added unless the config has them."""
    hooks = cfg.setdefault('default_hooks', {})
    checkpoint = hooks.get('checkpoint')
    if (
        checkpoint is not None
        and checkpoint.get('backend_args') is None
        and checkpoint.get('file_client_args') is None
        and '://' not in str(checkpoint.get('out_dir') or '')
    ):
        checkpoint['backend_args'] = dict(backend=ATOMIC_BACKEND)
    types = [h.get('type') for h in list(hooks.values()) + list(cfg.get('custom_hooks', []))]
    for key, name in (
        ('random_state', 'RandomStateHook'),
        ('accumulated_grad', 'AccumulatedGradHook'),
    ):
        if not any(str(t).endswith(name) for t in types if t):
            hooks[key] = dict(type=f'rlkd_mm.{name}')


def resolve_resume(cfg, resume) -> None:
    """``--resume`` (auto): the newest *readable* checkpoint of the work dir (an unreadable
    latest one, e.g. left by a crash while saving, is skipped with a warning naming it; none
    readable stops with a message). ``--resume PATH`` / ``load_from``: PATH must be readable."""
    if resume == 'auto':
        cfg.resume = True
        cfg.load_from = latest_readable_checkpoint(
            cfg.work_dir, logger=lambda msg: print_log(msg, 'current', logging.WARNING)
        )
        if cfg.load_from is not None:
            print_log(f'resuming from {cfg.load_from}', 'current')
    elif resume is not None:
        cfg.resume = True
        cfg.load_from = resume
    load_from = cfg.get('load_from')
    if load_from and '://' not in str(load_from):
        check_checkpoint_readable(load_from, what='resume checkpoint' if resume else 'load_from')


if __name__ == '__main__':
    main()
