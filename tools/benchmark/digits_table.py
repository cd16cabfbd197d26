"""Every temperature policy on the embedded digits tasks, mean ± std over seeds.

Trains the teacher once (cached, see tools/benchmark/common.py), then the student alone and each
distillation config for every seed; every run is evaluated on the test split with its *final*
weights (never a selected epoch). Prints a markdown table and writes the raw numbers to ``--out``
after every row, so an interrupted run keeps what it measured.

    python tools/benchmark/digits_table.py --task cls --seeds 0 1 2
    python tools/benchmark/digits_table.py --task det --seeds 0 1 2 \
        --only det_student_gfl.py gfl_ld_fixed.py gfl_ld_rlkd.py
"""

import argparse
import json
import os
import os.path as osp
import sys

from mmengine.config import Config

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from tools.benchmark.common import (  # noqa: E402
    ROOT,
    ensure_digits_det,
    ensure_teacher,
    markdown_table,
    mean_std,
    run_one,
)

TASKS = dict(
    cls=dict(
        teacher='configs/digits/cls_teacher_cnn.py',
        teacher_ckpt='checkpoints/digits/cls_teacher_cnn.pth',
        metric='accuracy/top1',
        scale=1.0,
        header='top-1 (%)',
        rows=[
            ('student alone', 'configs/digits/cls_student_cnn.py'),
            ('KD, fixed T=4', 'configs/digits/cls_kd_fixed.py'),
            ('KD + RLKD', 'configs/digits/cls_kd_rlkd.py'),
            ('KD + CTKD (global)', 'configs/digits/cls_kd_ctkd_global.py'),
            ('KD + logit std.', 'configs/digits/cls_kd_logitstd.py'),
            ('KD + DTKD', 'configs/digits/cls_kd_dtkd.py'),
            ('DKD, fixed T=4', 'configs/digits/cls_dkd_fixed.py'),
            ('DKD + RLKD', 'configs/digits/cls_dkd_rlkd.py'),
            ('KD + CTKD (instance)', 'configs/digits/cls_kd_ctkd_instance.py'),
        ],
    ),
    det=dict(
        teacher='configs/digits/det_teacher_gfl.py',
        teacher_ckpt='checkpoints/digits/det_teacher_gfl.pth',
        metric='coco/bbox_mAP',
        scale=100.0,
        header='mAP',
        rows=[
            ('student alone', 'configs/digits/det_student_gfl.py'),
            ('LD + cls KD, fixed T=4', 'configs/digits/gfl_ld_fixed.py'),
            ('LD + cls KD, RLKD', 'configs/digits/gfl_ld_rlkd.py'),
            ('LD + cls KD, CTKD', 'configs/digits/gfl_ld_ctkd.py'),
            ('LD + cls KD, logit std.', 'configs/digits/gfl_ld_logitstd.py'),
            ('LD + cls KD, DTKD', 'configs/digits/gfl_ld_dtkd.py'),
        ],
    ),
)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--task', choices=sorted(TASKS), default='cls')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--epochs', type=int, help='override max_epochs of every student run')
    parser.add_argument('--only', nargs='+', help='config file names of the rows to run')
    parser.add_argument('--work-dir', help='default work_dirs/digits_<task>_table')
    parser.add_argument('--out', help='default work_dirs/digits_<task>_table.json')
    args = parser.parse_args()
    task = TASKS[args.task]
    work_root = args.work_dir or osp.join(ROOT, 'work_dirs', f'digits_{args.task}_table')
    out = args.out or osp.join(ROOT, 'work_dirs', f'digits_{args.task}_table.json')
    metric, scale = task['metric'], task['scale']

    if args.task == 'det':
        ensure_digits_det()
    teacher = ensure_teacher(
        osp.join(ROOT, task['teacher']), osp.join(ROOT, task['teacher_ckpt']), metric
    )
    options = [f'train_cfg.max_epochs={args.epochs}'] if args.epochs else []
    results = {'teacher': dict(config=task['teacher'], values=[scale * teacher[metric]])}
    rows = [
        (
            'teacher',
            task['teacher'],
            f'{scale * teacher[metric]:.2f}',
            '1',
            f'{teacher["wall_s"]:.0f}',
        )
    ]
    for name, config in task['rows']:
        if args.only and osp.basename(config) not in args.only:
            continue
        values, times = [], []
        is_distiller = 'teacher_ckpt' in Config.fromfile(osp.join(ROOT, config)).model
        for seed in args.seeds:
            stem = osp.splitext(osp.basename(config))[0]
            extra = list(options)
            if is_distiller:
                extra.append(f'model.teacher_ckpt={task["teacher_ckpt"]}')
            metrics = run_one(
                osp.join(ROOT, config), osp.join(work_root, f'{stem}_seed{seed}'), seed, extra
            )
            values.append(scale * metrics[metric])
            times.append(metrics['wall_s'])
            print(f'{name:26s} seed {seed}: {values[-1]:.2f} ({times[-1]:.0f} s)', flush=True)
        results[name] = dict(config=config, values=values, wall_s=times)
        rows.append(
            (name, config, mean_std(values), str(len(values)), f'{sum(times) / len(times):.0f}')
        )
        os.makedirs(osp.dirname(out), exist_ok=True)
        with open(out, 'w') as f:
            json.dump(dict(results=results, seeds=args.seeds), f, indent=1)
    table = markdown_table(
        ['method', 'config', f'{task["header"]} test, final epoch', 'seeds', 's / run'], rows
    )
    print(table)
    with open(out, 'w') as f:
        json.dump(dict(results=results, table=table, seeds=args.seeds), f, indent=1)


if __name__ == '__main__':
    main()
