"""Peak memory of one LeViT training step, with and without gradient checkpointing.

    python tools/analysis_tools/benchmark_memory.py                     # LeViT-128S, CPU
    python tools/analysis_tools/benchmark_memory.py --arch 256 --cases dense
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
import resource
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CASES = {'cls': (64, (224, 224)), 'dense': (1, (800, 1333))}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--arch', default='128s', help='LeViT arch (default: 128s)')
    parser.add_argument('--cases', nargs='+', default=list(CASES), choices=list(CASES))
    parser.add_argument('--batch', type=int, help='override the case\'s batch size')
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--threads', type=int, default=2, help='torch CPU threads')
    parser.add_argument('--child', nargs=2, metavar=('CASE', 'WITH_CP'),
                        help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def training_step(arch: str, case: str, batch: int, with_cp: bool, device: str,
                  threads: int) -> dict:
    """Runs in the child: build, one training step, report the peak's growth."""
    sys.path.insert(0, REPO)
    import torch
    from mmengine.registry import init_default_scope

    import levit_mm
    from levit_mm.support.models import build_classifier
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


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        case, with_cp = args.child[0], args.child[1] == '1'
        batch = args.batch or CASES[case][0]
        print(json.dumps(training_step(args.arch, case, batch, with_cp, args.device,
                                       args.threads)))
        return
    if args.device == 'cuda':
        import torch
        if not torch.cuda.is_available():
            print('GPU: not measured (no CUDA device on this machine).')
            return
    rows = []
    for case in args.cases:
        batch = args.batch or CASES[case][0]
        results = {}
        for with_cp in (False, True):
            cmd = [sys.executable, osp.abspath(__file__), '--arch', args.arch, '--device',
                   args.device, '--threads', str(args.threads), '--batch', str(batch),
                   '--child', case, str(int(with_cp))]
            run = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
            if run.returncode:
                sys.exit(f'{case} step (with_cp={with_cp}) failed:\n{run.stderr[-2000:]}')
            results[with_cp] = json.loads(run.stdout.strip().splitlines()[-1])
        rows.append((case, batch, results))

    what = 'peak RSS growth' if args.device == 'cpu' else 'peak allocated growth'
    print(f'LeViT-{args.arch.upper()}, one training step (forward + loss + backward) on '
          f'{args.device}, {args.threads} threads; {what} in MB, each run in its own process')
    header = ('case', 'input', 'plain (MB)', 'with_cp (MB)', 'saved', 'plain (s)',
              'with_cp (s)')
    print('| ' + ' | '.join(header) + ' |')
    print('|' + '---|' * len(header))
    for case, batch, r in rows:
        h, w = CASES[case][1]
        plain, cp = r[False], r[True]
        saved = 1 - cp['peak_mb'] / plain['peak_mb'] if plain['peak_mb'] > 0 else 0
        print(f'| {case} | {batch}x3x{h}x{w} | {plain["peak_mb"]:.0f} | {cp["peak_mb"]:.0f} '
              f'| {100 * saved:.0f}% | {plain["seconds"]:.2f} | {cp["seconds"]:.2f} |')


if __name__ == '__main__':
    main()
