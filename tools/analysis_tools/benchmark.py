"""CPU inference speed of levit_mm beside mmpretrain's, timm's and Hugging Face's LeViT.

    python tools/analysis_tools/benchmark.py [--archs 128s 256] [--iters 10] [--quick]

The paper's protocol: one thread, batch 16, 224x224, warm-up, then images/s; plus batch-1
latency with two threads.  Everything runs in one process, and the timed runs of all
models are *interleaved* (one batch of each model per round, the best round kept), so a
busy machine slows every model alike and the ratios stay meaningful.

Models (random weights: speed does not depend on values):

* levit_mm fp32 deploy (BN folded, heads merged), the same compiled
  (:func:`levit_mm.deploy.compile_for_inference`, Inductor with frozen weights), bf16
  autocast, int8 (dynamic quantisation of the Linears), onnxruntime fp32, int8 dynamic and
  int8 static (:mod:`levit_mm.support.static_int8`, calibrated on the sample photos) (static
  224 export with constant attention biases, all graph optimisations);
* peers, BN fused where they offer it: mmpretrain (``switch_to_deploy`` on the backbone;
  its head's ``switch_to_deploy`` is called directly, since building it with ``deploy=True``
  fails), timm ``levit_*`` and ``levit_conv_*`` (each ``fuse()``-able module replaced by its
  fused layer), Hugging Face ``LevitForImageClassificationWithTeacher`` (no fusion offered).

Also measured: the one-core fp32 matmul peak (2048^3 sgemm), the one-core int8 matmul
peak (2048^3, the faster of onnxruntime's and PyTorch's dynamic int8 Linear) and, per
model, achieved GFLOP/s = 2 x multiply-adds (``levit_mm.analysis.count_flops``) x images/s.
From the peaks, each arch gets two *ceilings* (:func:`levit_mm.analysis.roofline_images_per_s`):
images/s if every multiply-add ran at the fp32 peak, and if the Linears' ran at the int8
peak and the rest at the fp32 peak.  A ceiling divided by the best peer is the largest
speed-up any implementation could show here.
"""
import argparse
import copy
import os
import os.path as osp
import sys
import tempfile
import time
import warnings
from typing import Callable, Dict, List

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

import levit_mm  # noqa: E402,F401
from levit_mm.analysis import count_flops, linear_macs, roofline_images_per_s  # noqa: E402
from levit_mm.backbones.levit import ARCH_SETTINGS  # noqa: E402
from levit_mm.deploy import compile_for_inference, switch_to_deploy  # noqa: E402
from levit_mm.onnx_export import (LogitsWrapper, export_onnx, ort_runner,  # noqa: E402
                                  ort_session, quantize_onnx_int8)
from levit_mm.precision import (bf16_autocast, native_bf16, num_threads,  # noqa: E402
                                quantize_int8)
from levit_mm.sample_images import agreement, sample_photo_crops  # noqa: E402

EMBED_OUT = {name: spec['embed_dims'][-1] for name, spec in ARCH_SETTINGS.items()}
LEVIT_MM_PATHS = ('levit_mm fp32', 'levit_mm compiled', 'levit_mm bf16', 'levit_mm int8',
                  'levit_mm ort fp32', 'levit_mm ort int8', 'levit_mm ort int8 static')
PEERS = ('mmpretrain', 'timm', 'timm conv', 'hf')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--archs', nargs='+', default=list(ARCH_SETTINGS),
                        choices=list(ARCH_SETTINGS))
    parser.add_argument('--iters', type=int, default=10,
                        help='timed rounds (each runs every model once)')
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--batch', type=int, default=16)
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--models', nargs='+', default=list(LEVIT_MM_PATHS + PEERS),
                        choices=list(LEVIT_MM_PATHS + PEERS))
    parser.add_argument('--no-latency', action='store_true',
                        help='skip the batch-1, two-thread latency table')
    parser.add_argument('--quick', action='store_true',
                        help='smoke test: batch 2, 1 warm-up, 1 round, small peak matmul')
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.warmup, args.iters = 2, 1, 1
    return args


# ----------------------------------------------------------------------------- models
def build_levit_mm(arch: str) -> nn.Module:
    from mmpretrain.registry import MODELS
    model = MODELS.build(dict(
        type='LeViTClassifier',
        backbone=dict(type='LeViT', arch=arch, out_indices=(2, )),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LeViTClsHead', num_classes=1000, in_channels=EMBED_OUT[arch])))
    return LogitsWrapper(model).eval()


class MMPretrainLeViT(nn.Module):

    def __init__(self, arch):
        super().__init__()
        from mmpretrain.models.backbones.levit import LeViT
        from mmpretrain.models.heads.levit_head import LeViTClsHead
        self.backbone = LeViT(arch, out_indices=(2, ))
        self.head = LeViTClsHead(num_classes=1000, in_channels=EMBED_OUT[arch])
        self.backbone.eval()  # (its train() returns None, so no chaining)
        self.head.eval()
        self.backbone.switch_to_deploy()
        self.head.switch_to_deploy()  # folds each BN+Linear; the two heads stay apart

    def forward(self, x):
        return self.head((self.backbone(x)[-1].mean(dim=(2, 3)), ))


def fuse_children(module: nn.Module) -> nn.Module:
    """Replace every child that offers ``fuse()`` (timm's ConvNorm/LinearNorm/NormLinear)
    by the layer it returns."""
    for name, child in module.named_children():
        if hasattr(child, 'fuse'):
            setattr(module, name, child.fuse())
        else:
            fuse_children(child)
    return module


def build_timm(arch: str, conv: bool) -> nn.Module:
    import timm
    name = f'levit_{"conv_" if conv else ""}{arch}'
    return fuse_children(timm.create_model(name, pretrained=False).eval())


class HFLevit(nn.Module):

    def __init__(self, arch):
        super().__init__()
        from transformers import LevitConfig, LevitForImageClassificationWithTeacher
        spec = ARCH_SETTINGS[arch]
        config = LevitConfig(hidden_sizes=spec['embed_dims'],
                             num_attention_heads=spec['num_heads'], depths=spec['depths'],
                             key_dim=spec['key_dims'], num_labels=1000)
        self.model = LevitForImageClassificationWithTeacher(config).eval()

    def forward(self, x):
        return self.model(pixel_values=x).logits


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
            from levit_mm.support.static_int8 import quantize_static_int8
            spath = quantize_static_int8(path, osp.join(tmp_dir, f'levit-{arch}-static.onnx'),
                                         [sample_photo_crops(224)])
            models['levit_mm ort int8 static'] = {
                t: ort_runner(ort_session(spath, t)) for t in batch_threads}
    builders = {'mmpretrain': lambda: MMPretrainLeViT(arch),
                'timm': lambda: build_timm(arch, conv=False),
                'timm conv': lambda: build_timm(arch, conv=True),
                'hf': lambda: HFLevit(arch).eval()}
    for name in PEERS:
        if name in names:
            models[name] = same(builders[name]())
    return models, fp32


# ----------------------------------------------------------------------------- timing
def time_interleaved(models: Dict[str, Callable], x: torch.Tensor, warmup: int,
                     iters: int) -> Dict[str, float]:
    """Best wall time (s) per model over ``iters`` rounds, each round running every model
    once in turn."""
    best = {name: float('inf') for name in models}
    with torch.inference_mode():
        for _ in range(warmup):
            for fn in models.values():
                fn(x)
        for _ in range(iters):
            for name, fn in models.items():
                start = time.perf_counter()
                fn(x)
                best[name] = min(best[name], time.perf_counter() - start)
    return best


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
def print_table(title, rows, header):
    print(f'\n{title}')
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = '  '.join(h.ljust(w) for h, w in zip(header, widths))
    print(line)
    print('-' * len(line))
    for r in rows:
        print('  '.join(str(c).ljust(w) for c, w in zip(r, widths)))


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


def main(argv=None):
    args = parse_args(argv)
    warnings.filterwarnings('ignore')
    init_default_scope('mmpretrain')
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
        fastest_fp32 = max((n for n in ('levit_mm fp32', 'levit_mm compiled') if n in ips),
                           key=ips.get, default=None)
        fp = ips.get(fastest_fp32)
        ceil = r['ceilings']
        rows.append([arch, f'{best_peer:.1f}' if best_peer else '-',
                     f'{fp / best_peer:.2f}x' if fp and best_peer else '-',
                     f'{100 * r["gflop"] * fp / max(peak, peak_end):.0f}%' if fp else '-',
                     f'{ceil["fp32"] / best_peer:.2f}x' if best_peer else '-',
                     best_ours,
                     f'{ours[best_ours] / best_peer:.2f}x' if best_peer else '-',
                     f'{ceil["int8"] / best_peer:.2f}x' if best_peer else '-'])
    print_table(f'Summary (batch {args.batch}, 1 thread; fp32 = the faster of levit_mm fp32 '
                'eager and compiled; ceiling = every multiply-add at the measured peak)', rows,
                ['arch', 'best peer img/s', 'fp32 vs peer', 'fp32 % of peak',
                 'fp32 ceiling vs peer', 'best levit_mm path', 'best path vs peer',
                 'int8 ceiling vs peer'])


if __name__ == '__main__':
    main()
