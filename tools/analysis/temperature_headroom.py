"""Is a per-instance temperature worth finding? The headroom oracle against the best single
multiplier and the null oracle.

Around the config's temperature policy (the base), K multipliers ``a_k`` log-spaced in
``[a_min, a_max]`` scale every temperature the base uses. A quiz split (``--quiz-fraction`` of the
training source, fixed by ``--quiz-seed``) is removed from every row's training set; the tool
never touches val or test for anything but reporting.

Train mode (default) trains, per seed:

- ``a=<a_k>``: the base with one global multiplier (``ScaledTemperature``; ``a=1`` is the base);
- ``oracle``: every instance at its best-scoring candidate (``OracleTemperature`` +
  ``HeadroomHook``): the first-order decrease of the quiz loss after a step on the instance's
  KD-plus-task gradient at the last layer, preconditioned as Adam would, normalised to the base
  step's norm, the quiz gradient refreshed every ``--refresh-interval`` iterations;
- ``null``: the same with the quiz gradient's rows permuted (no signal).

and reports each row's final-epoch val / test metric (mean ± std over seeds), the best single
multiplier chosen on val, and the headroom: oracle − max(best single, null), paired over seeds
on test, with its standard error; plus what the oracle did while training (mean predicted gain
over the base, share of picks at the grid ends, agreement of two disjoint quiz halves on the
pick, chance 1/K). A null result means that this one-step evaluator finds no per-instance choice
worth making, not that none exists.

Probe mode (``--probe CHECKPOINT``, a ``tools/train.py`` checkpoint of the config) trains
nothing: for ``--probe-iters`` training batches it scores the candidates on the trained model and
prints the predicted gain and pick stability, and for 5 batches the rank correlation between the
predicted and the actual quiz-loss change of the K global candidates after one real optimizer
step.

    python tools/analysis/temperature_headroom.py configs/digits/cls_kd_fixed.py --seeds 0 1
    python tools/analysis/temperature_headroom.py configs/digits/cls_kd_fixed.py --dry-run
    python tools/analysis/temperature_headroom.py CONFIG --probe work_dirs/x/epoch_30.pth

Train mode: ``ClassifierDistiller`` (an instance is an image, the last layer its linear fc) and
``SingleStageDetDistiller`` (an instance is a positive prior, the last layer the head's last class
conv, the quiz loss the head's own classification loss with its negatives; the LD term acts on the
box branch and is not scored). Probe mode: ``ClassifierDistiller`` only. For DigitsDet, a smaller
quiz batch keeps the cost down: ``--quiz-batch-size 32``.
"""

import argparse
import copy
import glob
import itertools
import json
import math
import os
import os.path as osp
import statistics
from typing import Dict, List, Sequence

import torch
from mmengine.config import Config, DictAction

import rlkd_mm  # noqa: F401
from rlkd_mm.apis.runs import ROOT, check_one_teacher, run_many, split_quiz
from rlkd_mm.temperature import BaseTemperature
from rlkd_mm.temperature.oracle import multiplier_grid


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        'config', help='a classification or one-stage detection distillation config (the base)'
    )
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    parser.add_argument('--quiz-fraction', type=float, default=0.1)
    parser.add_argument('--quiz-seed', type=int, default=0)
    parser.add_argument('--num-candidates', type=int, default=5, help='K')
    parser.add_argument('--a-min', type=float, default=0.5)
    parser.add_argument('--a-max', type=float, default=2.0)
    parser.add_argument('--refresh-interval', type=int, default=10, help='R')
    parser.add_argument('--quiz-batch-size', type=int, default=256)
    parser.add_argument(
        '--raw-scores',
        action='store_true',
        help='the oracles score the step as trained, not rescaled to the base step',
    )
    parser.add_argument('--work-dir', help='default: work_dirs/headroom/<config name>')
    parser.add_argument('--jobs', type=int, default=1, help='runs trained at once')
    parser.add_argument('--dry-run', action='store_true', help='print the runs, train nothing')
    parser.add_argument('--seconds-per-run', type=float, default=float('nan'))
    parser.add_argument('--probe', help='probe mode: a tools/train.py checkpoint of CONFIG')
    parser.add_argument('--probe-iters', type=int, default=20)
    parser.add_argument('--out', help='write the report JSON here too')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    return parser.parse_args(argv)


#: the distillers whose candidates the oracle can score (an instance: an image, a positive prior)
_SUPPORTED = ('ClassifierDistiller', 'SingleStageDetDistiller')


def headroom_configs(cfg: Config, args) -> Dict[str, Config]:
    """One config per row: every single multiplier, the oracle and the null oracle, all
    trained without the quiz split."""
    model_type = str(cfg.model.get('type', ''))
    if not any(name in model_type for name in _SUPPORTED):
        raise TypeError(
            f'temperature_headroom supports {" and ".join(_SUPPORTED)} configs, got '
            f'{cfg.model.get("type")}'
        )
    train_idx, quiz_idx = split_quiz(cfg, args.quiz_fraction, args.quiz_seed)
    base = copy.deepcopy(cfg.model.temperature)
    grid = multiplier_grid(args.num_candidates, args.a_min, args.a_max).tolist()
    quiz_ds = copy.deepcopy(cfg.train_dataloader.dataset)
    quiz_ds.update(indices=quiz_idx, pipeline=copy.deepcopy(cfg.test_dataloader.dataset.pipeline))

    def row(temperature, hook=None):
        row_cfg = copy.deepcopy(cfg)
        row_cfg.train_dataloader.dataset.indices = train_idx
        row_cfg.model.temperature = temperature
        if hook is not None:
            row_cfg.custom_hooks = list(row_cfg.get('custom_hooks', [])) + [hook]
        return row_cfg

    rows = {
        f'a={a:.3g}': row(dict(type='rlkd_mm.ScaledTemperature', base=base, multiplier=a))
        for a in grid
    }
    hook = dict(
        type='rlkd_mm.HeadroomHook',
        quiz_dataset=quiz_ds,
        quiz_batch_size=args.quiz_batch_size,
        refresh_interval=args.refresh_interval,
    )
    for name, null in (('oracle', False), ('null', True)):
        oracle = dict(
            type='rlkd_mm.OracleTemperature',
            base=base,
            num_candidates=args.num_candidates,
            a_min=args.a_min,
            a_max=args.a_max,
            null=null,
            normalise=not args.raw_scores,
        )
        rows[name] = row(oracle, hook)
    return rows


# ----------------------------------------------------------------------------- train mode
def _metric_keys(metrics: Dict[str, float]):
    test = next(k for k in metrics if not k.startswith('val/') and ('top1' in k or 'mAP' in k))
    return f'val/{test}', test


def _oracle_log(run_dir: str) -> Dict[str, float]:
    """Mean of the oracle's logged pick statistics over the run (scalars.json)."""
    files = sorted(glob.glob(osp.join(run_dir, '*', 'vis_data', 'scalars.json')))
    values: Dict[str, List[float]] = {}
    if files:
        with open(files[-1]) as f:
            for line in f:
                rec = json.loads(line)
                for key, value in rec.items():
                    if key.startswith('oracle_'):
                        values.setdefault(key, []).append(float(value))
    return {k: statistics.mean(v) for k, v in values.items()}


def _mean_std(values: Sequence[float]) -> Dict[str, float]:
    mean = statistics.mean(values)
    std = statistics.stdev(values) if len(values) > 1 else float('nan')
    return dict(mean=mean, std=std, se=std / math.sqrt(len(values)), n=len(values))


def report(rows: Dict[str, List[Dict[str, float]]], seeds, grid_size) -> Dict:
    val_key, test_key = _metric_keys(rows['oracle'][0])
    table = {
        name: dict(
            val=_mean_std([m[val_key] for m in runs]), test=_mean_std([m[test_key] for m in runs])
        )
        for name, runs in rows.items()
    }
    singles = [name for name in rows if name.startswith('a=')]
    best = max(singles, key=lambda name: table[name]['val']['mean'])
    oracle = [m[test_key] for m in rows['oracle']]
    vs_single = [o - m[test_key] for o, m in zip(oracle, rows[best])]
    vs_null = [o - m[test_key] for o, m in zip(oracle, rows['null'])]
    d_single, d_null = _mean_std(vs_single), _mean_std(vs_null)
    headroom = min((d_single, d_null), key=lambda d: d['mean'])
    return dict(
        metric=test_key,
        seeds=list(seeds),
        rows=table,
        best_single=best,
        oracle_minus_best_single=d_single,
        oracle_minus_null=d_null,
        headroom=headroom,
        headroom_found=bool(headroom['mean'] >= 0.5 and headroom['mean'] >= 2 * headroom['se']),
        chance_agreement=1.0 / grid_size,
    )


def train_mode(args, cfg: Config) -> Dict:
    rows = headroom_configs(cfg, args)
    name = osp.splitext(osp.basename(args.config))[0]
    work = args.work_dir or osp.join(ROOT, 'work_dirs', 'headroom', name)
    os.makedirs(osp.join(work, 'configs'), exist_ok=True)
    specs, keys = [], []
    for row, row_cfg in rows.items():
        path = osp.join(work, 'configs', f'{row}.py')
        row_cfg.dump(path)
        for seed in args.seeds:
            specs.append(dict(config=path, work_dir=osp.join(work, f'{row}_seed{seed}'), seed=seed))
            keys.append(row)
    print(
        f'[headroom] {len(specs)} runs ({len(rows)} rows x {len(args.seeds)} seeds) x '
        f'{args.seconds_per_run:.0f} s per run / {args.jobs} jobs',
        flush=True,
    )
    if args.dry_run:
        return dict(runs=[s['work_dir'] for s in specs])
    results = run_many(specs, jobs=args.jobs)
    by_row: Dict[str, List[Dict[str, float]]] = {}
    for key, metrics in zip(keys, results):
        by_row.setdefault(key, []).append(metrics)
    out = report(by_row, args.seeds, args.num_candidates)
    out['teacher_sha256'] = check_one_teacher(by_row)
    out['oracle_while_training'] = {
        row: [_oracle_log(osp.join(work, f'{row}_seed{s}')) for s in args.seeds]
        for row in ('oracle', 'null')
    }
    return out


# ----------------------------------------------------------------------------- probe mode
def probe_mode(args, cfg: Config) -> Dict:
    """Score the candidates on a trained checkpoint without training it."""
    if 'ClassifierDistiller' not in str(cfg.model.get('type', '')):
        raise TypeError(
            f'--probe supports ClassifierDistiller configs, got {cfg.model.get("type")}; '
            'train mode supports detection too'
        )
    from mmengine.runner import Runner
    from scipy.stats import spearmanr

    from rlkd_mm.models.distillers.base import student_untouched

    rows = headroom_configs(cfg, args)
    probe_cfg = rows['oracle']
    probe_cfg.work_dir = osp.join(ROOT, 'work_dirs', 'headroom_probe')
    probe_cfg.load_from = None
    runner = Runner.from_cfg(probe_cfg)
    model = runner.model
    ckpt = torch.load(args.probe, map_location='cpu', weights_only=False)
    model.load_state_dict(ckpt['state_dict'])
    optim_wrapper = runner.build_optim_wrapper(probe_cfg.optim_wrapper)
    if 'optimizer' in ckpt:
        optim_wrapper.load_state_dict(ckpt['optimizer'])
    runner.optim_wrapper = optim_wrapper
    hook = next(h for h in runner.hooks if type(h).__name__ == 'HeadroomHook')
    hook.before_train(runner)
    policy = model.temperature
    model.train()
    dataloader = runner.build_dataloader(probe_cfg.train_dataloader, seed=0)
    batches = (batch for _ in itertools.count() for batch in dataloader)  # epochs as needed
    stats: List[Dict[str, float]] = []
    correlations: List[float] = []
    picks: Dict[str, List[float]] = dict(index=[], log_a=[], teacher_gt_prob=[], student_gt_prob=[])
    grid = policy.multipliers.tolist()
    for it in range(args.probe_iters):
        data = model.data_preprocessor(next(batches), True)
        hook.before_train_iter(runner, it)
        with torch.no_grad():
            model.loss(data['inputs'], data['data_samples'])
            labels = model._hard_labels(data['data_samples'])
            with student_untouched(model.student):
                z_s, _ = model._logits(data['inputs'], with_features=False)
            z_t = model.teacher(data['inputs'], mode='tensor')
        stats.append(dict(policy.last_stats))
        picks['index'] += policy.last_pick.tolist()
        picks['log_a'] += policy.multipliers[policy.last_pick].log().tolist()
        for key, z in (('teacher_gt_prob', z_t), ('student_gt_prob', z_s)):
            picks[key] += z.softmax(dim=1).gather(1, labels[:, None]).squeeze(1).tolist()
        if it < 5:
            refresh = it // args.refresh_interval
            correlations.append(
                _global_rank_correlation(runner, model, hook, refresh, data, grid, spearmanr)
            )
    mean = {k: statistics.mean(s[k] for s in stats) for k in stats[0]}
    return dict(
        checkpoint=args.probe,
        probe_iters=args.probe_iters,
        oracle=mean,
        chance_agreement=1.0 / len(grid),
        global_candidates_spearman=correlations,
        global_candidates_spearman_mean=statistics.mean(correlations),
        # what the oracle wants: rank correlation of the picked log multiplier with the state
        pick_spearman={
            key: float(spearmanr(picks['log_a'], picks[key]).statistic)
            for key in ('teacher_gt_prob', 'student_gt_prob')
        },
        pick_share={
            f'{a:.3g}': picks['index'].count(k) / len(picks['index']) for k, a in enumerate(grid)
        },
    )


def _global_rank_correlation(runner, model, hook, refresh, data, grid, spearmanr) -> float:
    """Spearman correlation, over the K global candidates, between the predicted quiz-loss
    decrease (the sum of the instances' unnormalised first-order decreases) and the actual
    decrease after one real optimizer step with every instance at that candidate (the model and
    the optimizer are restored after each trial step)."""
    from rlkd_mm.temperature.oracle import candidate_scores

    oracle = model.temperature
    quiz_data = model.data_preprocessor(hook.quiz.batch(refresh), False)

    def quiz_loss() -> float:
        with torch.no_grad():
            feats, _ = model.quiz_gradients(quiz_data['inputs'], quiz_data['data_samples'])
            logits = model.student.head.fc(feats)
            targets = model._targets(quiz_data['data_samples']).to(logits.device)
            return float(model._per_image_loss(logits, targets).mean())

    model_state = copy.deepcopy(model.state_dict())
    optim_state = copy.deepcopy(runner.optim_wrapper.state_dict())
    labels = model._hard_labels(data['data_samples'])
    before = quiz_loss()
    predicted, actual = [], []
    for a in grid:
        single = _Scaled(oracle.base, a)
        with torch.no_grad():
            z, feats = model._logits(data['inputs'], with_features=True)
            t = model.teacher(data['inputs'], mode='tensor')
        grads = model.candidate_logit_grads(z, t, labels, 1, single)
        predicted.append(
            sum(
                float(candidate_scores(grads, feats, d, p)['decrease'].sum())
                for d, p in oracle.quiz
            )
        )
        model.temperature = single
        try:
            losses = model.loss(data['inputs'], data['data_samples'])
            runner.optim_wrapper.update_params(model.parse_losses(losses)[0])
            actual.append(before - quiz_loss())
        finally:
            model.temperature = oracle
            model.load_state_dict(model_state)
            runner.optim_wrapper.load_state_dict(copy.deepcopy(optim_state))
    return float(spearmanr(predicted, actual).statistic)


class _Scaled(BaseTemperature):
    """The base policy (a built module) at one global multiplier (the trial steps' policy)."""

    def __init__(self, base, a):
        super().__init__(score_type=base.score_type)
        self.base, self.a = base, a

    def forward(self, z, t, y=None):
        from rlkd_mm.temperature.oracle import scale_output

        out = self.base(z, t, y)
        return scale_output(out, out.t_student.new_tensor(self.a))


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    out = probe_mode(args, cfg) if args.probe else train_mode(args, cfg)
    text = json.dumps(out, indent=1)
    print(text)
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            f.write(text)
    return out


if __name__ == '__main__':
    main()
