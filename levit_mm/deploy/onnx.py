"""ONNX export of a deployed LeViT and an onnxruntime session to run it.

Batch is always dynamic.  Height and width can be dynamic too: the exported graph builds
the attention bias from the input's token grid with the same gathers as PyTorch, which is
exact for every grid up to the trained one (e.g. any input up to 224x224 for the 224
models).  Grids *larger* than the trained one resample the bias table (bicubic, see
:mod:`levit_mm.attention_bias`) with sizes that the tracer freezes, so for those export
one model per input size (``dynamic_hw=False``).
"""
import contextlib
import logging
import warnings
from typing import Callable, Optional, Sequence

import torch
import torch.nn as nn

from ..backbones.layers import constant_bias_when_tracing
from ..fileio import atomic_output


def export_onnx(model: nn.Module, path: str, shape: Sequence[int] = (224, 224),
                dynamic_hw: bool = True, opset: int = 17,
                trained_size: Optional[Sequence[int]] = None,
                custom_opsets: Optional[dict] = None) -> str:
    """Trace ``model`` (a plain ``x -> logits`` module, eval mode) at ``(1, 3, *shape)``
    and write ``path`` atomically.  Input ``input`` (N, 3, H, W), output ``logits``."""
    if dynamic_hw and trained_size is not None and (
            shape[0] > trained_size[0] or shape[1] > trained_size[1]):
        raise ValueError(
            f'Dynamic height/width is exact only up to the trained size {tuple(trained_size)}'
            f'; got export shape {tuple(shape)}. Export with dynamic_hw=False (one model '
            'per input size) for larger inputs.')
    model = model.eval()
    dummy = torch.zeros(1, 3, *shape)
    axes = {0: 'batch', 2: 'height', 3: 'width'} if dynamic_hw else {0: 'batch'}
    static_bias = contextlib.nullcontext() if dynamic_hw else constant_bias_when_tracing()
    with atomic_output(path, '.onnx') as tmp, warnings.catch_warnings(), torch.no_grad(), \
            static_bias:
        warnings.simplefilter('ignore')  # tracer warnings about shape-dependent ints
        torch.onnx.export(model, (dummy, ), tmp, dynamo=False, opset_version=opset,
                          input_names=['input'], output_names=['logits'],
                          dynamic_axes={'input': axes, 'logits': {0: 'batch'}},
                          custom_opsets=custom_opsets)
    return path


def ort_session(path: str, threads: int = 1):
    """An onnxruntime CPU session with all graph optimisations and ``threads`` intra-op
    threads (one inter-op thread: the graph is a chain)."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])


def ort_runner(session) -> Callable[[torch.Tensor], torch.Tensor]:
    name = session.get_inputs()[0].name
    return lambda x: torch.from_numpy(session.run(None, {name: x.numpy()})[0])


def quantize_onnx_int8(src: str, dst: str, reduce_range: Optional[bool] = None) -> str:
    """onnxruntime's dynamic int8 quantisation of the MatMul/Gemm weights of ``src``.

    ``reduce_range`` (7-bit weights) defaults to on for CPUs without int8 dot products:
    there onnxruntime's uint8 x int8 GEMM adds pairs of products in 16 bits, which
    full-range weights overflow (see :func:`levit_mm.deploy.precision.cpu_has_vnni`).
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from .precision import cpu_has_vnni
    if reduce_range is None:
        reduce_range = not cpu_has_vnni()
    with quiet_root_logger(), atomic_output(dst, '.onnx') as tmp:
        quantize_dynamic(src, tmp, weight_type=QuantType.QInt8, per_channel=True,
                         reduce_range=reduce_range, op_types_to_quantize=['MatMul', 'Gemm'])
    return dst


@contextlib.contextmanager
def quiet_root_logger():
    """onnxruntime's quantisers log their "consider pre-processing" advice on the root
    logger at every call; keep it to errors while they run."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)
