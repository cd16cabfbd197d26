"""How sure a classification teacher is, instance by instance, on the splits of its config.

    python tools/analysis/teacher_confidence.py configs/digits/cls_teacher_cnn.py \
        checkpoints/digits/cls_teacher_cnn.pth --data-config configs/digits/cls_student_cnn.py

``--data-config`` takes the splits from another config (default: the teacher's own), e.g. the
images the *students* train on, which the teacher may not have been trained on.

Prints one JSON object per split: top-1, the quantiles (10/25/50/75/90 %) of the teacher's
confidence (its largest class probability) and of its probability of the ground-truth class, the
share of instances with confidence >= 0.9, and, for data that record each instance's
``difficulty`` (``ClutteredDigitsDataset``), the Spearman correlation of confidence and
difficulty. A per-instance temperature has something to act on only where confidence varies.
"""

import argparse
import contextlib
import json
import sys

import numpy as np
import torch

QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


def confidence_report(probs: torch.Tensor, labels: torch.Tensor, difficulty=None) -> dict:
    """The statistics of the module docstring from class probabilities ``[N, C]``."""
    from scipy.stats import spearmanr

    confidence = probs.max(dim=1).values.numpy()
    p_label = probs.gather(1, labels[:, None]).squeeze(1).numpy()
    report = dict(
        num_instances=int(len(labels)),
        top1=float((probs.argmax(dim=1) == labels).float().mean() * 100),
        confidence_quantiles=[round(float(q), 4) for q in np.quantile(confidence, QUANTILES)],
        p_label_quantiles=[round(float(q), 4) for q in np.quantile(p_label, QUANTILES)],
        share_confidence_ge_0_9=float((confidence >= 0.9).mean()),
    )
    if difficulty is not None:
        report['spearman_confidence_difficulty'] = float(spearmanr(confidence, difficulty)[0])
    return report


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--splits', nargs='+', default=['train', 'val'])
    parser.add_argument('--data-config', help='config whose dataloaders give the splits')
    args = parser.parse_args()

    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint

    import rlkd_mm  # noqa: F401
    from rlkd_mm.registry import DATASETS, MODELS

    cfg = Config.fromfile(args.config)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    model = MODELS.build(cfg.model)
    with contextlib.redirect_stdout(sys.stderr):  # keep stdout one JSON object
        load_checkpoint(model, args.checkpoint, map_location='cpu', revise_keys=[])
    data_cfg = Config.fromfile(args.data_config) if args.data_config else cfg
    model.eval()
    out = {}
    for split in args.splits:
        loader = data_cfg.get(f'{"train" if split == "train" else "val"}_dataloader')
        dataset_cfg = dict(loader.dataset, split=split, pipeline=[dict(type='PackInputs')])
        dataset = DATASETS.build(dataset_cfg)
        items = [dataset[i] for i in range(len(dataset))]
        labels = torch.tensor([int(item['data_samples'].gt_label) for item in items])
        probs = []
        with torch.no_grad():
            for start in range(0, len(items), 256):
                chunk = items[start : start + 256]
                data = model.data_preprocessor(
                    dict(inputs=[c['inputs'] for c in chunk], data_samples=None), False
                )
                probs.append(model(data['inputs'], mode='tensor').softmax(dim=1))
        info = [dataset.get_data_info(i) for i in range(len(dataset))]
        difficulty = np.array([i['difficulty'] for i in info]) if 'difficulty' in info[0] else None
        out[split] = confidence_report(torch.cat(probs), labels, difficulty)
    print(json.dumps(out, indent=1))


if __name__ == '__main__':
    main()
