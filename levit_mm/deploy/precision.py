"""Reduced-precision inference paths for a (deployed) LeViT on CPU.

* int8: dynamic quantisation of every ``nn.Linear`` (weights int8 per channel, activations
  quantised on the fly); the convolutions of the stem and the attention matmuls stay fp32.
* bf16: ``torch.autocast`` on CPU.  Only fast where the CPU has native bf16 dot products
  (AVX-512 BF16 or AMX); elsewhere oneDNN emulates it and it is much *slower* than fp32
  (see :func:`native_bf16`).
"""
import copy
import warnings

import torch
import torch.nn as nn


def native_bf16() -> bool:
    """True if the CPU advertises bf16 dot-product instructions (AVX-512 BF16 or AMX)."""
    try:
        with open('/proc/cpuinfo') as f:
            flags = f.read()
    except OSError:
        return False
    return 'avx512_bf16' in flags or 'amx_bf16' in flags


def bf16_autocast():
    """Context manager: run the enclosed forward in bf16 where that is numerically safe
    (matmuls, convolutions), fp32 elsewhere (softmax, reductions)."""
    return torch.autocast('cpu', dtype=torch.bfloat16)


def quantize_int8(model: nn.Module, inplace: bool = False) -> nn.Module:
    """A copy of ``model`` (eval) with every Linear dynamically quantised to int8.

    Uses ``torch.ao.quantization.quantize_dynamic`` with per-channel weight scales, which
    PyTorch marks as deprecated in favour of torchao; its deprecation warnings are
    silenced here so the inference path stays quiet.
    """
    model = model if inplace else copy.deepcopy(model)
    model.eval()
    qconfig = torch.ao.quantization.per_channel_dynamic_qconfig
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return torch.ao.quantization.quantize_dynamic(
            model, {nn.Linear: qconfig}, dtype=torch.qint8, inplace=True)
