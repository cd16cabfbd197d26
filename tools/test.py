"""Evaluate a checkpoint with the config's test dataloader and evaluator (COCO mAP, top-1)."""

import argparse
import os
import os.path as osp
import sys

import torch
from mmengine.config import Config, DictAction
from mmengine.evaluator import DumpResults
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import rlkd_mm  # noqa: F401  (registers modules and the checkpoint allowlist)
from rlkd_mm.utils import UnreadableCheckpointError, check_checkpoint_readable
from rlkd_mm.utils.dist import setup_cpu_distributed, shutdown_distributed

DISTILLERS = ('ClassifierDistiller', 'SingleStageDetDistiller', 'TwoStageDetDistiller')


def parse_args():
    parser = argparse.ArgumentParser(description='Test with rlkd_mm')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='folder for the evaluation logs')
    parser.add_argument('--out', help='dump the raw predictions to this .pkl file')
    parser.add_argument(
        '--show-dir', help='detection: draw the predictions into this folder (under work dir)'
    )
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, help='override config entries'
    )
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def checkpoint_keys(path: str) -> set:
    """Parameter and buffer names of a checkpoint (``state_dict`` entry or a plain state dict),
    without a DDP ``module.`` prefix."""
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else {}
    return {k[len('module.') :] if k.startswith('module.') else k for k in state}


def prepare_distiller(cfg, keys: set, checkpoint: str) -> None:
    """A distiller checkpoint holds its teacher: the teacher file of the config is not needed.
    A student-only checkpoint is refused with the config to use instead."""
    model_type = str(cfg.model.get('type', ''))
    if model_type.split('.')[-1] not in DISTILLERS:
        return
    if not any(k.startswith('student.') for k in keys):
        student = cfg.model.get('student')
        hint = student if isinstance(student, str) else "the student's own config"
        raise ValueError(
            f'{checkpoint} is a student-only checkpoint (no "student." keys), but '
            f'{cfg.filename} builds a {model_type}: evaluate it with {hint}'
        )
    cfg.model.teacher_ckpt = None  # the teacher's weights come from the checkpoint


def check_complete(model, keys: set, checkpoint: str) -> None:
    """Every parameter and buffer of the evaluated model must come from the checkpoint."""
    model = model.module if hasattr(model, 'module') else model
    missing = sorted(set(model.state_dict()) - keys)
    if missing:
        more = f' and {len(missing) - 8} more' if len(missing) > 8 else ''
        shown = ', '.join(missing[:8]) + more
        raise ValueError(
            f'{checkpoint} does not hold every weight of the model built from the config: '
            f'missing {shown}; the evaluation would use random weights for them'
        )


def main():
    args = parse_args()
    try:
        check_checkpoint_readable(args.checkpoint)
    except (FileNotFoundError, UnreadableCheckpointError) as err:
        sys.exit(f'error: {err}')
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.launcher == 'pytorch':
        setup_cpu_distributed(cfg)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    keys = checkpoint_keys(args.checkpoint)
    try:
        prepare_distiller(cfg, keys, args.checkpoint)
    except ValueError as err:
        sys.exit(f'error: {err}')
    if args.show_dir is not None:
        visualization = cfg.default_hooks.get('visualization')
        if visualization is None:
            sys.exit('error: --show-dir needs a visualization hook in default_hooks')
        visualization.draw = True
        visualization.test_out_dir = args.show_dir
    cfg.load_from = args.checkpoint
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    try:
        check_complete(runner.model, keys, args.checkpoint)
    except ValueError as err:
        sys.exit(f'error: {err}')
    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out must be a .pkl file, got {args.out}')
        runner.test_evaluator.metrics.append(DumpResults(out_file_path=args.out))
    metrics = runner.test()
    shutdown_distributed()
    return metrics


if __name__ == '__main__':
    main()
