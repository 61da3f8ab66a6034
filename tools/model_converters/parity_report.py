"""Max |logit diff| of levit_mm against timm (``levit_*`` and ``levit_conv_*``), Hugging Face
and mmpretrain 1.2.0, each figure beside the bound the test suite asserts for it.

    python tools/model_converters/parity_report.py --results   # docs/results/parity.md

fp32, random weights with random BN statistics and attention biases, one image, every
model built for the input size (224 and ``--other-size``).  The five published variants
against every reference; timm's larger archs against timm, the only one that has them.
The bounds are ``levit_tools/parity.py``'s, the ones the tests read.  Exit status 1 when a
figure exceeds its bound.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from levit_tools.cli import run_cli  # noqa: E402
from levit_tools.parity import REFERENCES, cell, measure  # noqa: E402
from levit_tools.results import add_results_arg, report  # noqa: E402

PUBLISHED = ['128s', '128', '192', '256', '384']
LARGER = ['384_s8', '512_s8', '512', '256d', '512d']
TIMM_ONLY = ['timm levit_*', 'timm levit_conv_*']


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--other-size', type=int, default=160,
                        help='the second input size (a multiple of 16)')
    parser.add_argument('--archs', nargs='+', default=PUBLISHED + LARGER,
                        choices=PUBLISHED + LARGER, metavar='ARCH')
    parser.add_argument('--threads', type=int, default=1, help='torch threads')
    add_results_arg(parser, 'parity')
    args = parser.parse_args(argv)
    if args.other_size % 16 or args.other_size < 64:
        parser.error(f'--other-size {args.other_size}: use a multiple of 16, at least 64')
    return args


def main(argv=None):
    import torch
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    names = list(REFERENCES)
    lines = ['Max |logit diff| (fp32, random weights and BN statistics, one image) of levit_mm '
             'loaded from each reference\'s state dict through the converter, beside the bound '
             'the tests assert (`levit_tools/parity.py`). `levit_conv_*` loads into the conv '
             'form, the others into the linear form. "-": the reference has no such model.',
             '', '| variant | size | ' + ' | '.join(names) + ' |',
             '|---|---|' + '---|' * len(names)]
    over = 0
    for arch in args.archs:
        for size in (224, args.other_size):
            cells = []
            for name in names:
                if arch in LARGER and name not in TIMM_ONLY:
                    cells.append('-')
                    continue
                diff, bound = measure(name, arch, size)
                over += diff > bound
                cells.append(cell(diff, bound))
            lines.append(f'| LeViT-{arch.upper()} | {size} | ' + ' | '.join(cells) + ' |')
            print(lines[-1], flush=True)
    lines += ['', f'{"All figures within their bounds." if not over else f"{over} over bound."}']
    report(lines, args.results, 'Parity of levit_mm with timm, Hugging Face and mmpretrain')
    if over:
        sys.exit(1)


if __name__ == '__main__':
    run_cli(main)
