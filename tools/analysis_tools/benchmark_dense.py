"""Forward time and peak memory of a LeViT backbone at detection/segmentation sizes.

Each size runs in a fresh subprocess, so its peak resident memory (``ru_maxrss``) is its own:
the figure printed is the growth of the peak during the forward passes over the memory held
once the model and the input exist.  Python's tracemalloc cannot see torch's allocations.

    python tools/analysis_tools/benchmark_dense.py                       # LeViT-256
    python tools/analysis_tools/benchmark_dense.py --arch 128s --sizes 512x512 800x1333
"""
import argparse
import json
import math
import os.path as osp
import resource
import statistics
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


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
    parser.add_argument('--child', type=parse_size, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def measure(arch: str, size, repeats: int, threads: int) -> dict:
    """Runs in the child: one image, eval mode, no_grad, all three stages returned."""
    sys.path.insert(0, REPO)
    import torch

    import levit_mm
    torch.set_num_threads(threads)
    model = levit_mm.LeViT(arch, out_indices=(0, 1, 2)).eval()
    x = torch.randn(1, 3, *size)
    base = max_rss_mb()
    times, cpu_times = [], []
    with torch.no_grad():
        for _ in range(repeats + 1):
            start, cpu_start = time.perf_counter(), time.process_time()
            outs = model(x)
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


def main():
    args = parse_args()
    if args.child:
        print(json.dumps(measure(args.arch, args.child, args.repeats, args.threads)))
        return
    sys.path.insert(0, REPO)
    rows = []
    for size in args.sizes:
        cmd = [sys.executable, osp.abspath(__file__), '--arch', args.arch, '--child',
               f'{size[0]}x{size[1]}', '--repeats', str(args.repeats), '--threads',
               str(args.threads)]
        run = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
        if run.returncode:
            sys.exit(f'benchmark at {size[0]}x{size[1]} failed:\n{run.stderr[-2000:]}')
        result = json.loads(run.stdout.strip().splitlines()[-1])
        rows.append((size, result, *attention_cost(args.arch, size)))

    print(f'LeViT-{args.arch} backbone, batch 1, eval, no_grad, {args.threads} threads, '
          f'{args.repeats} timed forwards after a first (bias-building) one')
    header = ('input', 'stage grids', 'stage-0 tokens', 'attn map/block (MB)',
              'first (s)', 'median (s)', 'median CPU (s)', 'peak RSS growth (MB)')
    print('| ' + ' | '.join(header) + ' |')
    print('|' + '---|' * len(header))
    for size, r, tokens, attn_mb in rows:
        grids = ', '.join(f'{h}x{w}' for h, w in r['grids'])
        print(f'| {size[0]}x{size[1]} | {grids} | {tokens} | {attn_mb:.0f} | '
              f'{r["first"]:.2f} | {r["median"]:.2f} | {r["cpu_median"]:.2f} | '
              f'{r["peak_mb"]:.0f} |')
    print('Wall times are per forward; CPU time sums all threads (less sensitive to other '
          'load on a shared machine).')


if __name__ == '__main__':
    main()
