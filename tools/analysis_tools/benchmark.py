"""Speed of levit_mm beside mmpretrain's, timm's and Hugging Face's LeViT, like for like.

    python tools/analysis_tools/benchmark.py --archs 128s 256 --plot-archs 128 192 384 \
        --results                                               # the CPU tables + picture
    python tools/analysis_tools/benchmark.py --archs 128s --paths eager 'ort fp32' --quick
    python tools/analysis_tools/benchmark.py --train            # + training-step table
    python tools/analysis_tools/benchmark.py --device cuda      # the paper's GPU protocol

CPU (default), the paper's protocol: one thread, batch 16, 224x224, images/s; and batch-1
latency with two threads.  Every path is built the same way for every model
(:mod:`levit_tools.bench.runs`: eager, compiled, bf16, onnxruntime fp32 / int8 dynamic /
int8 static (stock QDQ and levit_mm's pass), OpenVINO fp32), and all of an arch's runs are
timed interleaved in one process, so a busy machine slows every one alike.  The summary
gives each path's ratio to the best peer on that path and levit_mm's fastest path against
the peers' fastest.  With ``--results`` the tables go to ``docs/results/speed_cpu.md``
(command, commit, date, CPU model and flags, versions at the top) and the top-1 vs
images/s picture to the PNG beside it.

GPU (``--device cuda``): AMP, batch up to 1024, interleaved CUDA timing, batch-1 latency and
the training-step table (:mod:`levit_tools.bench.gpu`); without a GPU it stops with one line.
"""
import argparse
import os
import os.path as osp
import sys
import tempfile
import time
import warnings

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402

from levit_mm.arch import ARCH_SETTINGS, PUBLISHED_ARCHS  # noqa: E402
from levit_mm.deploy import native_bf16  # noqa: E402
from levit_mm.deploy.precision import cpu_has_vnni  # noqa: E402
from levit_tools.bench import cpu, gpu, peaks, training  # noqa: E402
from levit_tools.bench.runs import MODELS, PATHS  # noqa: E402

#: the paths that are a model's fastest on a CPU without native bf16 (eager, bf16 and
#: onnxruntime's stock QDQ int8 never are: see the full tables)
PLOT_PATHS = ('compiled', 'ort fp32', 'ort int8 dynamic', 'ort int8 static levit_mm',
              'openvino fp32')
from levit_tools.cli import run_cli  # noqa: E402
from levit_tools.results import add_results_arg, report  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--archs', nargs='+', default=list(PUBLISHED_ARCHS),
                        choices=list(ARCH_SETTINGS))
    parser.add_argument('--models', nargs='+', default=list(MODELS), choices=list(MODELS))
    parser.add_argument('--paths', nargs='+', default=list(PATHS), choices=list(PATHS))
    parser.add_argument('--plot-archs', nargs='+', default=[], choices=list(ARCH_SETTINGS),
                        help='more archs for the top-1 vs images/s picture only: each '
                        'model on the paths that can be its fastest (--plot-paths), levit_mm '
                        'as its fast graph, no latency table')
    parser.add_argument('--plot-paths', nargs='+', default=list(PLOT_PATHS),
                        choices=list(PATHS))
    parser.add_argument('--iters', type=int, default=10,
                        help='timed rounds (each runs every model and path once)')
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--batch', type=int, default=16)
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--no-latency', action='store_true',
                        help='skip the batch-1, two-thread latency table')
    parser.add_argument('--no-peaks', action='store_true',
                        help='skip the matmul peaks and the ceilings they give')
    parser.add_argument('--quick', action='store_true',
                        help='smoke test: batch 2, 1 warm-up, 1 round, small peak matmul')
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--train', action='store_true',
                        help='CPU: also the training-step table (always on with cuda)')
    parser.add_argument('--train-batch', type=int, default=None,
                        help='training batch (default: 256 on cuda, 16 on cpu)')
    parser.add_argument('--no-compile', action='store_true',
                        help='skip the compiled training steps (compiling takes minutes)')
    add_results_arg(parser, 'speed_cpu')
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.warmup, args.iters = 2, 1, 1
    if args.train_batch is None:
        args.train_batch = 256 if args.device == 'cuda' else (2 if args.quick else 16)
    return args


def run_gpu(args):
    gpu.require_cuda()
    lines = [f'torch {torch.__version__}, {torch.cuda.get_device_name()}', '']
    for arch in args.archs:
        lines += gpu.gpu_lines(arch, gpu.gpu_arch(arch, args), args)
    for arch in args.archs:
        lines += training.training_lines(arch, training.training_arch(arch, args), args)
    report(lines, args.results, 'LeViT speed on the GPU')


def peak_lines(args, results, tmp_dir):
    n = 512 if args.quick else 2048
    fp32_peak = max(peaks.matmul_peak_gflops(n), peaks.matmul_peak_gflops(n))
    int8_peak = peaks.int8_matmul_peak_gops(tmp_dir, n)
    found = {arch: peaks.ceilings(arch, args.size, fp32_peak, int8_peak)
             for arch in results}
    best = {arch: max(r['ips'].values()) for arch, r in results.items() if r['ips']}
    return ['## Ceilings', ''] + peaks.ceiling_lines(found, best, fp32_peak, int8_peak)


def plot_args(args):
    """``args`` for a picture-only arch: its fastest candidates, no latency."""
    return argparse.Namespace(**dict(
        vars(args), paths=args.plot_paths, no_latency=True,
        models=[m for m in args.models if m != 'levit_mm folded']))


def measure_all(args, tmp_dir):
    results = {}
    archs = [(arch, args) for arch in args.archs] + [
        (arch, plot_args(args)) for arch in args.plot_archs if arch not in args.archs]
    for arch, arch_args in archs:
        start = time.time()
        results[arch] = cpu.measure_arch(arch, arch_args, tmp_dir)
        print(f'LeViT-{arch.upper()} measured in {time.time() - start:.0f} s', file=sys.stderr,
              flush=True)
    return results


def load_line(start: float) -> str:
    """The machine's load, so a reader can tell a shared machine's figures (interleaved
    timing slows every candidate alike, but absolute images/s drop)."""
    return (f'Load average (1 min) {start:.1f} at the start, {os.getloadavg()[0]:.1f} at the '
            f'end, on {os.cpu_count()} logical CPUs.')


def run_cpu(args):
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp_dir:
        results = measure_all(args, tmp_dir)
        lines = [load_line(load), '', f'Protocol: 224x224 random-weight models, BN fused everywhere; throughput at '
                 f'batch {args.batch} on 1 thread, latency at batch 1 on 2 threads. CPU '
                 f'capability {torch.backends.cpu.get_cpu_capability()}, native bf16: '
                 f'{native_bf16()}, int8 dot products (VNNI/AMX): {cpu_has_vnni()}.', '',
                 '## Summary', ''] + cpu.summary_lines(results) + ['']
        for arch, result in results.items():
            if arch not in args.archs:
                lines += [f'(LeViT-{arch.upper()}: for the picture only, the paths that can be '
                          'a model\'s fastest, no latency.)', '']
            lines += cpu.arch_lines(arch, result, args.iters)
        if not args.no_peaks:
            lines += peak_lines(args, results, tmp_dir)
    if args.results:  # measured tables written; the picture beside them
        from levit_tools.bench.plot import plot_top1_vs_speed
        png = osp.splitext(args.results)[0] + '.png'
        plot_top1_vs_speed(results, png, 'LeViT: published top-1 vs images/s measured '
                           f'here (batch {args.batch}, 1 thread, fastest path each)')
        lines += ['', f'![top-1 vs images/s]({osp.basename(png)})']
    report(lines, args.results, 'LeViT speed on the CPU, like for like')
    if args.train:
        report(sum((training.training_lines(arch, training.training_arch(arch, args), args)
                    for arch in args.archs), []), None, 'Training step (CPU)')
    return results


def main(argv=None):
    args = parse_args(argv)
    warnings.filterwarnings('ignore')
    from mmengine.registry import init_default_scope
    init_default_scope('mmpretrain')
    return run_gpu(args) if args.device == 'cuda' else run_cpu(args)


if __name__ == '__main__':
    run_cli(main)
