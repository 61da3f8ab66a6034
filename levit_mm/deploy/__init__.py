"""Deploy: a trained LeViT folded, compiled, exported and quantised for inference.

* :mod:`.inference`: fold in place (:func:`switch_to_deploy`), compile
  (:func:`compile_for_inference`), pick the faster form (:func:`use_fastest_form`), and
  :class:`LogitsWrapper`, a classifier as a plain ``x -> logits`` module;
* :mod:`.onnx`: ONNX export and onnxruntime sessions, dynamic int8;
* :mod:`.static_int8`: calibrated static int8 for onnxruntime;
* :mod:`.precision`: bf16 autocast and PyTorch dynamic int8 on the CPU;
* :mod:`.timing`: the interleaved timer the form choice (and the benchmarks) use.

Checkpoints fold too: :func:`levit_mm.folding.fold_state_dict`.
"""
from ..folding import DeployConversionError, fold_state_dict
from .inference import (LogitsWrapper, compile_for_inference, switch_to_deploy, time_forms,
                        use_fastest_form)
from .onnx import export_onnx, ort_runner, ort_session, quantize_onnx_int8
from .precision import bf16_autocast, native_bf16, quantize_int8

__all__ = ['DeployConversionError', 'LogitsWrapper', 'bf16_autocast', 'compile_for_inference',
           'export_onnx', 'fold_state_dict', 'native_bf16', 'ort_runner', 'ort_session',
           'quantize_int8', 'quantize_onnx_int8', 'switch_to_deploy', 'time_forms',
           'use_fastest_form']
