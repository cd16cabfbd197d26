"""Top-1 of every temperature policy on embedded digits classification, mean ± std over seeds.

Trains the teacher once (cached), then the student alone and each distillation config for every
seed; each run is evaluated on the test split with its final weights. Prints a markdown table
and writes it with the raw numbers to ``--out``.

    python tools/benchmark/digits_cls_table.py --seeds 0 1 2
"""

import argparse
import json
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from tools.benchmark.common import ROOT, ensure_teacher, markdown_table, mean_std, run_one  # noqa: E402

TEACHER = 'configs/digits/cls_teacher_cnn.py'
TEACHER_CKPT = 'checkpoints/digits/cls_teacher_cnn.pth'
ROWS = [
    ('student alone', 'configs/digits/cls_student_cnn.py'),
    ('KD, fixed T=4', 'configs/digits/cls_kd_fixed.py'),
    ('KD + CTKD (global)', 'configs/digits/cls_kd_ctkd_global.py'),
    ('KD + CTKD (instance)', 'configs/digits/cls_kd_ctkd_instance.py'),
    ('KD + logit std.', 'configs/digits/cls_kd_logitstd.py'),
    ('KD + DTKD', 'configs/digits/cls_kd_dtkd.py'),
    ('KD + RLKD', 'configs/digits/cls_kd_rlkd.py'),
    ('DKD, fixed T=4', 'configs/digits/cls_dkd_fixed.py'),
    ('DKD + RLKD', 'configs/digits/cls_dkd_rlkd.py'),
]
METRIC = 'accuracy/top1'


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--epochs', type=int, help='override max_epochs of every student run')
    parser.add_argument('--only', nargs='+', help='row config names to run (default: all)')
    parser.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs', 'digits_cls_table'))
    parser.add_argument('--out', default=osp.join(ROOT, 'work_dirs', 'digits_cls_table.json'))
    args = parser.parse_args()

    teacher = ensure_teacher(osp.join(ROOT, TEACHER), osp.join(ROOT, TEACHER_CKPT), METRIC)
    options = [f'train_cfg.max_epochs={args.epochs}'] if args.epochs else []
    results = {'teacher': dict(config=TEACHER, values=[teacher[METRIC]])}
    rows = [('teacher', TEACHER, f'{teacher[METRIC]:.2f}', '1', f'{teacher["wall_s"]:.0f}')]
    for name, config in ROWS:
        if args.only and osp.basename(config) not in args.only:
            continue
        values, times = [], []
        for seed in args.seeds:
            stem = osp.splitext(osp.basename(config))[0]
            work_dir = osp.join(args.work_dir, f'{stem}_seed{seed}')
            extra = list(options)
            if 'student_cnn' not in config:
                extra.append(f'model.teacher_ckpt={TEACHER_CKPT}')
            metrics = run_one(osp.join(ROOT, config), work_dir, seed, extra)
            values.append(metrics[METRIC])
            times.append(metrics['wall_s'])
            print(
                f'{name:24s} seed {seed}: top-1 {metrics[METRIC]:.2f} ({metrics["wall_s"]:.0f} s)',
                flush=True,
            )
        results[name] = dict(config=config, values=values, wall_s=times)
        rows.append(
            (name, config, mean_std(values), str(len(values)), f'{sum(times) / len(times):.0f}')
        )
    table = markdown_table(
        ['method', 'config', 'top-1 (%) test, final epoch', 'seeds', 's / run'], rows
    )
    print(table)
    os.makedirs(osp.dirname(args.out), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(dict(results=results, table=table, seeds=args.seeds), f, indent=1)


if __name__ == '__main__':
    main()
