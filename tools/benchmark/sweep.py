"""Sweep config options of a digits config and rank the settings on the *validation* split.

Each setting (one value per swept key, all combinations) is trained for every seed with
``tools/benchmark/run_one.py``; its final weights are evaluated on the validation split (used to
choose) and on the test split (reported only). Settings are ranked by the validation metric, so
the choice never looks at the test split. Results accumulate in ``<work dir>/sweep.json``: a later
sweep of the same config and work dir ranks its settings together with the earlier ones, and
finished runs are not trained again (nor runs of the same setting and seed made by another sweep
or table, see ``run_one``). Progress (runs done / left, ETA) is printed as runs finish; the ranked
markdown table is printed and written to ``<work dir>/sweep.md`` (or ``--out``). ``--jobs 2``
trains two runs at once, one thread each.

    python tools/benchmark/sweep.py configs/digits/gfl_ld_fixed.py \
        --grid model.kd_loss.loss_weight=1.0,0.3,0.1 --seeds 0
"""

import argparse
import itertools
import json
import os
import os.path as osp
import statistics
import sys
import time

from rlkd_mm.apis.runs import (
    ROOT,
    markdown_table,
    mean_std,
    quiz_holdout_options,
    run_many,
)


def parse_grid(items):
    """``['a.b=1,2', 'c=x']`` -> ``[('a.b', ['1', '2']), ('c', ['x'])]``."""
    grid = []
    for item in items:
        key, sep, values = item.partition('=')
        if not sep or not key or not values:
            raise ValueError(f'--grid entries are key=v1,v2,...; got {item!r}')
        grid.append((key, values.split(',')))
    return grid


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--grid', nargs='+', required=True, help='key=v1,v2,... (mmengine keys)')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0])
    parser.add_argument('--metric', default='coco/bbox_mAP', help='metric key to rank on')
    parser.add_argument('--scale', type=float, default=100.0, help='multiplier for the table')
    parser.add_argument('--cfg-options', nargs='+', default=[], help='fixed extra options')
    parser.add_argument(
        '--quiz-fraction',
        type=float,
        help='train without the headroom quiz split (rlkd_mm.apis.runs.split_quiz, seed 0), as the '
        'headroom tables do',
    )
    parser.add_argument('--work-dir', help='default work_dirs/sweep_<config stem>[_quiz<f>]')
    parser.add_argument('--out', help='markdown table file, default <work dir>/sweep.md')
    parser.add_argument(
        '--jobs', type=int, default=1, help='runs trained at once (see digits_table.py --jobs)'
    )
    args = parser.parse_args()

    stem = osp.splitext(osp.basename(args.config))[0]
    if args.quiz_fraction:
        stem += f'_quiz{args.quiz_fraction:g}'
    work_root = args.work_dir or osp.join(ROOT, 'work_dirs', f'sweep_{stem}')
    holdout = quiz_holdout_options(args.config, args.quiz_fraction) if args.quiz_fraction else []
    grid = parse_grid(args.grid)
    # settings of earlier sweeps of the same config in this work dir join the ranking
    record_file = osp.join(work_root, 'sweep.json')
    results = []
    if osp.isfile(record_file):
        with open(record_file) as f:
            record = json.load(f)
        if record.get('config') == args.config and record.get('metric') == args.metric:
            results = record['results']
    settings = list(itertools.product(*(vals for _, vals in grid)))
    specs, setting_options = [], []
    for values in settings:
        options = [f'{key}={value}' for (key, _), value in zip(grid, values)]
        tag = '_'.join(
            f'{".".join(key.split(".")[-2:])}-{value}' for (key, _), value in zip(grid, values)
        )
        options = [*args.cfg_options, *options]
        setting_options.append(options)
        for seed in args.seeds:
            specs.append(
                dict(
                    config=osp.abspath(args.config),
                    work_dir=osp.join(work_root, f'{tag}_seed{seed}'),
                    seed=seed,
                    cfg_options=options + holdout,
                )
            )
    total, progress, start = len(specs), dict(done=0, trained=0), time.time()

    def on_done(i, metrics):
        progress['done'] += 1
        progress['trained'] += not metrics.get('reused', False)
        left = total - progress['done']
        per_run = (time.time() - start) / max(progress['trained'], 1)
        print(
            f'[sweep {progress["done"]}/{total}, {left} left, ETA {per_run * left:.0f} s] '
            f'{" ".join(setting_options[i // len(args.seeds)])} seed {specs[i]["seed"]}: '
            f'val {args.scale * metrics[f"val/{args.metric}"]:.2f} '
            f'test {args.scale * metrics[args.metric]:.2f}',
            flush=True,
        )

    all_metrics = run_many(specs, jobs=args.jobs, on_done=on_done)
    n = len(args.seeds)
    for k, options in enumerate(setting_options):
        runs = all_metrics[k * n : (k + 1) * n]
        val = [args.scale * m[f'val/{args.metric}'] for m in runs]
        test = [args.scale * m[args.metric] for m in runs]
        entry = dict(options=options, seeds=args.seeds, val=val, test=test)
        results = [r for r in results if (r['options'], r['seeds']) != (options, args.seeds)]
        results.append(entry)
    os.makedirs(work_root, exist_ok=True)
    with open(record_file, 'w') as f:
        json.dump(dict(config=args.config, metric=args.metric, results=results), f, indent=1)

    results.sort(key=lambda r: -statistics.mean(r['val']))
    rows = [
        (
            ' '.join(r['options']),
            ' '.join(map(str, r['seeds'])),
            mean_std(r['val']),
            mean_std(r['test']),
        )
        for r in results
    ]
    table = markdown_table(['setting', 'seeds', f'val {args.metric}', f'test {args.metric}'], rows)
    chosen = f'chosen on validation: {" ".join(results[0]["options"])}'
    print(table)
    print(chosen)
    out = args.out or osp.join(work_root, 'sweep.md')
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with open(out, 'w') as f:
        command = ' '.join(['python', 'tools/benchmark/sweep.py', *sys.argv[1:]])
        f.write(f'`{command}`\n\n{table}\n\n{chosen}\n')


if __name__ == '__main__':
    main()
