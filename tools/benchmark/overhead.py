"""Training-iteration time of RLKD ÷ fixed-temperature KD, measured side by side.

Both distillers share the student and teacher architectures and start from the same weights; their
iterations are interleaved (fixed, RLKD, fixed, RLKD, ...) so that machine load affects both alike.
An RLKD iteration includes everything RLKD adds: the instance state, the agent's action,
``RLKDHook``'s reward (in the per-instance modes the student's re-evaluation every
``reward_interval``-th iteration) and experience bookkeeping, and the periodic agent update. One
RLKD model is timed per ``--reward`` mode and ``--reward-intervals`` value, all interleaved with
the fixed-T model. ``--base`` times RLKD on a base policy (``RLTemperature(base=...)``, the
fixed-T model's policy as the base), so the ratio is RLKD ÷ its own base; ``--reward
counterfactual`` (classification) scores 4 multipliers per image on a quiz batch of random
images (64, refreshed every 32 iterations, as the shipped configs).
Reports, per interval, the ratio of means (re-evaluations and agent updates amortised: the
number that matters), the ratio of medians, and on CUDA the peak-memory ratio.

    python tools/benchmark/overhead.py --task cls          # mmpretrain ResNet-34 -> ResNet-18, 224²
    python tools/benchmark/overhead.py --task det          # mmdet GFL R101 -> R18, 320²
    python tools/benchmark/overhead.py --task cls --base --reward counterfactual \
        --reward-intervals 2 --update-interval 4
"""

import argparse
import copy
import json
import statistics
import sys
import time

import torch
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

import rlkd_mm  # noqa: F401
from rlkd_mm.engine import RLKDHook
from rlkd_mm.registry import MODELS
from rlkd_mm.testing import FakeRunner

RL_POLICY = dict(type='rlkd_mm.RLTemperature', t_min=1.0, t_max=10.0, t_init=4.0)


def cls_setup(batch_size: int, size: int):
    init_default_scope('mmpretrain')
    base = dict(
        type='rlkd_mm.ClassifierDistiller',
        student='mmpretrain::resnet/resnet18_8xb32_in1k.py',
        teacher='mmpretrain::resnet/resnet34_8xb32_in1k.py',
        teacher_ckpt=None,
        kd_loss=dict(type='rlkd_mm.InstanceKDLoss', loss_weight=1.0),
    )
    fixed = dict(base, temperature=dict(type='rlkd_mm.FixedTemperature', temperature=4.0))
    rl = dict(base, temperature=RL_POLICY)

    def make_batch(seed):
        from mmpretrain.structures import DataSample

        g = torch.Generator().manual_seed(seed)
        inputs = [
            torch.randint(0, 256, (3, size, size), generator=g, dtype=torch.uint8)
            for _ in range(batch_size)
        ]
        labels = torch.randint(0, 1000, (batch_size,), generator=g)
        return dict(inputs=inputs, data_samples=[DataSample().set_gt_label(int(x)) for x in labels])

    return fixed, rl, make_batch


def quiz_items(make_batch, num: int, seed: int = 10_000) -> list:
    """``num`` dataset items (``inputs``, ``data_samples``) of random batches, as a quiz split."""
    items = []
    while len(items) < num:
        batch = make_batch(seed + len(items))
        items += [
            dict(inputs=x, data_samples=d) for x, d in zip(batch['inputs'], batch['data_samples'])
        ]
    return items[:num]


def det_setup(batch_size: int, size: int):
    from mmengine.config import Config

    from rlkd_mm.utils import resolve_config_path

    init_default_scope('mmdet')

    def gfl(depth):
        cfg = Config.fromfile(resolve_config_path('mmdet::gfl/gfl_r50_fpn_1x_coco.py')).model
        cfg.backbone.depth = depth
        cfg.backbone.init_cfg = None  # nothing is downloaded
        if depth < 50:
            cfg.neck.in_channels = [64, 128, 256, 512]
        return cfg

    teacher_cfg, student_cfg = gfl(101), gfl(18)
    base = dict(
        type='rlkd_mm.SingleStageDetDistiller',
        student=student_cfg,
        teacher=teacher_cfg,
        teacher_ckpt=None,
    )
    fixed = dict(
        base,
        temperature=dict(type='rlkd_mm.FixedTemperature', temperature=10.0, score_type='sigmoid'),
    )
    rl = dict(base, temperature=dict(RL_POLICY, score_type='sigmoid'))

    def make_batch(seed):
        from mmdet.testing import demo_mm_inputs

        torch.manual_seed(seed)
        return demo_mm_inputs(
            batch_size=batch_size,
            image_shapes=[(3, size, size)] * batch_size,
            num_items=[3] * batch_size,
            num_classes=80,
            with_mask=False,
        )

    return fixed, rl, make_batch


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--task', choices=['cls', 'det'], default='cls')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--size', type=int, help='image side (default 224 cls / 320 det)')
    parser.add_argument('--warmup', type=int, default=5, help='untimed iterations per model')
    parser.add_argument('--iters', type=int, default=20, help='timed iterations per model')
    parser.add_argument('--update-interval', type=int, default=2)
    parser.add_argument(
        '--reward',
        nargs='+',
        default=['influence'],
        choices=['instance', 'influence', 'batch', 'counterfactual'],
        help='reward modes, one RLKD model per mode and interval (default: the hook default)',
    )
    parser.add_argument('--reward-intervals', type=int, nargs='+', default=[8])
    parser.add_argument(
        '--base',
        action='store_true',
        help="RLKD on a base policy: RLTemperature(base=<the fixed-T model's policy>)",
    )
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--out', help='write the measurements to this json file')
    args = parser.parse_args()
    size = args.size or (224 if args.task == 'cls' else 320)
    setup = cls_setup if args.task == 'cls' else det_setup
    fixed_cfg, rl_cfg, make_batch = setup(args.batch_size, size)
    if args.base:
        base = fixed_cfg['temperature']
        rl_cfg = dict(
            rl_cfg,
            temperature=dict(
                type='rlkd_mm.RLTemperature',
                base=base,
                score_type=base.get('score_type', 'softmax'),
            ),
        )

    torch.manual_seed(0)
    fixed = MODELS.build(fixed_cfg)
    fixed.init_weights()
    models = dict(fixed=fixed.to(args.device).train())
    hooks, runners = {}, {}
    total = args.warmup + args.iters
    settings = [(reward, m) for reward in args.reward for m in args.reward_intervals]
    for reward, m in settings:
        rl = MODELS.build(rl_cfg)
        rl.load_state_dict(fixed.state_dict())  # the same weights (the agent is not in it)
        name = f'rlkd_{reward}_m{m}'
        models[name] = rl.to(args.device).train()
        unit = reward
        if reward == 'counterfactual':
            unit = dict(type=reward, quiz_dataset=quiz_items(make_batch, 64), quiz_batch_size=64)
        hooks[name] = RLKDHook(
            reward=unit,
            reward_interval=m,
            update_interval=args.update_interval,
            warmup_iters=0,
        )
        runners[name] = FakeRunner(rl, total)
    optim_cfg = dict(
        constructor='rlkd_mm.DistillerOptimWrapperConstructor',
        optimizer=dict(type='SGD', lr=1e-3, momentum=0.9),
    )
    optims = {k: build_optim_wrapper(m, copy.deepcopy(optim_cfg)) for k, m in models.items()}
    for name, hook in hooks.items():
        runners[name].optim_wrapper = optims[name]
        hook.before_train(runners[name])
    cuda = args.device.startswith('cuda')

    def sync():
        if cuda:
            torch.cuda.synchronize()

    times = {k: [] for k in models}
    peak = {}
    for i in range(total):
        data = make_batch(i)
        for name, model in models.items():
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            sync()
            start = time.perf_counter()
            if name in hooks:
                runners[name].iter = i
                hooks[name].before_train_iter(runners[name], i, data)
            outputs = model.train_step(data, optims[name])
            if name in hooks:
                hooks[name].after_train_iter(runners[name], i, data, outputs)
            sync()
            if i >= args.warmup:
                times[name].append(time.perf_counter() - start)
                if cuda:
                    peak[name] = max(peak.get(name, 0), torch.cuda.max_memory_allocated())
        print(f'iteration {i + 1}/{total}', file=sys.stderr, flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    mean = {k: statistics.mean(v) for k, v in times.items()}
    rows = []
    for reward, m in settings:
        name = f'rlkd_{reward}_m{m}'
        row = dict(
            base=bool(args.base),
            reward=reward,
            reward_interval=m,
            ratio_mean=mean[name] / mean['fixed'],
            ratio_median=med[name] / med['fixed'],
            agent_updates=int(models[name].temperature.agent.update_count),
        )
        if peak:
            row['peak_memory_ratio'] = peak[name] / peak['fixed']
        rows.append(row)
    result = dict(
        task=args.task,
        device=args.device,
        batch_size=args.batch_size,
        size=size,
        iters=args.iters,
        update_interval=args.update_interval,
        median_s=med,
        mean_s=mean,
        rows=rows,
    )
    print(json.dumps(result, indent=1))
    print('| reward | reward_interval | RLKD / fixed T (mean) | (median) | peak memory |')
    print('|---|---|---|---|---|')
    for row in rows:
        mem = f'{row["peak_memory_ratio"]:.3f}' if 'peak_memory_ratio' in row else 'n/a (CPU)'
        print(
            f'| {row["reward"]} | {row["reward_interval"]} | {row["ratio_mean"]:.3f} | '
            f'{row["ratio_median"]:.3f} | {mem} |'
        )
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=1)


if __name__ == '__main__':
    main()
