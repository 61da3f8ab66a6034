"""The one timer: best wall time per callable, the callables interleaved round by round.

Interleaving runs one call of every callable per round and keeps each one's best round, so a
machine that slows down for a while slows every candidate alike and their ratios stay fair.
:func:`levit_mm.deploy.use_fastest_form` decides with it; the benchmarks report with it.
"""
import time
from typing import Callable, Dict

import torch


def synchronizer(device) -> Callable[[], None]:
    """Waits for queued GPU work (CUDA); a no-op on the CPU."""
    return torch.cuda.synchronize if str(device).startswith('cuda') else (lambda: None)


def time_interleaved(models: Dict[str, Callable], x, warmup: int, iters: int,
                     device='cpu', inference: bool = True) -> Dict[str, float]:
    """Best wall time (s) per callable over ``iters`` rounds after ``warmup`` rounds, each
    round calling every callable once on ``x`` in turn (CUDA work is waited for before
    the clock stops); ``inference=False`` keeps autograd on (training steps)."""
    sync = synchronizer(device)
    best = {name: float('inf') for name in models}
    context = torch.inference_mode if inference else torch.enable_grad
    with context():
        for _ in range(warmup):
            for fn in models.values():
                fn(x)
        sync()
        for _ in range(iters):
            for name, fn in models.items():
                start = time.perf_counter()
                fn(x)
                sync()
                best[name] = min(best[name], time.perf_counter() - start)
    return best
