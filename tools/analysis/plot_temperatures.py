"""Plot the temperatures of training runs: T over iterations (from the runs' logged scalars)
and, for RLKD runs with a per-instance dump, T against the teacher's confidence.

    python tools/analysis/plot_temperatures.py WORK_DIR [WORK_DIR ...] --out temperatures.png

Each WORK_DIR is a run folder of tools/train.py or tools/benchmark/run_one.py (it holds
``*/vis_data/scalars.json`` and optionally ``temperature_dump.pth``).
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
        path = osp.join(work_dir, 'temperature_dump.pth')
        if osp.isfile(path):
            dump = torch.load(path)
            if len(dump['rows']):  # RLTemperature(dump_size=0) records nothing
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
