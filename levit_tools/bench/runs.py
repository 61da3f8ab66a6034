"""Every inference path, built the same way for every model: like for like.

Models (random weights; speed does not depend on values): levit_mm's fast deploy graph
(:mod:`levit_mm.deploy.fast`) and its folded model (BN folded, heads merged), and the
peers of :data:`levit_tools.models.PEERS` (mmpretrain, timm linear and conv forms, Hugging
Face), BN fused where they offer it.  Paths, each applied to every model the same way:

* ``eager``, ``compiled`` (:func:`levit_mm.deploy.compile_for_inference`: Inductor, frozen
  weights, for the peers too), ``bf16`` (CPU autocast);
* ``ort fp32``: a fixed-size ONNX export (dynamic batch) in onnxruntime with all graph
  optimisations; ``ort int8 dynamic``: onnxruntime's ``quantize_dynamic`` of it
  (:func:`levit_mm.deploy.quantize_onnx_int8`); ``ort int8 static QDQ``: onnxruntime's
  stock ``quantize_static`` (QDQ, every op it supports, per-channel weights); ``ort int8
  static levit_mm``: levit_mm's static pass (:mod:`levit_mm.deploy.static_int8`, weight
  matmuls only, bias fused).  Both static paths calibrate on the same photo crops; all int8
  paths use 7-bit weights on CPUs without int8 dot products (see
  :func:`levit_mm.deploy.precision.cpu_has_vnni`);
* ``openvino fp32``: the same ONNX file run by OpenVINO (standard ONNX ops: levit_mm's fast
  graph without onnxruntime's fused attention node).

A path that fails for a model (an export or a compile a library does not support) is
reported with its one-line reason instead of stopping the benchmark.
"""
import functools
import os.path as osp
from typing import Callable, Dict, Iterable, Sequence, Tuple

import torch
import torch.nn as nn

from levit_mm.deploy import (LogitsWrapper, bf16_autocast, compile_for_inference, export_onnx,
                             ort_runner, ort_session, quantize_onnx_int8, switch_to_deploy)
from levit_mm.deploy.fast import FastLeViT, export_fast_onnx, to_fast_graph
from levit_mm.deploy.onnx import quiet_root_logger
from levit_mm.deploy.openvino import openvino_available, ov_runner
from levit_mm.deploy.precision import cpu_has_vnni
from levit_mm.deploy.static_int8 import TensorCalibration, quantize_static_int8

from ..models import PEERS, build_classifier

#: levit_mm's graphs: the fast deploy graph, and the folded model it is built from
LEVIT_MM = ('levit_mm', 'levit_mm folded')
MODELS = LEVIT_MM + tuple(PEERS)
TORCH_PATHS = ('eager', 'compiled', 'bf16')
ONNX_PATHS = ('ort fp32', 'ort int8 dynamic', 'ort int8 static QDQ', 'ort int8 static levit_mm',
              'openvino fp32')
PATHS = TORCH_PATHS + ONNX_PATHS
#: the fp32 paths (the issue's 1.2x target is on the first three)
FP32_PATHS = ('eager', 'compiled', 'ort fp32', 'openvino fp32')
#: threads -> x -> logits
Run = Dict[int, Callable[[torch.Tensor], torch.Tensor]]


def build_modules(arch: str, names: Sequence[str]) -> Dict[str, nn.Module]:
    """``{model name: x -> logits module}`` (eval mode) for the requested models; the fast
    graph is built from the folded model, so the two share weights."""
    modules = {}
    if any(name in LEVIT_MM for name in names):
        folded = switch_to_deploy(LogitsWrapper(build_classifier(arch)).eval())
        modules.update({'levit_mm': to_fast_graph(folded), 'levit_mm folded': folded})
    for name in names:
        if name in PEERS:
            modules[name] = PEERS[name](arch).eval()
    return {name: modules[name] for name in names}


def quantize_qdq_stock(src: str, dst: str, calibration: Iterable[torch.Tensor]) -> str:
    """onnxruntime's own static quantisation, as a user would call it: QDQ format, every
    op type it quantises, per-channel int8 weights, uint8 activations."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    with quiet_root_logger():
        quantize_static(src, dst, TensorCalibration(calibration),
                        quant_format=QuantFormat.QDQ, per_channel=True,
                        reduce_range=not cpu_has_vnni(), activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8)
    return dst


def export(module: nn.Module, path: str, size, fused_attention: bool = True) -> str:
    """Fixed-size export (``size``: an int or ``(H, W)``; batch dynamic); the fast graph
    with onnxruntime's attention node unless ``fused_attention=False``."""
    shape = (size, size) if isinstance(size, int) else tuple(size)
    if isinstance(module, FastLeViT):
        return export_fast_onnx(module, path, shape, fused_attention=fused_attention)
    return export_onnx(module, path, shape, dynamic_hw=False)


def _openvino_file(module: nn.Module, stem: str, size: int, ort_file: Callable[[], str]):
    if not openvino_available():
        raise ImportError('openvino is not installed (pip install openvino)')
    if isinstance(module, FastLeViT):  # standard ONNX ops only
        return export(module, f'{stem}-plain.onnx', size, fused_attention=False)
    return ort_file()


def path_builders(name: str, module: nn.Module, work_dir: str, size: int, calibration,
                  threads) -> Dict[str, Callable[[], Run]]:
    """``{path: () -> run}`` of one model; the ONNX export is made once, when a path first
    needs it."""
    stem = osp.join(work_dir, name.replace(' ', '-'))
    src = functools.lru_cache(None)(lambda: export(module, f'{stem}.onnx', size))

    def same(fn):
        return {t: fn for t in threads}

    def bf16(x):
        with bf16_autocast():
            return module(x).float()

    def ort(make_file):
        return lambda: {t: ort_runner(ort_session(file, t))
                        for file in [make_file()] for t in threads}

    return {
        'eager': lambda: same(module),
        'compiled': lambda: same(compile_for_inference(module)),
        'bf16': lambda: same(bf16),
        'ort fp32': ort(src),
        'ort int8 dynamic': ort(lambda: quantize_onnx_int8(src(), f'{stem}-dynamic.onnx')),
        'ort int8 static QDQ': ort(lambda: quantize_qdq_stock(src(), f'{stem}-qdq.onnx',
                                                              calibration)),
        'ort int8 static levit_mm': ort(lambda: quantize_static_int8(
            src(), f'{stem}-static.onnx', calibration)),
        'openvino fp32': lambda: {t: ov_runner(file, t) for file in [
            _openvino_file(module, stem, size, src)] for t in threads},
    }


def build_runs(arch: str, models: Sequence[str], paths: Sequence[str], work_dir: str,
               size: int = 224, calibration=None, threads=(1, 2)
               ) -> Tuple[Dict[Tuple[str, str], Run], Dict[Tuple[str, str], str]]:
    """``({(model, path): run}, {(model, path): why it failed})`` for every requested
    model and path; ``calibration``: batches for the static int8 paths."""
    runs, failures = {}, {}
    for name, module in build_modules(arch, models).items():
        builders = path_builders(name, module, work_dir, size, calibration, threads)
        for path in (p for p in PATHS if p in paths):
            try:
                runs[(name, path)] = builders[path]()
            except Exception as err:  # a library that cannot take a path is a result
                failures[(name, path)] = one_line(err)
    return runs, failures


def one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f'{type(err).__name__}: {text[0] if text else ""}'[:160]


def warm_up(runs: Dict[Tuple[str, str], Run], x: torch.Tensor, failures: dict) -> None:
    """Call each run once at this input (compiles, OpenVINO shapes); a run that fails is
    moved to ``failures``."""
    threads = torch.get_num_threads()
    with torch.inference_mode():
        for key in list(runs):
            try:
                runs[key][threads if threads in runs[key] else min(runs[key])](x)
            except Exception as err:
                failures[key] = one_line(err)
                del runs[key]
