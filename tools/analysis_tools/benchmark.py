"""Speed of levit_mm beside mmpretrain's, timm's and Hugging Face's LeViT, CPU or GPU.

    python tools/analysis_tools/benchmark.py [--archs 128s 256] [--iters 10] [--quick]
    python tools/analysis_tools/benchmark.py --train            # + training-step table
    python tools/analysis_tools/benchmark.py --device cuda      # the paper's GPU protocol

CPU (default), the paper's protocol: one thread, batch 16, 224x224, warm-up, then
images/s; plus batch-1 latency with two threads.  With ``--train``, a training-step table:
aten ops dispatched per step (a hardware-independent measure of launch overhead) and step
time, levit_mm vs timm, eager and compiled.

GPU (``--device cuda``): AMP, batch 1024 (or the largest power of two that fits),
224x224, all archs in one process, interleaved CUDA timing: levit_mm deploy (fp16
autocast), fp16 weights, compiled, CUDA graphs vs mmpretrain, timm (eager and compiled)
and Hugging Face; batch-1 latency; and the training-step table (bf16 autocast, batch 256:
img/s and peak memory, levit_mm vs timm, eager and compiled).  Without a GPU it says so in
one line and exits with status 2.  Everything runs in one process, and the timed runs of all
models are *interleaved* (one batch of each model per round, the best round kept), so a
busy machine slows every model alike and the ratios stay meaningful.

Models (random weights: speed does not depend on values):

* levit_mm fp32 deploy (BN folded, heads merged), the same compiled
  (:func:`levit_mm.deploy.compile_for_inference`, Inductor with frozen weights), bf16
  autocast, int8 (dynamic quantisation of the Linears), onnxruntime fp32, int8 dynamic and
  int8 static (:mod:`levit_mm.deploy.static_int8`, calibrated on the sample photos) (static
  224 export with constant attention biases, all graph optimisations); the conv form
  (LeViT-C, same weights as 1x1 convolutions) fp32 eager and compiled, and which form
  :func:`levit_mm.deploy.use_fastest_form` would pick (the faster fp32 eager one);
* peers, BN fused where they offer it: mmpretrain (``switch_to_deploy`` on the backbone;
  its head's ``switch_to_deploy`` is called directly, since building it with ``deploy=True``
  fails), timm ``levit_*`` and ``levit_conv_*`` (each ``fuse()``-able module replaced by its
  fused layer), Hugging Face ``LevitForImageClassificationWithTeacher`` (no fusion offered).

Also measured: the one-core fp32 matmul peak (2048^3 sgemm), the one-core int8 matmul
peak (2048^3, the faster of onnxruntime's and PyTorch's dynamic int8 Linear) and, per
model, achieved GFLOP/s = 2 x multiply-adds (``levit_tools.analysis.count_flops``) x images/s.
From the peaks, each arch gets two *ceilings* (:func:`levit_tools.analysis.roofline_images_per_s`):
images/s if every multiply-add ran at the fp32 peak, and if the Linears' ran at the int8
peak and the rest at the fp32 peak.  A ceiling divided by the best peer is the largest
speed-up any implementation could show here.
"""
import argparse
import copy
import os.path as osp
import sys
import tempfile
import warnings
from typing import Callable, Dict, List

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

import levit_mm  # noqa: E402,F401
from levit_mm.arch import ARCH_SETTINGS, PUBLISHED_ARCHS  # noqa: E402
from levit_mm.deploy import (LogitsWrapper, bf16_autocast, compile_for_inference,  # noqa: E402
                             export_onnx, native_bf16, ort_runner, ort_session,
                             quantize_int8, quantize_onnx_int8, switch_to_deploy)
from levit_tools.analysis import count_flops, linear_macs, roofline_images_per_s  # noqa: E402
from levit_tools.benchmarking import gpu_inference_models, training_steps  # noqa: E402
from levit_mm.deploy.timing import time_interleaved  # noqa: E402
from levit_tools.cli import run_cli  # noqa: E402
from levit_tools.measure import num_threads, print_table  # noqa: E402
from levit_tools.models import PEERS, build_classifier  # noqa: E402
from levit_tools.op_count import count_ops  # noqa: E402
from levit_tools.sample_images import agreement, sample_photo_crops  # noqa: E402

LEVIT_MM_PATHS = ('levit_mm fp32', 'levit_mm compiled', 'levit_mm bf16', 'levit_mm int8',
                  'levit_mm ort fp32', 'levit_mm ort int8', 'levit_mm ort int8 static',
                  'levit_mm conv fp32', 'levit_mm conv compiled')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--archs', nargs='+', default=list(PUBLISHED_ARCHS),
                        choices=list(ARCH_SETTINGS))
    parser.add_argument('--iters', type=int, default=10,
                        help='timed rounds (each runs every model once)')
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--batch', type=int, default=16)
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--models', nargs='+', default=list(LEVIT_MM_PATHS) + list(PEERS),
                        choices=list(LEVIT_MM_PATHS) + list(PEERS))
    parser.add_argument('--no-latency', action='store_true',
                        help='skip the batch-1, two-thread latency table')
    parser.add_argument('--quick', action='store_true',
                        help='smoke test: batch 2, 1 warm-up, 1 round, small peak matmul')
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--train', action='store_true',
                        help='CPU: also the training-step table (always on with cuda)')
    parser.add_argument('--train-batch', type=int, default=None,
                        help='training batch (default: 256 on cuda, 16 on cpu)')
    parser.add_argument('--no-compile', action='store_true',
                        help='skip the compiled training steps (compiling takes minutes)')
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.warmup, args.iters = 2, 1, 1
    if args.train_batch is None:
        args.train_batch = 256 if args.device == 'cuda' else (2 if args.quick else 16)
    return args


# ----------------------------------------------------------------------------- models
def build_levit_mm(arch: str) -> nn.Module:
    return LogitsWrapper(build_classifier(arch)).eval()


def build_models(arch: str, names: List[str], tmp_dir: str, batch_threads=(1, 2)):
    """``{name: {threads: callable(x) -> logits}}`` for the requested models."""
    models: Dict[str, Dict[int, Callable]] = {}
    fp32 = switch_to_deploy(build_levit_mm(arch))

    def same(fn):
        return {t: fn for t in batch_threads}

    if 'levit_mm fp32' in names:
        models['levit_mm fp32'] = same(fp32)
    if 'levit_mm compiled' in names:
        models['levit_mm compiled'] = same(compile_for_inference(fp32))
    if any(n.startswith('levit_mm conv') for n in names):
        conv = copy.deepcopy(fp32)
        conv.model.backbone.to_form('conv')
        if 'levit_mm conv fp32' in names:
            models['levit_mm conv fp32'] = same(conv)
        if 'levit_mm conv compiled' in names:
            models['levit_mm conv compiled'] = same(compile_for_inference(conv))
    if 'levit_mm bf16' in names:

        def bf16(x):
            with bf16_autocast():
                return fp32(x)

        models['levit_mm bf16'] = same(bf16)
    if 'levit_mm int8' in names:
        models['levit_mm int8'] = same(quantize_int8(fp32))
    if any(n.startswith('levit_mm ort') for n in names):
        path = osp.join(tmp_dir, f'levit-{arch}.onnx')
        export_onnx(fp32, path, (224, 224), dynamic_hw=False)
        if 'levit_mm ort fp32' in names:
            models['levit_mm ort fp32'] = {
                t: ort_runner(ort_session(path, t)) for t in batch_threads}
        if 'levit_mm ort int8' in names:
            qpath = quantize_onnx_int8(path, osp.join(tmp_dir, f'levit-{arch}-int8.onnx'))
            models['levit_mm ort int8'] = {
                t: ort_runner(ort_session(qpath, t)) for t in batch_threads}
        if 'levit_mm ort int8 static' in names:  # calibrated on the sample photos
            from levit_mm.deploy.static_int8 import quantize_static_int8
            spath = quantize_static_int8(path, osp.join(tmp_dir, f'levit-{arch}-static.onnx'),
                                         [sample_photo_crops(224)])
            models['levit_mm ort int8 static'] = {
                t: ort_runner(ort_session(spath, t)) for t in batch_threads}
    for name, build in PEERS.items():
        if name in names:
            models[name] = same(build(arch))
    return models, fp32


# ----------------------------------------------------------------------------- timing
def matmul_peak_gflops(n: int = 2048, iters: int = 3) -> float:
    """One-thread fp32 sgemm GFLOP/s (2 n^3 flops per product), best of ``iters``."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    with num_threads(1):
        best = time_interleaved({'sgemm': lambda x: x @ b}, a, 1, iters)['sgemm']
    return 2 * n**3 / best / 1e9


def int8_matmul_peak_gops(tmp_dir: str, n: int = 2048, iters: int = 3) -> float:
    """One-thread int8 GOP/s of a dynamically quantised ``n x n x n`` Linear (the int8
    path's GEMM), the faster of onnxruntime and PyTorch."""
    linear = nn.Linear(n, n).eval()
    x = torch.randn(n, n)
    path = osp.join(tmp_dir, f'linear{n}.onnx')
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(linear, (x, ), path, dynamo=False, input_names=['input'])
    runners = {
        'onnxruntime': ort_runner(ort_session(quantize_onnx_int8(
            path, osp.join(tmp_dir, f'linear{n}-int8.onnx')), threads=1)),
        'torch': quantize_int8(nn.Sequential(linear))}
    with num_threads(1):
        best = min(time_interleaved(runners, x, 1, iters).values())
    return 2 * n**3 / best / 1e9


def model_gflops(arch: str, size: int) -> float:
    """GFLOP per image (2 x multiply-adds) of the training-form classifier."""
    macs = count_flops(build_levit_mm(arch), (1, 3, size, size))
    return 2 * macs / 1e9


# ----------------------------------------------------------------------------- report
def run_arch(arch, args, peak, int8_peak, tmp_dir):
    # Each arch's compiled model recompiles the same forward code for three input shapes;
    # forget the previous arch's graphs so Dynamo's per-function recompile limit is not hit.
    torch._dynamo.reset()
    models, fp32 = build_models(arch, args.models, tmp_dir)
    gflop = model_gflops(arch, args.size)
    int8_macs = linear_macs(fp32, (1, 3, args.size, args.size))
    ceilings = dict(fp32=roofline_images_per_s(gflop / 2 * 1e9, 0, peak),
                    int8=roofline_images_per_s(gflop / 2 * 1e9, int8_macs, peak, int8_peak))
    torch.set_num_threads(1)
    x = torch.randn(args.batch, 3, args.size, args.size)
    best = time_interleaved({n: m[1] for n, m in models.items()}, x, args.warmup,
                            args.iters)
    ips = {n: args.batch / t for n, t in best.items()}
    peers = {n: v for n, v in ips.items() if n in PEERS}
    best_peer = max(peers.values()) if peers else None

    # agreement of every levit_mm path with fp32 on the real-photo crops (2 threads)
    torch.set_num_threads(2)
    crops = sample_photo_crops(args.size)
    with torch.inference_mode():
        reference = fp32(crops)
        agree = {n: agreement(reference, models[n][2](crops))
                 for n in models if n.startswith('levit_mm') and n != 'levit_mm fp32'}
    rows = []
    for name, value in sorted(ips.items(), key=lambda kv: -kv[1]):
        achieved = gflop * value
        ratio = f'{value / best_peer:.2f}x' if best_peer else '-'
        a = agree.get(name)
        rows.append([name, f'{value:.1f}', ratio, f'{achieved:.1f}',
                     f'{100 * achieved / peak:.0f}%',
                     f'{a[0]:.2f} / {a[1]:.1e}' if a else ''])
    print_table(f'LeViT-{arch.upper()}: batch {args.batch}, {args.size}x{args.size}, 1 thread, '
                f'{gflop:.3f} GFLOP/img, best of {args.iters} interleaved rounds',
                rows, ['model', 'img/s', 'vs best peer', 'GFLOP/s', '% of peak',
                       'top1 agree / max|dlogit| vs fp32'])
    forms = {f: ips[n] for f, n in (('linear', 'levit_mm fp32'), ('conv', 'levit_mm conv fp32'))
             if n in ips}
    if len(forms) == 2:
        print(f'faster form here (what levit_mm.deploy.use_fastest_form picks for this batch '
              f'and thread count): {max(forms, key=forms.get)} '
              f'(linear {forms["linear"]:.1f} img/s, conv {forms["conv"]:.1f} img/s)')
    if best_peer:
        print('ceilings (every multiply-add at the measured peak): fp32 '
              f'{ceilings["fp32"]:.1f} img/s = {ceilings["fp32"] / best_peer:.2f}x the best '
              f'peer; Linears at the int8 peak, rest fp32: {ceilings["int8"]:.1f} img/s = '
              f'{ceilings["int8"] / best_peer:.2f}x ({100 * int8_macs * 2e-9 / gflop:.0f}% '
              'of the multiply-adds are in Linears)')
    result = dict(ips=ips, best_peer=best_peer, gflop=gflop, ceilings=ceilings)
    if not args.no_latency:
        torch.set_num_threads(2)
        x1 = torch.randn(1, 3, args.size, args.size)
        lat = time_interleaved({n: m[2] for n, m in models.items()}, x1, args.warmup,
                               max(args.iters * 2, 1))
        peer_lat = [v for n, v in lat.items() if n in PEERS]
        best_peer_lat = min(peer_lat) if peer_lat else None
        rows = [[n, f'{1000 * t:.2f}', f'{best_peer_lat / t:.2f}x' if best_peer_lat else '-']
                for n, t in sorted(lat.items(), key=lambda kv: kv[1])]
        print_table(f'LeViT-{arch.upper()}: batch 1 latency, 2 threads', rows,
                    ['model', 'ms', 'speed vs best peer'])
        result['latency'] = lat
    return result


# ----------------------------------------------------------------------------- training
def run_training(args) -> Dict[str, dict]:
    """Training-step table: img/s (and peak memory on a GPU) and aten ops per step."""
    device, cuda = args.device, args.device == 'cuda'
    amp = torch.bfloat16 if cuda else None
    modes = (False, ) if args.no_compile else (False, True)
    results = {}
    for arch in args.archs:
        torch._dynamo.reset()
        x = torch.randn(args.train_batch, 3, args.size, args.size, device=device)
        steps = training_steps(arch, args.train_batch, device, amp, compiled=modes)
        ops = {name: sum(count_ops(lambda s=step: s(x)).values())
               for name, step in steps.items() if name.endswith('eager')}
        best = time_interleaved(steps, x, args.warmup, args.iters, device, inference=False)
        memory = {}
        if cuda:
            for name, step in steps.items():  # alone, so the peak is this step's own
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
                step(x)
                torch.cuda.synchronize()
                memory[name] = torch.cuda.max_memory_allocated() / 2**30
        timm_eager = args.train_batch / best['timm eager']
        timm_compiled = args.train_batch / best['timm compiled'] if 'timm compiled' in best \
            else None
        rows = []
        for name, seconds in sorted(best.items(), key=lambda kv: kv[1]):
            ips = args.train_batch / seconds
            rows.append([name, f'{ips:.1f}', f'{ips / timm_eager:.2f}x',
                         f'{ips / timm_compiled:.2f}x' if timm_compiled else '-',
                         f'{memory[name]:.2f}' if name in memory else '-',
                         str(ops.get(name, ''))])
        print_table(f'LeViT-{arch.upper()} training step: batch {args.train_batch}, '
                    f'{"bf16 autocast" if cuda else "fp32"}, AdamW, drop path 0.1, both heads '
                    f'on labels ({device}; best of {args.iters} interleaved rounds)', rows,
                    ['model', 'img/s', 'vs timm eager', 'vs timm compiled', 'peak GiB',
                     'aten ops/step'])
        results[arch] = dict(ips={n: args.train_batch / t for n, t in best.items()}, ops=ops,
                             memory=memory)
    return results


# ----------------------------------------------------------------------------- GPU
def fitting_batch(fn, size: int, device: str, start: int = 1024) -> int:
    """The largest power of two up to ``start`` that ``fn`` runs without running out of
    memory."""
    batch = start
    while batch > 1:
        try:
            with torch.inference_mode():
                fn(torch.randn(batch, 3, size, size, device=device))
            torch.cuda.synchronize()
            return batch
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            batch //= 2
    return batch


def run_gpu_inference(args) -> Dict[str, dict]:
    results = {}
    for arch in args.archs:
        torch._dynamo.reset()
        models = gpu_inference_models(arch)
        batch = min(fitting_batch(fn, args.size, 'cuda') for fn in models.values())
        x = torch.randn(batch, 3, args.size, args.size, device='cuda')
        best = time_interleaved(models, x, args.warmup, args.iters, 'cuda')
        x1 = torch.randn(1, 3, args.size, args.size, device='cuda')
        latency = time_interleaved(models, x1, args.warmup, max(args.iters * 2, 1), 'cuda')
        ips = {name: batch / t for name, t in best.items()}
        peer_ips = max(v for n, v in ips.items() if not n.startswith('levit_mm'))
        timm_compiled = ips.get('timm compiled fp16')
        peer_latency = min(v for n, v in latency.items() if not n.startswith('levit_mm'))
        rows = [[name, f'{value:.0f}', f'{value / peer_ips:.2f}x',
                 f'{value / timm_compiled:.2f}x' if timm_compiled else '-',
                 f'{1000 * latency[name]:.2f}', f'{peer_latency / latency[name]:.2f}x']
                for name, value in sorted(ips.items(), key=lambda kv: -kv[1])]
        print_table(f'LeViT-{arch.upper()} GPU inference: batch {batch}, {args.size}x'
                    f'{args.size}, fp16 (best of {args.iters} interleaved rounds)', rows,
                    ['model', 'img/s', 'vs best peer', 'vs timm compiled',
                     'batch-1 ms', 'latency vs best peer'])
        results[arch] = dict(ips=ips, latency=latency, batch=batch)
    return results


def main(argv=None):
    args = parse_args(argv)
    warnings.filterwarnings('ignore')
    init_default_scope('mmpretrain')
    if args.device == 'cuda':
        if not torch.cuda.is_available():
            print('error: --device cuda: no CUDA device is available here '
                  '(torch.cuda.is_available() is False); run it on a GPU machine.',
                  file=sys.stderr)
            sys.exit(2)
        print(f'torch {torch.__version__}, {torch.cuda.get_device_name()}')
        run_gpu_inference(args)
        return run_training(args)
    result = run_cpu_inference(args)
    if args.train:
        run_training(args)
    return result


def run_cpu_inference(args):
    peak = matmul_peak_gflops(512 if args.quick else 2048)
    print(f'torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}'
          f', native bf16: {native_bf16()}')
    print(f'one-core fp32 matmul peak: {peak:.1f} GFLOP/s')
    summary = {}
    with tempfile.TemporaryDirectory() as tmp_dir:
        int8_peak = int8_matmul_peak_gops(tmp_dir, 512 if args.quick else 2048)
        print(f'one-core int8 matmul peak: {int8_peak:.1f} GOP/s')
        for arch in args.archs:
            # On a shared machine the peak drifts with the load: re-measure, keep the best.
            peak = max(peak, matmul_peak_gflops(512 if args.quick else 2048))
            summary[arch] = run_arch(arch, args, peak, int8_peak, tmp_dir)
    peak_end = matmul_peak_gflops(512 if args.quick else 2048)
    print(f'\none-core fp32 matmul peak, measured again at the end: {peak_end:.1f} GFLOP/s'
          f' (best seen: {max(peak, peak_end):.1f})')
    rows = []
    for arch, r in summary.items():
        ips, best_peer = r['ips'], r['best_peer']
        ours = {n: v for n, v in ips.items() if n.startswith('levit_mm')}
        if not ours:
            continue
        best_ours = max(ours, key=ours.get)
        fastest_fp32 = max((n for n in ('levit_mm fp32', 'levit_mm compiled',
                                        'levit_mm conv fp32', 'levit_mm conv compiled')
                            if n in ips), key=ips.get, default=None)
        fp = ips.get(fastest_fp32)
        ceil = r['ceilings']
        rows.append([arch, f'{best_peer:.1f}' if best_peer else '-',
                     f'{fp / best_peer:.2f}x' if fp and best_peer else '-',
                     f'{100 * r["gflop"] * fp / max(peak, peak_end):.0f}%' if fp else '-',
                     f'{ceil["fp32"] / best_peer:.2f}x' if best_peer else '-',
                     best_ours,
                     f'{ours[best_ours] / best_peer:.2f}x' if best_peer else '-',
                     f'{ceil["int8"] / best_peer:.2f}x' if best_peer else '-'])
    print_table(f'Summary (batch {args.batch}, 1 thread; fp32 = the fastest of levit_mm fp32 '
                'eager and compiled, either form; ceiling = every multiply-add at the measured '
                'peak)', rows,
                ['arch', 'best peer img/s', 'fp32 vs peer', 'fp32 % of peak',
                 'fp32 ceiling vs peer', 'best levit_mm path', 'best path vs peer',
                 'int8 ceiling vs peer'])
    return summary


if __name__ == '__main__':
    run_cli(main)
