"""Training-iteration time of RLKD ÷ fixed-temperature KD, measured side by side.

Both distillers share the student and teacher architectures and start from the same weights; their
iterations are interleaved (fixed, RLKD, fixed, RLKD, ...) so that machine load affects both alike.
An RLKD iteration includes everything RLKD adds: the instance state, the agent's action, and
``RLKDHook``'s reward/experience bookkeeping and (every ``--update-interval`` iterations) the
agent update. Reports the ratio of medians (typical iteration) and of means (the periodic agent
update amortised).

    python tools/benchmark/overhead.py --task cls          # mmpretrain ResNet-34 -> ResNet-18, 224²
    python tools/benchmark/overhead.py --task det          # mmdet GFL R101 -> R18, 320²
"""

import argparse
import copy
import json
import os.path as osp
import statistics
import sys
import time
from types import SimpleNamespace

import torch
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import rlkd_mm  # noqa: E402,F401
from rlkd_mm.engine import RLKDHook  # noqa: E402
from rlkd_mm.registry import MODELS  # noqa: E402

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
    parser.add_argument('--update-interval', type=int, default=16)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--out', help='write the measurements to this json file')
    args = parser.parse_args()
    size = args.size or (224 if args.task == 'cls' else 320)
    setup = cls_setup if args.task == 'cls' else det_setup
    fixed_cfg, rl_cfg, make_batch = setup(args.batch_size, size)

    torch.manual_seed(0)
    fixed = MODELS.build(fixed_cfg)
    fixed.init_weights()
    rl = MODELS.build(rl_cfg)
    rl.load_state_dict(fixed.state_dict())  # the same weights (the agent is not in it)
    models = dict(fixed=fixed.to(args.device).train(), rlkd=rl.to(args.device).train())
    optim_cfg = dict(
        constructor='rlkd_mm.DistillerOptimWrapperConstructor',
        optimizer=dict(type='SGD', lr=1e-3, momentum=0.9),
    )
    optims = {k: build_optim_wrapper(m, copy.deepcopy(optim_cfg)) for k, m in models.items()}

    hook = RLKDHook(update_interval=args.update_interval, warmup_iters=0)
    total = args.warmup + args.iters
    runner = SimpleNamespace(
        model=models['rlkd'], iter=0, max_iters=total, message_hub=MessageHub.get_current_instance()
    )
    hook.before_train(runner)

    def sync():
        if args.device.startswith('cuda'):
            torch.cuda.synchronize()

    times = dict(fixed=[], rlkd=[])
    for i in range(total):
        data = make_batch(i)
        for name in ('fixed', 'rlkd'):
            model = models[name]
            sync()
            start = time.perf_counter()
            if name == 'rlkd':
                runner.iter = i
                hook.before_train_iter(runner, i, data)
            outputs = model.train_step(data, optims[name])
            if name == 'rlkd':
                hook.after_train_iter(runner, i, data, outputs)
            sync()
            if i >= args.warmup:
                times[name].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in times.items()}
    mean = {k: statistics.mean(v) for k, v in times.items()}
    result = dict(
        task=args.task,
        device=args.device,
        batch_size=args.batch_size,
        size=size,
        iters=args.iters,
        update_interval=args.update_interval,
        agent_updates=int(rl.temperature.agent.update_count),
        median_s=med,
        mean_s=mean,
        ratio_median=med['rlkd'] / med['fixed'],
        ratio_mean=mean['rlkd'] / mean['fixed'],
    )
    print(json.dumps(result, indent=1))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=1)


if __name__ == '__main__':
    main()
