"""Make the digit-scenes detection / segmentation dataset, offline.

    python tools/dataset_converters/make_digit_scenes.py --out data/digit_scenes

Real handwritten digits (scikit-learn's 1,797 8x8 scans) scaled to 48-112 px and pasted as
ink onto crops of real photographs shipped in installed packages, 1-3 per 256x256 image,
some cut by the border.  Writes COCO boxes + instance masks (ten classes,
``annotations/instances_{train,val}.json``, and one class 'digit',
``instances_{train,val}_agnostic.json``, for mmdet) and label maps (``seg/``, for mmseg)
for the same images.  Validation scenes use only scans that no training scene uses
(split per class by ``--seed``, as ``tools/digits_demo.py`` splits its classifier data).
A folder made with the same options is reused.
"""
import argparse
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from levit_tools.digit_scenes import (  # noqa: E402
    DEFAULT_CANVASES, DEFAULT_DIGIT_PX, DEFAULT_DIGITS, write_dataset)
from levit_tools.cli import check_output_dir, run_cli  # noqa: E402


def canvas(text: str):
    try:
        h, w = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not HEIGHTxWIDTH (e.g. 384x640)')
    if h < 32 or w < 32:
        raise argparse.ArgumentTypeError(f'canvas {text} is too small')
    return (h, w)


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'{value} is not a positive count')
    return value


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='data/digit_scenes', help='dataset folder')
    parser.add_argument('--train', type=positive, default=600, help='training images')
    parser.add_argument('--val', type=positive, default=150, help='validation images')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--canvas', type=canvas, nargs='+', default=list(DEFAULT_CANVASES),
                        help='canvas sizes HxW, used in turn (default 256x256; one size '
                        'batches without padding)')
    parser.add_argument('--digit-px', type=positive, nargs=2, default=DEFAULT_DIGIT_PX,
                        metavar=('MIN', 'MAX'), help='digit height range in pixels')
    parser.add_argument('--digits', type=positive, nargs=2, default=DEFAULT_DIGITS,
                        metavar=('MIN', 'MAX'), help='digits per image')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    check_output_dir(args.out)
    for name, (low, high) in (('--digit-px', args.digit_px), ('--digits', args.digits)):
        if low > high:
            raise ValueError(f'{name} {low} {high}: the minimum exceeds the maximum.')
    start = time.time()
    meta = write_dataset(args.out, args.train, args.val, args.seed, args.canvas,
                         tuple(args.digit_px), tuple(args.digits))
    for split, info in meta['splits'].items():
        print(f'{split}: {info["images"]} images, {info["instances"]} digits from '
              f'{len(info["scans"])} scans')
    print(f'photos: {len(meta["params"]["photos"])}; written to {args.out} '
          f'({time.time() - start:.0f} s)')
    return meta


if __name__ == '__main__':
    run_cli(main)
