"""Reduced-precision inference paths for a (deployed) LeViT on CPU.

* int8: dynamic quantisation of every ``nn.Linear`` (weights int8 per channel, activations
  quantised on the fly); the convolutions of the stem and the attention matmuls stay fp32.
* bf16: ``torch.autocast`` on CPU.  Only fast where the CPU has native bf16 dot products
  (AVX-512 BF16 or AMX); elsewhere oneDNN emulates it and it is much *slower* than fp32
  (see :func:`native_bf16`).

:func:`cpu_has_vnni` says which int8 GEMM the CPU runs, which decides the weights' range
(onnxruntime's int8 paths, :mod:`.onnx` and :mod:`.static_int8`).
"""
import copy
import warnings

import torch
import torch.nn as nn


def _cpu_has_any(*flags: str) -> bool:
    """Whether ``/proc/cpuinfo`` lists any of ``flags`` (False where it cannot be read)."""
    try:
        with open('/proc/cpuinfo') as f:
            listed = f.read()
    except OSError:
        return False
    return any(flag in listed for flag in flags)


def native_bf16() -> bool:
    """True if the CPU advertises bf16 dot-product instructions (AVX-512 BF16 or AMX)."""
    return _cpu_has_any('avx512_bf16', 'amx_bf16')


def cpu_has_vnni() -> bool:
    """True if the CPU has an int8 dot-product instruction (AVX-VNNI, AVX-512 VNNI or AMX).

    Without one (e.g. AVX2-only CPUs), onnxruntime's uint8 x int8 GEMM multiplies with
    ``vpmaddubsw``, which adds each pair of products into a *saturating* int16: two
    full-range products reach ``2 * 255 * 127 = 64770 > 32767``.  The sums are clipped
    silently (a random LeViT-128S's logits then differ from fp32 by 12% of their range
    instead of 2%).  7-bit weights (``reduce_range``: ``2 * 255 * 64 = 32640``) cannot
    overflow, at a small accuracy cost; the int8 paths here use them on such CPUs.
    """
    return _cpu_has_any('avx512_vnni', 'avx_vnni', 'amx_int8')


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
