"""The GPU inference table (``--device cuda``): AMP, the largest batch up to 1024 that every
model fits, all paths of :func:`levit_tools.benchmarking.gpu_inference_models`, interleaved
CUDA timing, and batch-1 latency."""
from typing import Callable, List

import torch

from levit_mm.deploy.timing import time_interleaved
from levit_tools.benchmarking import gpu_inference_models
from levit_tools.measure import markdown_table


def require_cuda() -> None:
    """A missing GPU is the user's to fix: one line, no traceback."""
    if not torch.cuda.is_available():
        raise ValueError('--device cuda: no CUDA device is available here '
                         '(torch.cuda.is_available() is False); run it on a GPU machine.')


def fitting_batch(fn: Callable, size: int, device: str, start: int = 1024) -> int:
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


def gpu_arch(arch: str, args) -> dict:
    torch._dynamo.reset()
    models = gpu_inference_models(arch)
    batch = min(fitting_batch(fn, args.size, 'cuda') for fn in models.values())
    x = torch.randn(batch, 3, args.size, args.size, device='cuda')
    best = time_interleaved(models, x, args.warmup, args.iters, 'cuda')
    x1 = torch.randn(1, 3, args.size, args.size, device='cuda')
    latency = time_interleaved(models, x1, args.warmup, max(args.iters * 2, 1), 'cuda')
    return dict(ips={name: batch / t for name, t in best.items()}, latency=latency,
                batch=batch)


def gpu_lines(arch: str, result: dict, args) -> List[str]:
    ips, latency = result['ips'], result['latency']
    peer_ips = max(v for n, v in ips.items() if not n.startswith('levit_mm'))
    timm_compiled = ips.get('timm compiled fp16')
    peer_latency = min(v for n, v in latency.items() if not n.startswith('levit_mm'))
    rows = [[name, f'{value:.0f}', f'{value / peer_ips:.2f}x',
             f'{value / timm_compiled:.2f}x' if timm_compiled else '-',
             f'{1000 * latency[name]:.2f}', f'{peer_latency / latency[name]:.2f}x']
            for name, value in sorted(ips.items(), key=lambda kv: -kv[1])]
    title = (f'LeViT-{arch.upper()} GPU inference: batch {result["batch"]}, {args.size}x'
             f'{args.size}, fp16 (best of {args.iters} interleaved rounds)')
    return [title, ''] + markdown_table(
        ['model', 'img/s', 'vs best peer', 'vs timm compiled', 'batch-1 ms',
         'latency vs best peer'], rows) + ['']
