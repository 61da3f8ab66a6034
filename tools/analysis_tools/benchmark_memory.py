"""Peak memory of one LeViT training step, with and without gradient checkpointing.

    python tools/analysis_tools/benchmark_memory.py                     # LeViT-128S, CPU
    python tools/analysis_tools/benchmark_memory.py --archs 128s 256 --results  # README figures
    python tools/analysis_tools/benchmark_memory.py --device cuda       # where a GPU exists

Cases (each a forward, a loss and a backward in training mode):

* ``cls``: the classifier (backbone, pooling, both heads, label loss), batch 64, 224x224;
* ``dense``: the backbone alone returning all three stages (as under an FPN), batch 1,
  800x1333, a sum of the outputs' mean squares as loss.

Each (case, ``with_cp``) pair runs in a fresh subprocess, so every peak is its own.  On the
CPU the figure is the growth of the peak resident memory (``ru_maxrss``) over the memory
held once the model and the input exist; on a GPU, the growth of
``torch.cuda.max_memory_allocated`` over the same point.
"""
import argparse
import json
import os.path as osp
import sys
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)  # this checkout's levit_mm and levit_tools

from levit_tools.cli import run_cli  # noqa: E402
from levit_tools.measure import markdown_table, max_rss_mb, run_child  # noqa: E402
from levit_tools.results import add_results_arg, report  # noqa: E402
CASES = {'cls': (64, (224, 224)), 'dense': (1, (800, 1333))}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--archs', nargs='+', default=['128s'],
                        help='LeViT archs (default: 128s)')
    parser.add_argument('--cases', nargs='+', default=list(CASES), choices=list(CASES))
    parser.add_argument('--batch', type=int, help='override the case\'s batch size')
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--threads', type=int, default=2, help='torch CPU threads')
    add_results_arg(parser, 'memory')
    parser.add_argument('--child', nargs=2, metavar=('CASE', 'WITH_CP'),
                        help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def training_step(arch: str, case: str, batch: int, with_cp: bool, device: str,
                  threads: int) -> dict:
    """Runs in the child: build, one training step, report the peak's growth."""
    import torch
    from mmengine.registry import init_default_scope

    import levit_mm
    from levit_tools.models import build_classifier
    torch.set_num_threads(threads)
    init_default_scope('mmpretrain')
    size = CASES[case][1]
    torch.manual_seed(0)
    if case == 'cls':
        from mmpretrain.structures import DataSample
        model = build_classifier(arch, with_cp=with_cp).to(device).train()
        samples = [DataSample().set_gt_label(i % 1000) for i in range(batch)]

        def loss_fn(x):
            return sum(model.loss(x, samples).values())
    else:
        model = levit_mm.LeViT(arch, out_indices=(0, 1, 2), with_cp=with_cp)
        model = model.to(device).train()

        def loss_fn(x):
            return sum(o.square().mean() for o in model(x))
    x = torch.randn(batch, 3, *size, device=device)
    if device == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.max_memory_allocated() / 2**20
    else:
        base = max_rss_mb()
    start = time.perf_counter()
    loss_fn(x).backward()
    if device == 'cuda':
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = max_rss_mb()
    return dict(seconds=time.perf_counter() - start, peak_mb=peak - base, base_mb=base)


def measure_pair(arch: str, case: str, batch: int, args) -> tuple:
    """``(plain, with_cp)`` figures of one case, each from its own child process."""
    return tuple(run_child([sys.executable, osp.abspath(__file__), '--archs', arch,
                            '--device', args.device, '--threads', str(args.threads),
                            '--batch', str(batch), '--child', case, str(int(with_cp))],
                           f'{arch} {case} step (with_cp={with_cp})', REPO)
                 for with_cp in (False, True))


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        case, with_cp = args.child[0], args.child[1] == '1'
        batch = args.batch or CASES[case][0]
        print(json.dumps(training_step(args.archs[0], case, batch, with_cp, args.device,
                                       args.threads)))
        return
    if args.device == 'cuda':
        import torch
        if not torch.cuda.is_available():
            print('GPU: not measured (no CUDA device on this machine).')
            return
    rows = [(arch, case, batch, measure_pair(arch, case, batch, args))
            for arch in args.archs for case in args.cases
            for batch in [args.batch or CASES[case][0]]]
    what = 'peak RSS growth' if args.device == 'cpu' else 'peak allocated growth'
    title = (f'One LeViT training step (forward + loss + backward) on {args.device}, '
             f'{args.threads} threads; {what} in MB, each run in its own process')
    header = ('arch', 'case', 'input', 'plain (MB)', 'with_cp (MB)', 'saved', 'plain (s)',
              'with_cp (s)')
    table = []
    for arch, case, batch, (plain, cp) in rows:
        h, w = CASES[case][1]
        saved = 1 - cp['peak_mb'] / plain['peak_mb'] if plain['peak_mb'] > 0 else 0
        table.append((arch.upper(), case, f'{batch}x3x{h}x{w}', f'{plain["peak_mb"]:.0f}',
                      f'{cp["peak_mb"]:.0f}', f'{100 * saved:.0f}%',
                      f'{plain["seconds"]:.2f}', f'{cp["seconds"]:.2f}'))
    report(markdown_table(header, table), args.results, title)

if __name__ == '__main__':
    run_cli(main)
