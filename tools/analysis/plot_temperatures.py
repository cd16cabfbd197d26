"""Plot the temperatures of training runs: T over iterations (from the runs' logged scalars)
and, for RLKD runs with a per-instance dump, T against the teacher's confidence.

    python tools/analysis/plot_temperatures.py WORK_DIR [WORK_DIR ...] --out temperatures.png

Each WORK_DIR is a run folder of tools/train.py (it holds ``*/vis_data/scalars.json``). The
per-instance scatter comes from the RLKD agent state in the newest checkpoint of the folder
(``final_model.pth`` with ``--final-metrics``; ``RLTemperature(dump_size=...)`` records it), or
from the ``temperature_dump.pth`` that tools/benchmark/run_one.py wrote before it became a
shorthand of ``tools/train.py --final-metrics``.
"""

import argparse
import glob
import json
import os.path as osp

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402


def read_scalars(work_dir: str):
    """(iterations, t_mean, t_std) of the training log of ``work_dir``."""
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    if not files:
        raise FileNotFoundError(f'no */vis_data/scalars.json under {work_dir}')
    steps, means, stds = [], [], []
    with open(files[-1]) as f:
        for line in f:
            row = json.loads(line)
            if 't_mean' in row and 'step' in row:
                steps.append(row['step'])
                means.append(row['t_mean'])
                stds.append(row.get('t_std', 0.0))
    return steps, means, stds


def read_dump(work_dir: str):
    """``dict(columns, rows)`` of the per-instance dump of a run, or None."""
    import rlkd_mm  # noqa: F401  (allowlist of mmengine's checkpoint globals)
    from rlkd_mm.temperature.rl import DUMP_COLUMNS
    from rlkd_mm.utils.fileio import checkpoints_in

    path = osp.join(work_dir, 'temperature_dump.pth')
    if osp.isfile(path):
        return torch.load(path, weights_only=True)
    for ckpt_path in checkpoints_in(work_dir):
        agent = torch.load(ckpt_path, map_location='cpu', weights_only=True).get('rlkd_agent')
        if agent is not None and agent.get('dump') is not None:
            return dict(columns=DUMP_COLUMNS, rows=agent['dump'])
        return None  # the newest checkpoint holds no agent: not an RLKD run
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('work_dirs', nargs='+')
    parser.add_argument('--labels', nargs='+', help='one legend label per work dir')
    parser.add_argument('--out', default='temperatures.png')
    args = parser.parse_args()
    labels = args.labels or [osp.basename(osp.normpath(w)) for w in args.work_dirs]
    if len(labels) != len(args.work_dirs):
        raise ValueError(f'{len(labels)} labels for {len(args.work_dirs)} work dirs')

    dumps = []
    for label, work_dir in zip(labels, args.work_dirs):
        dump = read_dump(work_dir)
        if dump is not None and len(dump['rows']):  # dump_size=0 records nothing
            dumps.append((label, dump))
    ncols = 1 + bool(dumps)
    fig, axes = plt.subplots(1, ncols, figsize=(6 * ncols, 4), squeeze=False)
    ax = axes[0, 0]
    for label, work_dir in zip(labels, args.work_dirs):
        steps, means, stds = read_scalars(work_dir)
        ax.plot(steps, means, label=label)
        ax.fill_between(
            steps,
            [m - s for m, s in zip(means, stds)],
            [m + s for m, s in zip(means, stds)],
            alpha=0.2,
        )
    ax.set_xlabel('training iteration')
    ax.set_ylabel('temperature (batch mean ± std)')
    ax.legend()
    if dumps:
        ax = axes[0, 1]
        for label, dump in dumps:
            cols = list(dump['columns'])
            rows = dump['rows']
            t = rows[:, cols.index('temperature')]
            conf = rows[:, cols.index('teacher_gt_prob')]
            ax.scatter(conf.numpy(), t.numpy(), s=3, alpha=0.3, label=label)
        ax.set_xlabel("teacher's probability of the ground-truth class")
        ax.set_ylabel('temperature chosen by RLKD')
        ax.set_title('last instances of training')
        ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
