"""What a trained RLKD policy does: its deterministic temperature on a split's instances.

    python tools/analysis/policy_report.py CHECKPOINT [--config CONFIG] [--split val]

CHECKPOINT is a checkpoint of ``tools/train.py``, e.g. the ``final_model.pth`` of a run with
``--final-metrics`` (it holds the distiller's weights, the agent under ``rlkd_agent`` and the
config under ``meta.cfg``; ``--config`` overrides the latter). The
distiller is built without loading its teacher file (the teacher's weights come from the
checkpoint), run in eval mode on the split while the agent takes its mean action on every KD
instance (images, positive priors or sampled RoIs) at training progress 1. Prints one JSON object:

- ``t_mean``, ``t_std``, ``t_min``, ``t_max``, ``num_instances``;
- ``flat``: true when ``t_std < 0.25`` (the policy is close to one constant temperature);
- ``spearman``: state feature name -> Spearman rank correlation of T with it;
- for RLKD on a base policy (``RLTemperature(base=...)``) the values are the per-instance
  multipliers ``a`` (``multiplier: true``), ``flat`` is ``std(log a) < 0.05`` (about 5 %),
  ``log_a_std`` is added and the state includes the base's columns (``BASE_STATE_NAMES``);
- ``reward_signal`` (when the checkpoint holds the agent's reward record): the training rewards,
  centred per batch, grouped by the temperature that earned them (mean and standard error);
  bins of 1 from T = 1 up to 6, then [6, 8) and [8, 10], or with ``--bins N`` N equal bins over
  the policy's range [t_min, t_max] (finer for a narrow range such as [1, 3]). Grouped by T,
  the rewards mix the effect of T with that of the state the policy gave T to (a policy that
  gives hard instances low T makes low T look rewarding when hard instances simply improve more);
- ``action_signal`` (records with the exploration noise z = (a - mu(s)) / sigma): the mean of
  z * reward with its standard error, over all explored instances and per tertile of the
  teacher's confidence in the label. z is independent of the state, so this is the direction
  the rewards push the policy's mean temperature for those instances: > 0 higher, < 0 lower,
  inside two standard errors of 0 no signal. Different signs across tertiles are a reward that
  asks for a temperature that depends on the instance.
- ``label_noise`` (a split whose items carry ``noisy_label``, e.g. the training split of a
  config with ``label_noise``): the values on the images whose label was changed and on the
  others (mean with standard error; for multipliers also of log a), and the paired gap;
- ``action_signal_by_epoch`` (when a ``*/vis_data/scalars.json`` log of the run lies beside
  the checkpoint, as ``tools/train.py`` leaves it, or ``--log FILE``): the
  logged ``rlkd_action_signal`` (each rewarded batch's mean of z * centred reward, smoothed by
  the logger's window) averaged per epoch, i.e. when during training the reward pushed the
  temperature and which way; the record above keeps only the last ``dump_size`` instances.

and writes a scatter PNG of T against the teacher's confidence and the student's CE
(``--out``, default ``policy_<split>.png`` beside the checkpoint).
"""

import argparse
import json
import os.path as osp
from typing import Optional

import torch

from rlkd_mm.agent import STATE_NAMES


def spearman(x: torch.Tensor, y: torch.Tensor) -> float:
    """Spearman's rho (scipy's); 0 where it is undefined (a constant input)."""
    import math

    from scipy.stats import spearmanr

    if bool((x == x[0]).all()) or bool((y == y[0]).all()):
        return 0.0
    rho = float(spearmanr(x.numpy(), y.numpy())[0])
    return 0.0 if math.isnan(rho) else rho


DEFAULT_EDGES = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.01)


def equal_bins(t_min: float, t_max: float, num: int) -> tuple:
    """``num + 1`` edges splitting [t_min, t_max] evenly; the last edge lies just above t_max
    so the highest temperature falls in the last bin."""
    if num < 1:
        raise ValueError(f'--bins must be >= 1, got {num}')
    step = (t_max - t_min) / num
    edges = [round(t_min + k * step, 6) for k in range(num + 1)]
    edges[-1] = t_max + 1e-6
    return tuple(edges)


def _mean_stderr(values: torch.Tensor) -> dict:
    values = values.double()
    return dict(
        count=int(values.numel()),
        mean=float(values.mean()),
        stderr=float(values.std() / values.numel() ** 0.5),
    )


def reward_signal(rows: torch.Tensor, edges=DEFAULT_EDGES) -> list:
    """Centred rewards ``rows[:, 1]`` grouped by temperature ``rows[:, 0]``: one dict per bin."""
    out = []
    for low, high in zip(edges[:-1], edges[1:]):
        mask = (rows[:, 0] >= low) & (rows[:, 0] < high)
        values = rows[mask, 1].double()
        if values.numel() < 2:
            continue
        out.append(dict(t_bin=[round(low, 3), round(high, 3)], **_mean_stderr(values)))
    return out


def action_signal(rows: torch.Tensor, groups: int = 3) -> Optional[dict]:
    """Mean of noise x centred reward (record columns 2 and 1) over the explored instances
    (finite noise), overall and per quantile group of the teacher's confidence (column 3).
    None when the record has no noise column or fewer than 2 explored instances per group."""
    if rows.dim() != 2 or rows.size(1) < 4:
        return None
    rows = rows[torch.isfinite(rows[:, 2]) & torch.isfinite(rows[:, 3])].double()
    if rows.size(0) < 2 * groups:
        return None
    product = rows[:, 2] * rows[:, 1]
    confidence = rows[:, 3]
    order = torch.argsort(confidence)
    by_confidence = []
    for part in torch.tensor_split(order, groups):
        entry = _mean_stderr(product[part])
        entry['teacher_gt_prob'] = [
            round(float(confidence[part].min()), 4),
            round(float(confidence[part].max()), 4),
        ]
        by_confidence.append(entry)
    return dict(all=_mean_stderr(product), by_teacher_gt_prob=by_confidence)


def collect(checkpoint: str, config: str = None, split: str = 'val', max_batches: int = 0):
    """(raw states [N, D], temperatures (multipliers on a base) [N], reward record [M, 4] or
    None, the policy's (t_min, t_max), its state names, whether it acts on a base, the items'
    ``noisy_label`` flags [N] (bool) or None when the split's items carry none)."""
    from mmengine.config import Config
    from mmengine.logging import MMLogger
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    import rlkd_mm  # noqa: F401
    from rlkd_mm.registry import MODELS
    from rlkd_mm.temperature import RLTemperature
    from rlkd_mm.utils import register_checkpoint_safe_globals

    register_checkpoint_safe_globals()
    ckpt = torch.load(checkpoint, map_location='cpu', weights_only=True)
    if 'rlkd_agent' not in ckpt:
        raise ValueError(
            f'{checkpoint} holds no RLKD agent (no "rlkd_agent" entry): is it a checkpoint of '
            'an RLKD run?'
        )
    if config is not None:
        cfg = Config.fromfile(config)
    else:
        text = ckpt.get('meta', {}).get('cfg')
        if not text:
            raise ValueError(f'{checkpoint} holds no config (meta.cfg): pass --config')
        cfg = Config.fromstring(text, file_format='.py')
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    # Building logs to stdout (e.g. "teacher_ckpt is None", which does not apply: the teacher's
    # weights are in the checkpoint); stdout is for the JSON report only.
    MMLogger.get_instance('policy_report', log_level='ERROR')
    model_cfg = cfg.model.copy()
    model_cfg['teacher_ckpt'] = None  # the teacher's weights are in the checkpoint
    model = MODELS.build(model_cfg)
    state = ckpt.get('state_dict', ckpt)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise RuntimeError(
            f'{checkpoint} does not match the model of the config: missing keys {missing}; '
            f'unexpected keys {unexpected}'
        )
    policies = [m for m in model.modules() if isinstance(m, RLTemperature)]
    if len(policies) != 1:
        raise ValueError(f'the model holds {len(policies)} RLTemperature policies, expected 1')
    policy = policies[0]
    policy.load_rl_state_dict(ckpt['rlkd_agent'])
    model.eval()
    policy.train()  # acts (deterministically) while the networks stay in eval mode
    policy.driven, policy.acting, policy.deterministic, policy.progress = True, True, True, 1.0

    loader_cfg = cfg.get(f'{split}_dataloader')
    if loader_cfg is None:
        raise ValueError(f'the config has no {split}_dataloader')
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    # items carry sample_idx, their index in the innermost dataset (under wrappers such as
    # QuizSplitDataset), where their noisy_label flag is looked up
    source = loader.dataset
    while hasattr(source, 'dataset'):
        source = source.dataset
    states, temps, noisy = [], [], []
    with torch.no_grad():
        for i, data in enumerate(loader):
            if max_batches and i >= max_batches:
                break
            data = model.data_preprocessor(data, False)
            model(**data, mode='loss')
            step = policy.pop_pending()
            if step is not None:
                states.append(step.raw_states.cpu())
                temps.append(step.temperatures.cpu())
                infos = [source.get_data_info(int(s.sample_idx)) for s in data['data_samples']]
                noisy.append([info.get('noisy_label') for info in infos])
    if not temps:
        raise RuntimeError(f'the policy acted on no instance of the {split} split')
    record = ckpt['rlkd_agent'].get('reward_record')
    on_base = policy.base is not None
    flags = [flag for batch in noisy for flag in batch]
    has_flags = len(flags) == sum(t.numel() for t in temps) and None not in flags
    return (
        torch.cat(states),
        torch.cat(temps),
        record,
        (policy.t_min, policy.t_max),
        policy.state_names,
        on_base,
        torch.tensor(flags, dtype=torch.bool) if has_flags else None,
    )


def label_noise_report(temps: torch.Tensor, noisy: torch.Tensor, multiplier: bool) -> dict:
    """The values on the images with a changed label and on the others (mean with standard
    error, and of log a for multipliers) and the gap ``noisy - clean``."""
    if noisy.sum() < 2 or (~noisy).sum() < 2:
        raise ValueError('label_noise_report needs at least 2 noisy and 2 clean images')
    out = {}
    values = dict(value=temps.double())
    if multiplier:
        values['log_a'] = temps.double().log()
    for key, v in values.items():
        noisy_part, clean_part = _mean_stderr(v[noisy]), _mean_stderr(v[~noisy])
        out[key] = dict(
            noisy=noisy_part, clean=clean_part, gap=noisy_part['mean'] - clean_part['mean']
        )
    return out


def report(
    states: torch.Tensor,
    temps: torch.Tensor,
    record=None,
    edges=DEFAULT_EDGES,
    names=STATE_NAMES,
    multiplier: bool = False,
) -> dict:
    t = temps.double()
    result = dict(
        num_instances=int(t.numel()),
        t_mean=float(t.mean()),
        t_std=float(t.std(unbiased=False)),
        t_min=float(t.min()),
        t_max=float(t.max()),
    )
    if multiplier:
        result['multiplier'] = True
        result['log_a_std'] = float(t.log().std(unbiased=False))
        result['flat'] = result['log_a_std'] < 0.05
    else:
        result['flat'] = result['t_std'] < 0.25
    result['spearman'] = {
        name: round(spearman(temps, states[:, j]), 4)
        for j, name in enumerate(names)
        if name != 'progress'
    }
    if record is not None and len(record):
        result['reward_signal'] = reward_signal(record, edges)
        signal = action_signal(record)
        if signal is not None:
            result['action_signal'] = signal
    return result


def find_scalars_log(checkpoint: str) -> Optional[str]:
    """The newest ``<timestamp>/vis_data/scalars.json`` in the checkpoint's folder, if any."""
    import glob

    logs = glob.glob(
        osp.join(osp.dirname(osp.abspath(checkpoint)), '*', 'vis_data', 'scalars.json')
    )
    return max(logs) if logs else None


def action_signal_by_epoch(scalars_file: str) -> list:
    """Per training epoch, the mean of the logged ``rlkd_action_signal`` values (log lines)."""
    by_epoch = {}
    with open(scalars_file) as f:
        for line in f:
            entry = json.loads(line)
            if 'rlkd_action_signal' in entry and 'epoch' in entry:
                by_epoch.setdefault(int(entry['epoch']), []).append(entry['rlkd_action_signal'])
    return [
        dict(epoch=epoch, mean=round(sum(v) / len(v), 6), log_lines=len(v))
        for epoch, v in sorted(by_epoch.items())
    ]


def plot(states: torch.Tensor, temps: torch.Tensor, out: str, title: str) -> None:
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, name in zip(axes, ('teacher_gt_prob', 'student_ce')):
        ax.scatter(states[:, STATE_NAMES.index(name)], temps, s=4, alpha=0.4)
        ax.set_xlabel(name)
        ax.set_ylabel('deterministic T')
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('checkpoint')
    parser.add_argument('--config', help='config of the run (default: the checkpoint meta.cfg)')
    parser.add_argument('--split', default='val', choices=['train', 'val', 'test'])
    parser.add_argument('--max-batches', type=int, default=0, help='0: the whole split')
    parser.add_argument('--out', help='scatter PNG path')
    parser.add_argument('--json', help='also write the JSON report to this file')
    parser.add_argument('--log', help='scalars.json of the run (default: found beside it)')
    parser.add_argument(
        '--bins', type=int, help='reward_signal: N equal bins over the policy range [t_min, t_max]'
    )
    args = parser.parse_args()
    states, temps, record, (t_min, t_max), names, on_base, noisy = collect(
        args.checkpoint, args.config, args.split, args.max_batches
    )
    bins = args.bins or (6 if on_base else None)  # a multiplier range is narrow
    edges = equal_bins(t_min, t_max, bins) if bins else DEFAULT_EDGES
    result = report(states, temps, record, edges, names, multiplier=on_base)
    if noisy is not None:
        result['label_noise'] = label_noise_report(temps, noisy, on_base)
    log = args.log or find_scalars_log(args.checkpoint)
    if log is not None:
        course = action_signal_by_epoch(log)
        if course:
            result['action_signal_by_epoch'] = course
    default_out = osp.join(osp.dirname(osp.abspath(args.checkpoint)), f'policy_{args.split}.png')
    out = args.out or default_out
    plot(states, temps, out, f'{osp.basename(args.checkpoint)} ({args.split})')
    result['png'] = out
    text = json.dumps(result, indent=1)
    if args.json:
        with open(args.json, 'w') as f:
            f.write(text)
    print(text)


if __name__ == '__main__':
    main()
