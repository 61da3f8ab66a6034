"""Model complexity with mmengine's counter, taught to count fused attention.

mmengine's ``FlopAnalyzer`` counts matmuls as multiply-accumulates but skips
``aten::scaled_dot_product_attention``.  LeViT's own attention is written as two explicit
matmuls (see ``levit_mm.backbones.layers.biased_attention``), which mmengine counts; the
handle below keeps the figures right for models (peers, teachers) that use the fused op.
"""
from typing import Dict, Sequence

import torch
from mmengine.analysis import FlopAnalyzer
from mmengine.analysis.jit_handles import get_shape

from levit_mm.deploy import LogitsWrapper


def sdpa_flop_jit(inputs, outputs) -> int:
    """MACs of ``softmax(Q K^T + mask) V``: ``B*H*Nq*Nk*(d_k + d_v)``."""
    q_shape, k_shape, v_shape = (get_shape(v) for v in inputs[:3])
    *batch, n_q, d_k = q_shape
    n_k, d_v = k_shape[-2], v_shape[-1]
    prod = 1
    for b in batch:
        prod *= b
    return prod * n_q * n_k * (d_k + d_v)


def count_flops(model: torch.nn.Module, input_shape: Sequence[int] = (1, 3, 224, 224),
                forward_fn=None) -> int:
    """Total FLOPs (mmengine's convention: one multiply-add counts once)."""
    wrapped = model if forward_fn is None else LogitsWrapper(model, forward_fn)
    wrapped.eval()  # (not chained: some backbones' train() returns None)
    inputs = (torch.zeros(*input_shape, device=next(model.parameters()).device), )
    analyzer = FlopAnalyzer(wrapped, inputs)
    analyzer.set_op_handle('aten::scaled_dot_product_attention', sdpa_flop_jit)
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    return int(analyzer.total())


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def classifier_complexity(model, input_shape=(1, 3, 224, 224)) -> Dict[str, int]:
    """Params and FLOPs of an mmpretrain classifier (backbone -> neck -> head logits)."""
    return dict(params=count_params(model),
                flops=count_flops(model, input_shape, forward_fn=_logits))


def _logits(model, x):
    return model(x, mode='tensor')


def linear_macs(model: torch.nn.Module, input_shape: Sequence[int] = (1, 3, 224, 224),
                forward_fn=None) -> int:
    """Multiply-adds done inside ``nn.Linear`` layers for one forward: the share of the
    work that int8 (dynamic quantisation of the Linears) speeds up."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        total += output.numel() * module.in_features

    model = model.eval()
    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, torch.nn.Linear)]
    try:
        with torch.no_grad():
            x = torch.zeros(*input_shape, device=next(model.parameters()).device)
            model(x) if forward_fn is None else forward_fn(model, x)
    finally:
        for h in handles:
            h.remove()
    return total


def roofline_images_per_s(total_macs: int, int8_macs: int, fp32_peak: float,
                          int8_peak: float = None) -> float:
    """Images/s if every multiply-add ran at the measured peak (GFLOP/s, 2 FLOPs per MAC):
    the ``int8_macs`` share at ``int8_peak``, the rest at ``fp32_peak``.  No real run can
    beat it, so ``ceiling / best peer`` is the largest speed-up any implementation could
    show on this machine."""
    if int8_peak is None:
        int8_peak, int8_macs = fp32_peak, 0
    seconds = 2 * ((total_macs - int8_macs) / fp32_peak + int8_macs / int8_peak) / 1e9
    return 1 / seconds
