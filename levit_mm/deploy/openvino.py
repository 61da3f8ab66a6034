"""OpenVINO on the CPU: an exported ONNX model run by the OpenVINO runtime (``pip install
openvino``), the other pip-installable CPU runtime besides onnxruntime.

The model is compiled once per input shape (static shapes let OpenVINO plan its kernels and
memory), with ``threads`` inference threads and the latency hint (one stream).
"""
from typing import Callable, Dict

import torch


def openvino_available() -> bool:
    import importlib.util
    return importlib.util.find_spec('openvino') is not None


def ov_runner(path: str, threads: int = 1) -> Callable[[torch.Tensor], torch.Tensor]:
    """``x -> logits`` running the ONNX file ``path`` with OpenVINO in fp32."""
    import openvino as ov
    core = ov.Core()
    model = core.read_model(path)
    compiled: Dict[tuple, object] = {}
    config = {'INFERENCE_NUM_THREADS': threads, 'PERFORMANCE_HINT': 'LATENCY',
              'INFERENCE_PRECISION_HINT': 'f32'}

    def run(x: torch.Tensor) -> torch.Tensor:
        shape = tuple(x.shape)
        if shape not in compiled:
            static = model.clone()
            static.reshape({0: list(shape)})
            compiled[shape] = core.compile_model(static, 'CPU', config).create_infer_request()
        request = compiled[shape]
        return torch.from_numpy(request.infer({0: x.numpy()})[0].copy())

    return run
