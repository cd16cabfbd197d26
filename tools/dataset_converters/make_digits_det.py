"""Write the DigitsDet detection set (real UCI digits on canvases, COCO format).

Example::

    python tools/dataset_converters/make_digits_det.py --out data/digits_det
"""

import argparse

from rlkd_mm.datasets import make_digits_det


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description='Generate DigitsDet: 1..N real UCI digits per image, COCO annotations.'
    )
    parser.add_argument('--out', default='data/digits_det', help='output folder')
    parser.add_argument('--seed', type=int, default=0, help='seed of the canvases')
    parser.add_argument('--num-train', type=int, default=1500, help='train images')
    parser.add_argument('--num-val', type=int, default=300, help='val images')
    parser.add_argument('--num-test', type=int, default=300, help='test images')
    parser.add_argument('--img-size', type=int, default=96, help='side of the square images')
    parser.add_argument('--max-digits', type=int, default=4, help='most digits per image')
    parser.add_argument(
        '--min-digit-size', type=int, default=16, help='smallest longer side of a digit (px)'
    )
    parser.add_argument(
        '--max-digit-size', type=int, default=38, help='largest longer side of a digit (px)'
    )
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='replace train/, val/, test/ and annotations/ of a non-empty --out',
    )
    return parser


def main(argv=None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        paths = make_digits_det(
            args.out,
            num_train=args.num_train,
            num_val=args.num_val,
            num_test=args.num_test,
            img_size=args.img_size,
            max_digits=args.max_digits,
            min_digit_size=args.min_digit_size,
            max_digit_size=args.max_digit_size,
            seed=args.seed,
            overwrite=args.overwrite,
        )
    except (FileExistsError, NotADirectoryError, ValueError) as err:
        # A refused folder or a bad size is a usage error, not a crash: no traceback.
        parser.error(str(err))
    for split, path in paths.items():
        print(f'{split}: {path}')


if __name__ == '__main__':
    main()
