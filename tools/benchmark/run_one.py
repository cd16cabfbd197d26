"""Train a config, then evaluate the *final* model on the test split.

    python tools/benchmark/run_one.py CONFIG --work-dir DIR [--seed S] [--cfg-options ...]

The same as ``python tools/train.py CONFIG --work-dir DIR --seed S --final-metrics``: writes
``final_metrics.json`` (metrics of the last epoch's weights, never a selected "best" epoch) and
``final_model.pth`` (a checkpoint of the trained model) into the work dir; see
``rlkd_mm.apis.final_metrics``.
"""

import argparse
import os.path as osp
import runpy
import sys


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--work-dir', required=True)
    parser.add_argument('--seed', type=int, default=0)
    args, rest = parser.parse_known_args()
    train = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'train.py')
    sys.argv = [train, args.config, '--work-dir', args.work_dir, '--seed', str(args.seed)]
    sys.argv += ['--final-metrics', *rest]
    runpy.run_path(train, run_name='__main__')


if __name__ == '__main__':
    main()
