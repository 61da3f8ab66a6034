"""The benchmark tool runs end to end in quick mode (figures printed, none asserted)."""
from conftest import run_py


def test_benchmark_quick_smoke():
    result = run_py(['tools/analysis_tools/benchmark.py', '--quick', '--archs', '128s',
                     '--models', 'levit_mm fp32', 'levit_mm int8', 'mmpretrain',
                     '--no-latency'])
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert 'one-core fp32 matmul peak' in out
    for row in ('levit_mm fp32', 'levit_mm int8', 'mmpretrain'):
        assert f'\n{row} ' in out, out
    assert 'Summary' in out and '0.614 GFLOP/img' in out
