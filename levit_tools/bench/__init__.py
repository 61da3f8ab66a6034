"""The speed benchmark's parts (``tools/analysis_tools/benchmark.py`` is their CLI):

* :mod:`.runs`: every inference path (eager, compiled, bf16, onnxruntime fp32 and int8,
  OpenVINO) built the same way for every model, levit_mm's graphs and the peers';
* :mod:`.cpu`: the like-for-like CPU tables (throughput, batch-1 latency) and their summary;
* :mod:`.peaks`: the machine's matmul peaks and the ceilings they put on each arch;
* :mod:`.gpu`: the GPU inference table; :mod:`.training`: the training-step table;
* :mod:`.plot`: published top-1 against measured images/s, as a PNG.
"""
