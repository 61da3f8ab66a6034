"""Forward time and peak memory of a LeViT backbone at detection/segmentation sizes.

Each size runs in a fresh subprocess, so its peak resident memory (``ru_maxrss``) is its own:
the figure printed is the growth of the peak during the forward passes over the memory held
once the model and the input exist.  Python's tracemalloc cannot see torch's allocations.

    python tools/analysis_tools/benchmark_dense.py                       # LeViT-256
    python tools/analysis_tools/benchmark_dense.py --arch 128s --sizes 512x512 800x1333
    python tools/analysis_tools/benchmark_dense.py --train --batch 2     # a training step

Each size is measured twice: with attention chunked over query rows where the score maps
would be large (the default, ``levit_mm.backbones.layers.ATTENTION_CHUNK_PAIRS``) and with
every map whole (``--no-compare`` skips the second).
"""
import argparse
import json
import math
import os.path as osp
import statistics
import sys
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)  # this checkout's levit_mm and levit_tools

from levit_tools.cli import run_cli  # noqa: E402
from levit_tools.measure import markdown_table, max_rss_mb, run_child  # noqa: E402
from levit_tools.results import add_results_arg, report  # noqa: E402


def parse_size(text: str):
    try:
        height, width = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'a size is HEIGHTxWIDTH, e.g. 800x1333; got {text!r}')
    return height, width


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--arch', default='256', help='LeViT arch (default: 256)')
    parser.add_argument('--sizes', nargs='+', type=parse_size,
                        default=[(512, 512), (800, 1333)], help='HEIGHTxWIDTH ...')
    parser.add_argument('--repeats', type=int, default=3, help='timed forwards per size')
    parser.add_argument('--threads', type=int, default=2, help='torch threads')
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--train', action='store_true',
                        help='a training step (forward + backward) instead of inference')
    parser.add_argument('--no-compare', action='store_true',
                        help='skip the run with whole (unchunked) attention maps')
    add_results_arg(parser, 'dense_cost')
    parser.add_argument('--child', type=parse_size, help=argparse.SUPPRESS)
    parser.add_argument('--whole', action='store_true', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def measure(arch: str, size, repeats: int, threads: int, batch: int = 1,
            train: bool = False, whole: bool = False) -> dict:
    """Runs in the child: all three stages returned; eval under no_grad, or a training
    step (forward, backward of the outputs' sum)."""
    import torch

    import levit_mm
    import levit_mm.backbones.layers as layers
    if whole:
        layers.ATTENTION_CHUNK_PAIRS = float('inf')
    torch.set_num_threads(threads)
    model = levit_mm.LeViT(arch, out_indices=(0, 1, 2)).train(train)
    x = torch.randn(batch, 3, *size)
    base = max_rss_mb()
    times, cpu_times = [], []
    with torch.set_grad_enabled(train):
        for _ in range(repeats + 1):
            start, cpu_start = time.perf_counter(), time.process_time()
            outs = model(x)
            if train:
                sum(o.float().sum() for o in outs).backward()
                model.zero_grad(set_to_none=True)
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
    return dict(first=times[0], median=statistics.median(times[1:]),
                cpu_median=statistics.median(cpu_times[1:]),
                peak_mb=max_rss_mb() - base, base_mb=base,
                grids=[tuple(o.shape[2:]) for o in outs])


def attention_cost(arch: str, size):
    """Tokens of the first stage and the bytes of one fp32 attention map there."""
    from levit_mm.arch import resolve_arch
    spec = resolve_arch(arch)
    stride = spec['stem_stride']
    tokens = math.ceil(size[0] / stride) * math.ceil(size[1] / stride)
    heads = spec['num_heads'][0]
    return tokens, heads * tokens**2 * 4 / 1e6


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.arch, args.child, args.repeats, args.threads,
                                 args.batch, args.train, args.whole)))
        return
    rows = []
    for size in args.sizes:
        for whole in ([False] if args.no_compare else [False, True]):
            cmd = [sys.executable, osp.abspath(__file__), '--arch', args.arch, '--child',
                   f'{size[0]}x{size[1]}', '--repeats', str(args.repeats), '--threads',
                   str(args.threads), '--batch', str(args.batch)]
            cmd += ['--train'] * args.train + ['--whole'] * whole
            result = run_child(cmd, f'the run at {size[0]}x{size[1]}', REPO)
            rows.append((size, whole, result, *attention_cost(args.arch, size)))

    what = 'training step (forward + backward)' if args.train else 'eval, no_grad'
    title = (f'LeViT-{args.arch.upper()} backbone, batch {args.batch}, {what}, {args.threads} '
             f'threads, {args.repeats} timed runs after a first one')
    header = ('input', 'attention', 'stage grids', 'stage-0 tokens', 'attn map/block (MB)',
              'first (s)', 'median (s)', 'median CPU (s)', 'peak RSS growth (MB)')
    table = []
    for size, whole, r, tokens, attn_mb in rows:
        grids = ', '.join(f'{h}x{w}' for h, w in r['grids'])
        table.append((f'{size[0]}x{size[1]}', 'whole maps' if whole else 'chunked', grids,
                      tokens, f'{attn_mb * args.batch:.0f}', f'{r["first"]:.2f}',
                      f'{r["median"]:.2f}', f'{r["cpu_median"]:.2f}', f'{r["peak_mb"]:.0f}'))
    notes = ['', 'Wall times are per run; CPU time sums all threads (less sensitive to other '
             'load on a shared machine). "attn map/block" is one whole fp32 stage-0 map.']
    report(markdown_table(header, table) + notes, args.results, title)


if __name__ == '__main__':
    run_cli(main)
