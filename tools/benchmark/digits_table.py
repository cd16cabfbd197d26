"""Every temperature policy on the embedded digits tasks, mean ± std over seeds.

Trains the teacher once (cached, see rlkd_mm/apis/runs.py), then the student alone and each
distillation config for every seed; every run is evaluated on the test split with its *final*
weights (never a selected epoch). Prints a markdown table and writes the raw numbers to ``--out``;
the numbers measured so far go to ``<out>.partial`` after every run, and a rerun of an interrupted
table reuses every finished run (``run_one``). ``--jobs 2`` trains two runs at once with one
thread each (for these small models on two cores, about 1.3x the runs per hour of one
two-thread run at a time). The thread count is not part of a run's identity: the same seed
trained with another thread count sums floats in another order and may end a little
differently, like a rerun on another machine.

    python tools/benchmark/digits_table.py --task cls --seeds 0 1 2 3 4
    python tools/benchmark/digits_table.py --task det --seeds 0 1 2 3 4 --jobs 2 \
        --only "student alone" "LD + cls KD, fixed T=2" "LD + cls KD, RLKD (influence reward)"

``--only`` takes row names or config file names; a config file name selects every row of that
config, those with extra options included (``gfl_ld_fixed.py`` also runs the fixed T=4 row).

The paired difference is each distillation row's value minus fixed-T KD's on the same seed,
mean ± std over seeds (the baseline row runs first).
"""

import argparse
import json
import os
import os.path as osp
import time

from mmengine.config import Config

from rlkd_mm.apis.runs import (
    ROOT,
    check_one_teacher,
    ensure_digits_det,
    ensure_teacher,
    markdown_table,
    mean_std,
    quiz_holdout_options,
    run_many,
)

# Rows: (name, config, extra cfg-options[, the row it is compared with, default the task's
# baseline: its config without options]; the baseline rows themselves show "—").
# Every config holds the setting chosen on the validation split (sweeps: configs/digits/
# README.md); RLKD's reward modes differ in one option (the configs' default, 'influence', was
# chosen on the validation split of both tables).
_INSTANCE = ['custom_hooks.0.reward=instance']
_BATCH = ['custom_hooks.0.reward=batch']
_RLKD = 'configs/digits/gfl_ld_rlkd.py'
_RANGE_10 = [
    f'model.temperature.{k}' for k in ('t_max=10.0', 't_init=4.0', 'warmup_temperature=4.0')
]
_FIXED_T4 = ['model.temperature.temperature=4.0']
_ON_FIXED = 'configs/digits/cls_kd_rlkd_base_fixed'
_ON_LS = 'configs/digits/cls_kd_rlkd_base_logitstd'
_CF = '_counterfactual.py'
_NOISY = [
    'model.teacher=configs/digits/cls_teacher_cnn_noisy.py',
    'model.teacher_ckpt=checkpoints/digits/cls_teacher_cnn_noisy.pth',
]
_LS = 'KD + logit std.'
_NOISY_LABELS = ['train_dataloader.dataset.label_noise=0.3']
# the configs that hold out their own quiz split wrap the training set once more
# the KD weight tuned for fixed T on that testbed, which the rows on a fixed-T base keep
_W12 = ['model.kd_loss.loss_weight=12.0']
_NOISY_LABELS_QUIZ = ['train_dataloader.dataset.dataset.label_noise=0.3'] + _W12
_NOISY_LABELS_CF = _NOISY_LABELS_QUIZ + [
    'custom_hooks.0.reward.quiz_dataset.dataset.label_noise=0.3'
]
# the look-ahead reward modes at their shipped cadence (configs/_base_/rlkd_hook.py)
# the untrained agent's own sampling: multipliers drawn around 1, never learnt
_FROZEN = ['model.temperature.agent.lr=0.0']
_SHUFFLED = ['model.temperature.shuffle_states=True']
_T4 = 'LD + cls KD, fixed T=4'
# what every classification task shares: the clean teacher and the metric
_CLS_TEACHER = dict(
    teacher='configs/digits/cls_teacher_cnn.py',
    teacher_ckpt='checkpoints/digits/cls_teacher_cnn.pth',
)
_CLS_METRIC = dict(metric='accuracy/top1', scale=1.0, header='top-1 (%)')
TASKS = dict(
    cls=dict(
        **_CLS_TEACHER,
        **_CLS_METRIC,
        baseline='configs/digits/cls_kd_fixed.py',
        rows=[
            ('student alone', 'configs/digits/cls_student_cnn.py', []),
            ('KD, fixed T', 'configs/digits/cls_kd_fixed.py', []),
            ('KD + RLKD (instance reward)', 'configs/digits/cls_kd_rlkd.py', _INSTANCE),
            ('KD + RLKD (influence reward)', 'configs/digits/cls_kd_rlkd.py', []),
            ('KD + RLKD (batch reward)', 'configs/digits/cls_kd_rlkd.py', _BATCH),
            ('KD + CTKD (global)', 'configs/digits/cls_kd_ctkd_global.py', []),
            ('KD + logit std.', 'configs/digits/cls_kd_logitstd.py', []),
            ('KD + logit std., scaled variant', 'configs/digits/cls_kd_logitstd_scaled.py', []),
            ('KD + DTKD', 'configs/digits/cls_kd_dtkd.py', []),
            ('KD + random T', 'configs/digits/cls_kd_random.py', []),
            ('KD + rule T0 f^k', 'configs/digits/cls_kd_rule.py', []),
            ('KD + CIST', 'configs/digits/cls_kd_cist.py', []),
            ('DKD, fixed T', 'configs/digits/cls_dkd_fixed.py', []),
            # measured with the instance reward, the default before the 5-seed tables
            ('DKD + RLKD (instance reward)', 'configs/digits/cls_dkd_rlkd.py', _INSTANCE),
            ('KD + CTKD (instance)', 'configs/digits/cls_kd_ctkd_instance.py', []),
            # RLKD on a base policy: these configs hold out the quiz split themselves (the
            # counterfactual reward scores on it); run them with --quiz-fraction 0.1, so every
            # row trains on the same images
            ('KD + RLKD on fixed T', _ON_FIXED + '.py', []),
            ('KD + RLKD on fixed T (instance)', _ON_FIXED + '.py', _INSTANCE),
            ('KD + RLKD on fixed T (counterfactual)', _ON_FIXED + _CF, []),
            (
                'KD + RLKD on fixed T (counterfactual, sampled multipliers)',
                _ON_FIXED + _CF,
                ['model.temperature.deterministic=False'],
            ),
            ('KD + RLKD on logit std.', _ON_LS + '.py', [], _LS),
            ('KD + RLKD on logit std. (counterfactual)', _ON_LS + _CF, [], _LS),
            ('KD + logit std. x random multiplier', _ON_LS + '.py', _FROZEN, _LS),
            ('KD + RLKD on logit std., shuffled states', _ON_LS + '.py', _SHUFFLED, _LS),
        ],
    ),
    # the noisy-teacher testbed: the same student and data, a teacher trained on labels partly
    # swapped between class pairs (configs/digits/cls_teacher_cnn_noisy.py)
    cls_noisy=dict(
        teacher='configs/digits/cls_teacher_cnn_noisy.py',
        teacher_ckpt='checkpoints/digits/cls_teacher_cnn_noisy.pth',
        **_CLS_METRIC,
        baseline='configs/digits/cls_kd_fixed_noisy_teacher.py',
        rows=[
            ('student alone', 'configs/digits/cls_student_cnn.py', []),
            ('KD, fixed T', 'configs/digits/cls_kd_fixed_noisy_teacher.py', []),
            ('KD + logit std.', 'configs/digits/cls_kd_logitstd.py', _NOISY),
            ('KD + rule T0 f^k', 'configs/digits/cls_kd_rule.py', _NOISY),
            ('KD + RLKD on fixed T', _ON_FIXED + '.py', _NOISY),
        ],
    ),
    # the noisy-label testbed: the same teacher, data and student, 30 % of the student's training
    # labels replaced by another class (configs/digits/cls_student_cnn_noisy_labels.py)
    cls_noisy_labels=dict(
        **_CLS_TEACHER,
        **_CLS_METRIC,
        baseline='configs/digits/cls_kd_fixed_noisy_labels.py',
        rows=[
            ('student alone', 'configs/digits/cls_student_cnn_noisy_labels.py', []),
            ('KD, fixed T', 'configs/digits/cls_kd_fixed_noisy_labels.py', []),
            # the peers' KD weights chosen on this testbed's validation split
            # (tools/benchmark/digits_cls_noisy_labels_sweeps.sh)
            (
                'KD + logit std.',
                'configs/digits/cls_kd_logitstd.py',
                _NOISY_LABELS + ['model.kd_loss.loss_weight=36.0'],
            ),
            ('KD + random T', 'configs/digits/cls_kd_random.py', _NOISY_LABELS),
            ('KD + rule T0 f^k', 'configs/digits/cls_kd_rule_noisy_labels.py', []),
            ('KD + RLKD on fixed T', _ON_FIXED + '.py', _NOISY_LABELS_QUIZ),
            ('KD + RLKD on fixed T (counterfactual)', _ON_FIXED + _CF, _NOISY_LABELS_CF),
        ],
    ),
    det=dict(
        teacher='configs/digits/det_teacher_gfl.py',
        teacher_ckpt='checkpoints/digits/det_teacher_gfl.pth',
        metric='coco/bbox_mAP',
        scale=100.0,
        header='mAP',
        baseline='configs/digits/gfl_ld_fixed.py',
        rows=[
            ('student alone', 'configs/digits/det_student_gfl.py', []),
            ('LD + cls KD, fixed T=2', 'configs/digits/gfl_ld_fixed.py', []),
            ('LD + cls KD, RLKD (influence reward)', 'configs/digits/gfl_ld_rlkd.py', []),
            ('LD + cls KD, CTKD', 'configs/digits/gfl_ld_ctkd.py', []),
            ('LD + cls KD, logit std.', 'configs/digits/gfl_ld_logitstd.py', []),
            (
                'LD + cls KD, logit std., scaled variant',
                'configs/digits/gfl_ld_logitstd_scaled.py',
                [],
            ),
            ('LD + cls KD, DTKD', 'configs/digits/gfl_ld_dtkd.py', []),
            ('LD + cls KD, CIST', 'configs/digits/gfl_ld_cist.py', []),
            # controls (tools/benchmark/digits_det_controls_sweeps.sh)
            ('LD + cls KD, random T', 'configs/digits/gfl_ld_random.py', []),
            ('LD + cls KD, rule T0 f^k', 'configs/digits/gfl_ld_rule.py', []),
            # the reward modes at the earlier, untuned setting (fixed T = 4, RLKD [1, 10] / 4)
            ('LD + cls KD, fixed T=4', 'configs/digits/gfl_ld_fixed.py', _FIXED_T4),
            ('LD + cls KD, RLKD [1, 10] / 4 (instance)', _RLKD, _RANGE_10 + _INSTANCE, _T4),
            ('LD + cls KD, RLKD [1, 10] / 4 (influence)', _RLKD, _RANGE_10, _T4),
            ('LD + cls KD, RLKD [1, 10] / 4 (batch)', _RLKD, _RANGE_10 + _BATCH, _T4),
        ],
    ),
)


def paired_difference(values, baseline):
    """Mean ± std over seeds of ``value - baseline value`` (the same seed on both sides)."""
    diffs = [v - b for v, b in zip(values, baseline)]
    return mean_std(diffs) if len(diffs) > 1 else f'{diffs[0]:+.2f}'


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--task', choices=sorted(TASKS), default='cls')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2, 3, 4])
    parser.add_argument('--epochs', type=int, help='override max_epochs of every student run')
    parser.add_argument('--only', nargs='+', help='names or config file names of the rows to run')
    parser.add_argument('--work-dir', help='default work_dirs/digits_<task>_table')
    parser.add_argument('--out', help='default work_dirs/digits_<task>_table.json')
    parser.add_argument(
        '--quiz-fraction',
        type=float,
        help='every row trains without the headroom quiz split (rlkd_mm.apis.runs.split_quiz, '
        'seed 0), so that the oracle rows of tools/analysis/temperature_headroom.py compare with '
        'them',
    )
    parser.add_argument(
        '--dry-run',
        action='store_true',
        help='print the runs (count x seconds per run / jobs) and train nothing',
    )
    parser.add_argument(
        '--seconds-per-run', type=float, default=200.0, help='the estimate --dry-run prints'
    )
    parser.add_argument(
        '--jobs',
        type=int,
        default=1,
        help='runs trained at once, each with OMP_NUM_THREADS = cores // jobs (default 1)',
    )
    return parser


def select_rows(task, only=None):
    """The rows of ``task`` named by ``only`` (row names or config file names), all if None."""
    rows = TASKS[task]['rows']
    return [row for row in rows if not only or row[0] in only or osp.basename(row[1]) in only]


def main():
    parser = build_parser()
    args = parser.parse_args()
    task = TASKS[args.task]
    name = f'digits_{args.task}_table' + (
        f'_quiz{args.quiz_fraction:g}' if args.quiz_fraction else ''
    )
    work_root = args.work_dir or osp.join(ROOT, 'work_dirs', name)
    out = args.out or osp.join(ROOT, 'work_dirs', f'{name}.json')
    metric, scale = task['metric'], task['scale']

    if args.dry_run:
        runs = len(select_rows(args.task, args.only)) * len(args.seeds)
        hours = runs * args.seconds_per_run / max(args.jobs, 1) / 3600
        print(
            f'[dry run] {runs} runs x {args.seconds_per_run:.0f} s / {args.jobs} job(s) = '
            f'{hours:.1f} h (teacher not counted; finished runs are reused)'
        )
        return
    if args.task == 'det':
        ensure_digits_det()
    teacher = ensure_teacher(
        osp.join(ROOT, task['teacher']), osp.join(ROOT, task['teacher_ckpt']), metric
    )
    options = [f'train_cfg.max_epochs={args.epochs}'] if args.epochs else []
    selected = select_rows(args.task, args.only)
    results = {'teacher': dict(config=task['teacher'], values=[scale * teacher[metric]])}
    header = [
        'method',
        'config',
        f'{task["header"]} test, final epoch',
        'paired diff. to fixed T (test)',
        f'{task["header"]} val',
        'paired diff. to fixed T (val)',
        'seeds',
        's / run',
    ]
    rows = [
        (
            'teacher',
            task['teacher'],
            f'{scale * teacher[metric]:.2f}',
            '',
            f'{scale * teacher.get("val/" + metric, float("nan")):.2f}',
            '',
            '1',
            f'{teacher["wall_s"]:.0f}',
        )
    ]
    specs = []
    for _name, config, row_options, *_baseline in selected:
        is_distiller = 'teacher_ckpt' in Config.fromfile(osp.join(ROOT, config)).model
        stem = osp.splitext(osp.basename(config))[0]
        tag = '_'.join(o.split('=')[-1] for o in row_options)
        extra = list(options) + list(row_options)
        if args.quiz_fraction:
            extra += quiz_holdout_options(osp.join(ROOT, config), args.quiz_fraction)
        if is_distiller:
            extra.append(f'model.teacher_ckpt={task["teacher_ckpt"]}')
        for seed in args.seeds:
            specs.append(
                dict(
                    config=osp.join(ROOT, config),
                    work_dir=osp.join(work_root, f'{stem}{"_" + tag if tag else ""}_seed{seed}'),
                    seed=seed,
                    cfg_options=extra,
                )
            )
    total, progress, start = len(specs), dict(done=0, trained=0), time.time()
    finished = {}

    def on_done(i, metrics):
        finished[i] = metrics
        progress['done'] += 1
        progress['trained'] += not metrics.get('reused', False)
        left = total - progress['done']
        eta = (time.time() - start) / max(progress['trained'], 1) * left
        name = selected[i // len(args.seeds)][0]
        print(
            f'[table {progress["done"]}/{total}, {left} left, ETA {eta:.0f} s] '
            f'{name} seed {specs[i]["seed"]}: {scale * metrics[metric]:.2f} '
            f'({metrics["wall_s"]:.0f} s)',
            flush=True,
        )
        # what is measured so far, so an interrupted table keeps it
        partial = {}
        for j in sorted(finished):
            row = partial.setdefault(selected[j // len(args.seeds)][0], {})
            row[str(specs[j]['seed'])] = scale * finished[j][metric]
        os.makedirs(osp.dirname(out), exist_ok=True)
        with open(out + '.partial', 'w') as f:
            json.dump(dict(finished=partial, seeds=args.seeds), f, indent=1)

    all_metrics = run_many(specs, jobs=args.jobs, on_done=on_done)
    n = len(args.seeds)
    check_one_teacher({row[0]: all_metrics[r * n : (r + 1) * n] for r, row in enumerate(selected)})
    default_baseline = next(
        (row[0] for row in task['rows'] if row[1] == task['baseline'] and not row[2]), None
    )
    for r, (name, config, row_options, *_) in enumerate(selected):
        row_metrics = all_metrics[r * len(args.seeds) : (r + 1) * len(args.seeds)]
        values = [scale * m[metric] for m in row_metrics]
        val_values = [scale * m.get(f'val/{metric}', float('nan')) for m in row_metrics]
        times = [m['wall_s'] for m in row_metrics]
        results[name] = dict(
            config=config, options=row_options, values=values, val=val_values, wall_s=times
        )
    baselines = {row[3] for row in selected if len(row) > 3}
    for name, config, row_options, *row_baseline in selected:
        values, val_values, times = (results[name][k] for k in ('values', 'val', 'wall_s'))
        # each row against its baseline row on the same seeds (a row may name its own)
        baseline = row_baseline[0] if row_baseline else default_baseline
        diff = val_diff = ''
        if name == baseline or name in baselines:
            diff = val_diff = '—'
        elif baseline in results:
            diff = paired_difference(values, results[baseline]['values'])
            val_diff = paired_difference(val_values, results[baseline]['val'])
        rows.append(
            (
                name,
                ' '.join([config, *row_options]),
                mean_std(values),
                diff,
                mean_std(val_values),
                val_diff,
                str(len(values)),
                f'{sum(times) / len(times):.0f}',
            )
        )
    table = markdown_table(header, rows)
    print(table)
    with open(out, 'w') as f:
        json.dump(dict(results=results, table=table, seeds=args.seeds), f, indent=1)


if __name__ == '__main__':
    main()
