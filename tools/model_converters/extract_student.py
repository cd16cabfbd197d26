"""Write a student-only checkpoint from a distiller checkpoint.

The output holds ``state_dict`` (the ``student.`` weights without the prefix) and ``meta``, so
stock ``mmdet`` / ``mmpretrain`` ``tools/test.py`` and ``init_model`` load it with the student's
own config.

Usage: python tools/model_converters/extract_student.py IN.pth OUT.pth
"""

import argparse
import os
import os.path as osp

import torch

import rlkd_mm  # noqa: F401  (checkpoint allowlist for torch.load's weights_only default)


def extract_student(src: str, dst: str) -> dict:
    if not osp.isfile(src):
        raise FileNotFoundError(f'checkpoint not found: {src}')
    ckpt = torch.load(src, map_location='cpu')
    state_dict = ckpt.get('state_dict', ckpt)
    student = {k[len('student.') :]: v for k, v in state_dict.items() if k.startswith('student.')}
    if not student:
        raise KeyError(f'{src} has no `student.` weights: is it a distiller checkpoint?')
    meta = dict(ckpt.get('meta', {}))
    meta['extracted_from'] = osp.basename(src)
    out = dict(state_dict=student, meta=meta)
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    torch.save(out, dst)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='distiller checkpoint')
    parser.add_argument('dst', help='output student checkpoint')
    args = parser.parse_args()
    out = extract_student(args.src, args.dst)
    print(f'wrote {len(out["state_dict"])} student tensors to {args.dst}')


if __name__ == '__main__':
    main()
