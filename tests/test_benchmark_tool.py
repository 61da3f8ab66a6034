"""The benchmark tool runs end to end in quick mode (figures printed and written, their
values not asserted: one round at batch 2 measures nothing), and its parts."""
from conftest import run_py


def test_benchmark_like_for_like_smoke(tmp_path):
    """Every model on the same paths, a results file with the machine at its top, the
    summary against the targets, and the top-1 vs images/s picture beside it."""
    results = tmp_path / 'speed.md'
    result = run_py(['tools/analysis_tools/benchmark.py', '--quick', '--archs', '128s',
                     '--models', 'levit_mm', 'timm', '--paths', 'eager', 'ort fp32',
                     'ort int8 static levit_mm', '--no-peaks', '--results', str(results)])
    assert result.returncode == 0, result.stderr[-2000:]
    text = results.read_text()
    assert '- CPU: ' in text and '- command: ' in text and '- versions: ' in text
    assert '| 128s | levit_mm, ' in text  # summary row: levit_mm's fastest path
    for row in ('| levit_mm | ', '| timm | '):  # throughput, latency, agreement tables
        assert text.count(row) == 3, row
    assert text.count('| **levit_mm / best peer** | ') == 2
    assert 'did not run' not in text, text
    header = next(line for line in text.splitlines() if line.startswith('| model | eager'))
    assert header.split(' | ')[1:4] == ['eager', 'ort fp32', 'ort int8 static levit_mm']
    assert (tmp_path / 'speed.png').stat().st_size > 10000
    assert '![top-1 vs images/s](speed.png)' in text


def test_benchmark_without_a_gpu_says_so_in_one_line():
    import torch
    if torch.cuda.is_available():
        import pytest
        pytest.skip('a GPU is present')
    result = run_py(['tools/analysis_tools/benchmark.py', '--device', 'cuda'])
    assert result.returncode == 2
    assert [line for line in result.stderr.strip().splitlines()
            if not line.startswith('[W')] == [
        'error: --device cuda: no CUDA device is available here '
        '(torch.cuda.is_available() is False); run it on a GPU machine.']


def test_training_table_counts_aten_ops():
    """The CPU training table: levit_mm and timm eager steps, with the aten ops each
    dispatches (levit_mm's are at most timm's)."""
    from tool_loading import load_tool

    from levit_tools.bench.training import training_arch
    bench = load_tool('tools/analysis_tools/benchmark.py')
    args = bench.parse_args(['--archs', '128s', '--quick', '--train', '--no-compile'])
    results = training_arch('128s', args)
    assert set(results['ops']) == {'levit_mm eager', 'timm eager'}
    assert 0 < results['ops']['levit_mm eager'] <= results['ops']['timm eager'], results
    assert all(v > 0 for v in results['ips'].values())


def test_gpu_inference_paths_run_and_agree_on_cpu():
    """The GPU table's eager paths (fp16 autocast, fp16 weights, the peers), built on the
    CPU where this runs: every one returns logits, and levit_mm's two agree."""
    import torch

    from levit_tools.benchmarking import gpu_inference_models
    models = gpu_inference_models('128s', device='cpu', compiled=False)
    assert list(models) == ['levit_mm deploy (autocast)', 'levit_mm fp16 weights',
                            'levit_mm conv fp16 weights', 'mmpretrain', 'timm', 'hf']
    x = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        out = {name: fn(x) for name, fn in models.items()}
    assert all(o.shape == (2, 1000) for o in out.values())
    a = out['levit_mm deploy (autocast)'].float()
    for other in ('levit_mm fp16 weights', 'levit_mm conv fp16 weights'):
        assert (a - out[other].float()).abs().max() <= 0.05 * a.abs().max(), other
