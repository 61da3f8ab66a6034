"""The training-step table: images/s (and peak memory on a GPU) and aten ops dispatched per
step, levit_mm vs timm, eager and compiled (:func:`levit_tools.benchmarking.training_steps`).
"""
from typing import Dict, List

import torch

from levit_mm.deploy.timing import time_interleaved
from levit_tools.benchmarking import training_steps
from levit_tools.measure import markdown_table
from levit_tools.op_count import count_ops


def _peak_memory(steps, x) -> Dict[str, float]:
    """Each step's own peak GiB on the GPU (run alone after a reset)."""
    memory = {}
    for name, step in steps.items():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        step(x)
        torch.cuda.synchronize()
        memory[name] = torch.cuda.max_memory_allocated() / 2**30
    return memory


def training_arch(arch: str, args) -> dict:
    """``{'ips': {step: img/s}, 'ops': {eager step: aten ops}, 'memory': {step: GiB}}``."""
    device, cuda = args.device, args.device == 'cuda'
    torch._dynamo.reset()
    x = torch.randn(args.train_batch, 3, args.size, args.size, device=device)
    modes = (False, ) if args.no_compile else (False, True)
    steps = training_steps(arch, args.train_batch, device,
                           torch.bfloat16 if cuda else None, compiled=modes)
    ops = {name: sum(count_ops(lambda s=step: s(x)).values())
           for name, step in steps.items() if name.endswith('eager')}
    best = time_interleaved(steps, x, args.warmup, args.iters, device, inference=False)
    return dict(ips={n: args.train_batch / t for n, t in best.items()}, ops=ops,
                memory=_peak_memory(steps, x) if cuda else {})


def training_lines(arch: str, result: dict, args) -> List[str]:
    ips = result['ips']
    eager, compiled = ips['timm eager'], ips.get('timm compiled')
    rows = [[name, f'{value:.1f}', f'{value / eager:.2f}x',
             f'{value / compiled:.2f}x' if compiled else '-',
             f'{result["memory"][name]:.2f}' if name in result['memory'] else '-',
             str(result['ops'].get(name, ''))]
            for name, value in sorted(ips.items(), key=lambda kv: -kv[1])]
    title = (f'LeViT-{arch.upper()} training step: batch {args.train_batch}, '
             f'{"bf16 autocast" if args.device == "cuda" else "fp32"}, AdamW, drop path '
             f'0.1, both heads on labels ({args.device}; best of {args.iters} interleaved '
             'rounds)')
    return [title, ''] + markdown_table(
        ['model', 'img/s', 'vs timm eager', 'vs timm compiled', 'peak GiB', 'aten ops/step'],
        rows) + ['']
