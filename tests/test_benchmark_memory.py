"""tools/analysis_tools/benchmark_memory.py runs end to end on a small case (figures
printed, only their presence asserted), and says so when asked for a GPU it does not have."""
import re

import pytest
import torch
from conftest import run_py

TOOL = 'tools/analysis_tools/benchmark_memory.py'


@pytest.mark.slow  # two fresh processes, each importing mmpretrain: about a minute here
def test_memory_benchmark_small_case():
    result = run_py([TOOL, '--arch', '128s', '--cases', 'cls', '--batch', '2'])
    assert result.returncode == 0, result.stderr[-2000:]
    row = re.search(r'\| cls \| 2x3x224x224 \| (\d+) \| (\d+) \| -?\d+% \|', result.stdout)
    assert row, result.stdout
    assert 'peak RSS growth' in result.stdout


def test_gpu_request_without_gpu_is_reported():
    if torch.cuda.is_available():
        return
    result = run_py([TOOL, '--device', 'cuda'])
    assert result.returncode == 0 and 'GPU: not measured' in result.stdout
