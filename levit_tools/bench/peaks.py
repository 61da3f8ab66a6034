"""This machine's one-core matmul peaks, and the ceilings they put on an arch: images/s if
every multiply-add ran at the peak (fp32), or the Linears' at the int8 peak and the rest at
the fp32 peak.  A ceiling over the best peer is the largest speed-up any implementation
could show here."""
import os.path as osp
import warnings
from typing import Dict, List

import torch
import torch.nn as nn

from levit_mm.deploy import (LogitsWrapper, ort_runner, ort_session, quantize_int8,
                             quantize_onnx_int8, switch_to_deploy)
from levit_mm.deploy.timing import time_interleaved
from levit_tools.analysis import count_flops, linear_macs, roofline_images_per_s
from levit_tools.measure import num_threads
from levit_tools.models import build_classifier


def matmul_peak_gflops(n: int = 2048, iters: int = 3) -> float:
    """One-thread fp32 sgemm GFLOP/s (2 n^3 flops per product), best of ``iters``."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    with num_threads(1):
        best = time_interleaved({'sgemm': lambda x: x @ b}, a, 1, iters)['sgemm']
    return 2 * n**3 / best / 1e9


def int8_matmul_peak_gops(tmp_dir: str, n: int = 2048, iters: int = 3) -> float:
    """One-thread int8 GOP/s of a dynamically quantised ``n x n x n`` Linear (the int8
    paths' GEMM), the faster of onnxruntime and PyTorch."""
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


def ceilings(arch: str, size: int, fp32_peak: float, int8_peak: float) -> Dict[str, float]:
    """``{'gflop': per image, 'fp32': img/s, 'int8': img/s, 'linear share': ...}``."""
    model = switch_to_deploy(LogitsWrapper(build_classifier(arch)).eval())
    macs = count_flops(model, (1, 3, size, size))
    int8_macs = linear_macs(model, (1, 3, size, size))
    return {'gflop': 2 * macs / 1e9, 'linear share': int8_macs / macs,
            'fp32': roofline_images_per_s(macs, 0, fp32_peak),
            'int8': roofline_images_per_s(macs, int8_macs, fp32_peak, int8_peak)}


def ceiling_lines(found: Dict[str, dict], best_ips: Dict[str, float], fp32_peak: float,
                  int8_peak: float) -> List[str]:
    """Markdown lines: the peaks, and per arch its ceilings against its fastest run."""
    lines = [f'One-core peaks: fp32 sgemm {fp32_peak:.1f} GFLOP/s, int8 GEMM '
             f'{int8_peak:.1f} GOP/s.', '',
             '| arch | GFLOP/img | Linears\' share of MACs | fp32 ceiling img/s | '
             'int8-Linears ceiling img/s | fastest measured img/s | % of fp32 ceiling |',
             '|---|---|---|---|---|---|---|']
    for arch, c in found.items():
        best = best_ips.get(arch)
        lines.append(f'| {arch} | {c["gflop"]:.3f} | {100 * c["linear share"]:.0f}% | '
                     f'{c["fp32"]:.1f} | {c["int8"]:.1f} | '
                     f'{best:.1f} | {100 * best / c["fp32"]:.0f}% |' if best else
                     f'| {arch} | {c["gflop"]:.3f} | {100 * c["linear share"]:.0f}% | '
                     f'{c["fp32"]:.1f} | {c["int8"]:.1f} | - | - |')
    return lines
