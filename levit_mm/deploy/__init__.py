"""Deploy: a trained LeViT folded, compiled, exported and quantised for inference.

* :mod:`.inference`: fold in place (:func:`switch_to_deploy`), compile
  (:func:`compile_for_inference`), pick the faster form (:func:`use_fastest_form`), and
  :class:`LogitsWrapper`, a classifier as a plain ``x -> logits`` module;
* :mod:`.fast`: the fast deploy graph (:func:`to_fast_graph`): the folded classifier as a
  chain of GEMMs on token matrices, exported with onnxruntime's fused attention;
* :mod:`.onnx`: ONNX export and onnxruntime sessions, dynamic int8;
* :mod:`.openvino`: an exported model run by OpenVINO;
* :mod:`.static_int8`: calibrated static int8 for onnxruntime;
* :mod:`.precision`: bf16 autocast and PyTorch dynamic int8 on the CPU;
* :mod:`.timing`: the interleaved timer the form choice (and the benchmarks) use.

Checkpoints fold too: :func:`levit_mm.folding.fold_state_dict`.
"""
from ..folding import DeployConversionError, fold_state_dict
from .fast import FastLeViT, export_fast_onnx, to_fast_graph
from .inference import (LogitsWrapper, compile_for_inference, switch_to_deploy, time_forms,
                        use_fastest_form)
from .onnx import export_onnx, ort_runner, ort_session, quantize_onnx_int8
from .openvino import openvino_available, ov_runner
from .precision import bf16_autocast, cpu_has_vnni, native_bf16, quantize_int8

__all__ = ['DeployConversionError', 'FastLeViT', 'LogitsWrapper', 'bf16_autocast',
           'compile_for_inference', 'cpu_has_vnni', 'export_fast_onnx', 'export_onnx',
           'fold_state_dict', 'native_bf16', 'openvino_available', 'ort_runner',
           'ort_session', 'ov_runner', 'quantize_int8', 'quantize_onnx_int8',
           'switch_to_deploy', 'time_forms', 'to_fast_graph', 'use_fastest_form']
