"""Train a config, then evaluate the *final* model on the test split.

Writes ``final_metrics.json`` (test metrics of the last epoch's weights, never a selected
"best" epoch) and ``final_model.pth`` (the trained model's state dict) into the work dir.
"""

import argparse
import hashlib
import json
import os.path as osp

import torch
from mmengine.config import Config, DictAction
from mmengine.runner import Runner

import rlkd_mm  # noqa: F401


def teacher_sha256(path) -> str:
    """SHA-256 of the teacher checkpoint file ('' for a run without one, 'random' for a
    distiller with a randomly initialised teacher)."""
    if path is None:
        return 'random'
    if not isinstance(path, str) or not osp.isfile(path):
        return ''
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--work-dir', required=True)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()

    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.work_dir = args.work_dir
    cfg.randomness = dict(seed=args.seed, deterministic=False)
    # only the final weights matter here; skip intermediate checkpoints and validation
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1, save_last=False)
    cfg.train_cfg.val_interval = 10**9
    runner = Runner.from_cfg(cfg)
    runner.train()
    # the final weights on the validation split too: settings are chosen on it, never on test
    val_metrics = runner.val()
    metrics = runner.test()
    model = runner.model.module if hasattr(runner.model, 'module') else runner.model
    policy = getattr(model, 'temperature', None)
    final = dict(state_dict=model.state_dict(), meta=dict(seed=args.seed, cfg=cfg.pretty_text))
    if hasattr(policy, 'rl_state_dict'):  # the agent, for tools/analysis/policy_report.py
        final['rlkd_agent'] = policy.rl_state_dict()
    torch.save(final, osp.join(args.work_dir, 'final_model.pth'))
    if hasattr(policy, 'dump'):  # RLTemperature's per-instance record, for tools/analysis
        from rlkd_mm.temperature.rl import DUMP_COLUMNS

        torch.save(
            dict(columns=DUMP_COLUMNS, rows=policy.dump()),
            osp.join(args.work_dir, 'temperature_dump.pth'),
        )
    with open(osp.join(args.work_dir, 'final_metrics.json'), 'w') as f:
        record = {k: float(v) for k, v in metrics.items()}
        record.update({f'val/{k}': float(v) for k, v in val_metrics.items()})
        record['teacher_sha256'] = teacher_sha256(cfg.model.get('teacher_ckpt'))
        json.dump(record, f, indent=1, sort_keys=True)


if __name__ == '__main__':
    main()
