"""Training-iteration time of a DigitsDet config with main-process data loading ÷ one persistent
worker, measured side by side.

The shipped DigitsDet configs load training data in the main process (``num_workers=0``), so that
``RandomStateHook`` can save the augmentation stream and a resume is exact. This measures what
that costs against the earlier setting (one persistent worker): one model and optimizer, two
training dataloaders over the same data, iterations interleaved (main, worker, main, ...) so that
machine load affects both alike; each timed iteration is the batch fetch plus ``train_step``.

    python tools/benchmark/loader_cost.py configs/digits/gfl_ld_fixed.py --iters 60
"""

import argparse
import copy
import json
import statistics
import time

import torch
from mmengine.config import Config
from mmengine.runner import Runner

import rlkd_mm  # noqa: F401
from rlkd_mm.apis.runs import ROOT, ensure_digits_det


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='a DigitsDet config (its teacher is left random)')
    parser.add_argument('--iters', type=int, default=60, help='timed iterations per loader')
    parser.add_argument('--warmup', type=int, default=5, help='untimed iterations per loader')
    args = parser.parse_args()
    ensure_digits_det()
    cfg = Config.fromfile(args.config)
    cfg.model.teacher_ckpt = None
    cfg.work_dir = f'{ROOT}/work_dirs/loader_cost'
    runner = Runner.from_cfg(cfg)
    model = runner.model
    optim_wrapper = runner.build_optim_wrapper(cfg.optim_wrapper)
    model.train()

    def loader(num_workers, persistent):
        dl_cfg = copy.deepcopy(cfg.train_dataloader)
        dl_cfg.update(num_workers=num_workers, persistent_workers=persistent)
        return iter(runner.build_dataloader(dl_cfg, seed=0))

    loaders = dict(main_process=loader(0, False), persistent_worker=loader(1, True))
    times = {name: [] for name in loaders}
    for i in range(args.warmup + args.iters):
        for name, it in loaders.items():
            start = time.perf_counter()
            model.train_step(next(it), optim_wrapper)
            if i >= args.warmup:
                times[name].append(time.perf_counter() - start)
    main_t, worker_t = times['main_process'], times['persistent_worker']
    result = dict(
        config=args.config,
        iters=args.iters,
        threads=torch.get_num_threads(),
        main_process_s=statistics.mean(main_t),
        persistent_worker_s=statistics.mean(worker_t),
        ratio_of_means=statistics.mean(main_t) / statistics.mean(worker_t),
        ratio_of_medians=statistics.median(main_t) / statistics.median(worker_t),
    )
    print(json.dumps(result, indent=1))


if __name__ == '__main__':
    main()
