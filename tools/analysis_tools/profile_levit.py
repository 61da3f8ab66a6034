"""Where a deployed LeViT spends its CPU time: torch.profiler's top operators.

    python tools/analysis_tools/profile_levit.py --arch 128s [--batch 16] [--threads 1]
        [--int8] [--top 15]

Prints the operators sorted by self CPU time (grouped by input shape with ``--shapes``),
so the limits reported by the benchmark can be traced to GEMMs, convolutions, softmax or
memory-bound copies.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

import levit_mm  # noqa: E402,F401
from levit_mm.arch import ARCH_SETTINGS  # noqa: E402
from levit_mm.deploy import LogitsWrapper, quantize_int8, switch_to_deploy  # noqa: E402
from levit_tools.cli import run_cli  # noqa: E402
from levit_tools.models import build_classifier  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--arch', default='128s', choices=list(ARCH_SETTINGS))
    parser.add_argument('--batch', type=int, default=16)
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--iters', type=int, default=3)
    parser.add_argument('--int8', action='store_true', help='profile the int8 path')
    parser.add_argument('--shapes', action='store_true', help='group by input shape')
    parser.add_argument('--top', type=int, default=15)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    model = switch_to_deploy(LogitsWrapper(build_classifier(args.arch)).eval())
    if args.int8:
        model = quantize_int8(model)
    x = torch.randn(args.batch, 3, args.size, args.size)
    with torch.inference_mode():
        model(x)
        with profile(activities=[ProfilerActivity.CPU], record_shapes=args.shapes) as prof:
            for _ in range(args.iters):
                model(x)
    table = prof.key_averages(group_by_input_shape=args.shapes).table(
        sort_by='self_cpu_time_total', row_limit=args.top, max_name_column_width=36)
    print(table)


if __name__ == '__main__':
    run_cli(main)
