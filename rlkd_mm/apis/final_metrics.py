"""Evaluate the *final* model of a training run: what ``tools/train.py --final-metrics`` adds.

The benchmark tables and sweeps (``rlkd_mm.apis.runs.run_one``) train every run this way: the
final weights (never a selected "best" epoch) are evaluated on the validation split (settings
are chosen on it) and on the test split, and written to the work dir as

- ``final_metrics.json``: the test metrics, the validation ones under ``val/``, and
  ``teacher_sha256`` (tables refuse to mix runs of different teachers);
- ``final_model.pth``: a checkpoint of the trained model in the layout of every other
  checkpoint of ``tools/train.py`` (``state_dict``, ``meta.cfg`` and what the hooks save: the
  RLKD agent under ``rlkd_agent`` with its per-instance dump, for
  ``tools/analysis/policy_report.py`` and ``plot_temperatures.py``), without the optimizer.
"""

import hashlib
import json
import os.path as osp
from typing import Any, Dict

from rlkd_mm.utils.fileio import ATOMIC_BACKEND

FINAL_METRICS = 'final_metrics.json'
FINAL_MODEL = 'final_model.pth'


def teacher_sha256(path: Any) -> str:
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


def final_metrics_config(cfg: Any) -> None:
    """Set ``cfg`` (in place) up for a run whose final model is evaluated: only the final
    weights matter, so no intermediate checkpoint and no validation during training (the
    training itself is that of the config)."""
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1, save_last=False)
    cfg.train_cfg.val_interval = 10**9


def save_final_metrics(runner: Any) -> Dict[str, Any]:
    """After ``runner.train()``: evaluate the final model on the validation and test splits,
    write ``final_metrics.json`` and ``final_model.pth`` into the work dir (see the module's
    docstring); returns the metrics as written."""
    # the final weights on the validation split too: settings are chosen on it, never on test
    val_metrics = runner.val()
    metrics = runner.test()
    runner.save_checkpoint(
        runner.work_dir,
        FINAL_MODEL,
        save_optimizer=False,
        save_param_scheduler=False,
        by_epoch=False,
        backend_args=dict(backend=ATOMIC_BACKEND),
    )
    record = {k: float(v) for k, v in metrics.items()}
    record.update({f'val/{k}': float(v) for k, v in val_metrics.items()})
    record['teacher_sha256'] = teacher_sha256(runner.cfg.model.get('teacher_ckpt'))
    if runner.rank == 0:
        with open(osp.join(runner.work_dir, FINAL_METRICS), 'w') as f:
            json.dump(record, f, indent=1, sort_keys=True)
    return record
