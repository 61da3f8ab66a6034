"""Where a deployed LeViT spends its CPU time: the top operators of PyTorch or onnxruntime.

    python tools/analysis_tools/profile_levit.py --arch 128s [--batch 16] [--threads 1]
        [--graph folded|fast] [--runtime torch|onnxruntime] [--int8] [--top 15]
    python tools/analysis_tools/profile_levit.py --configs fast/onnxruntime \
        fast/onnxruntime/int8 folded/onnxruntime fast/torch --results

``--graph fast`` profiles the fast deploy graph (:mod:`levit_mm.deploy.fast`), ``folded`` the
folded model.  With PyTorch, operators are summed by self CPU time; with onnxruntime (its
own profiler, on a fixed-size export with all graph optimisations), kernel time is summed
per operator type.  ``--int8``: PyTorch's dynamic int8 Linears, or levit_mm's static int8
pass for onnxruntime.  So the limits the benchmark reports can be traced to GEMMs,
attention, convolutions or memory-bound ops.  ``--results`` writes the tables to
``docs/results/profile_cpu.md``.
"""
import argparse
import collections
import json
import os
import os.path as osp
import sys
import tempfile
from typing import List

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from levit_mm.arch import ARCH_SETTINGS  # noqa: E402
from levit_mm.deploy import LogitsWrapper, quantize_int8, switch_to_deploy  # noqa: E402
from levit_mm.deploy.fast import FastLeViT, to_fast_graph  # noqa: E402
from levit_tools.cli import run_cli  # noqa: E402
from levit_tools.measure import markdown_table  # noqa: E402
from levit_tools.models import build_classifier  # noqa: E402
from levit_tools.results import add_results_arg, report  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--arch', default='128s', choices=list(ARCH_SETTINGS))
    parser.add_argument('--batch', type=int, default=16)
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--iters', type=int, default=3)
    parser.add_argument('--graph', default='fast', choices=['folded', 'fast'])
    parser.add_argument('--runtime', default='torch', choices=['torch', 'onnxruntime'])
    parser.add_argument('--int8', action='store_true', help='profile the int8 path')
    parser.add_argument('--configs', nargs='+', metavar='GRAPH/RUNTIME[/int8]',
                        help='several profiles in one run, e.g. fast/onnxruntime '
                        'fast/onnxruntime/int8 folded/torch (instead of --graph/--runtime/'
                        '--int8)')
    parser.add_argument('--top', type=int, default=15)
    add_results_arg(parser, 'profile_cpu')
    args = parser.parse_args(argv)
    if args.configs is None:
        args.configs = [f'{args.graph}/{args.runtime}' + ('/int8' if args.int8 else '')]
    for config in args.configs:
        parts = config.split('/')
        if (len(parts) not in (2, 3) or parts[0] not in ('folded', 'fast')
                or parts[1] not in ('torch', 'onnxruntime') or parts[2:] not in ([], ['int8'])):
            raise ValueError(f'--configs {config!r}: use GRAPH/RUNTIME[/int8] with GRAPH '
                             'folded or fast and RUNTIME torch or onnxruntime.')
    return args


def torch_op_times(model, x, iters: int, int8: bool):
    """``{aten op: (microseconds per run, calls per run)}`` by self CPU time."""
    if int8:
        if isinstance(model, FastLeViT):
            raise ValueError('PyTorch\'s dynamic int8 replaces nn.Linear modules, which the '
                             'fast graph does not have: profile folded/torch/int8, or the '
                             'fast graph\'s static int8 in onnxruntime (fast/onnxruntime/int8).')
        model = quantize_int8(model)
    with torch.inference_mode():
        model(x)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(iters):
                model(x)
    return {e.key: (e.self_cpu_time_total / iters, e.count // iters)
            for e in prof.key_averages() if e.self_cpu_time_total > 0}


def ort_op_times(path: str, x: torch.Tensor, threads: int, iters: int):
    """``{op type: (microseconds per run, kernel calls per run)}`` from onnxruntime's
    profiler, after one untimed run."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.enable_profiling = True
    options.profile_file_prefix = osp.join(osp.dirname(path), 'ort-profile')
    session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    feed = {session.get_inputs()[0].name: x.numpy()}
    for _ in range(iters + 1):
        session.run(None, feed)
    trace = session.end_profiling()
    with open(trace) as f:
        events = json.load(f)
    os.remove(trace)
    runs = sorted(e['ts'] + e['dur'] for e in events if e.get('name') == 'model_run')
    time, calls = collections.Counter(), collections.Counter()
    for event in events:  # kernels of the timed runs (after the first run ended)
        if (event.get('cat') == 'Node' and event['name'].endswith('_kernel_time')
                and event['ts'] >= runs[0]):
            time[event['args']['op_name']] += event['dur']
            calls[event['args']['op_name']] += 1
    return {op: (t / iters, calls[op] // iters) for op, t in time.items()}


def onnxruntime_op_times(model, x, args, int8: bool):
    from levit_tools.bench.runs import export
    with tempfile.TemporaryDirectory() as tmp:
        path = export(model, osp.join(tmp, 'model.onnx'), args.size)
        if int8:
            from levit_mm.deploy.static_int8 import quantize_static_int8
            from levit_tools.sample_images import sample_photo_crops
            path = quantize_static_int8(path, osp.join(tmp, 'int8.onnx'),
                                        [sample_photo_crops(args.size)])
        return ort_op_times(path, x, args.threads, args.iters)


def profile_lines(config: str, times, args) -> List[str]:
    total = sum(t for t, _ in times.values())
    rows = [[op, f'{100 * t / total:.1f}%', f'{t / 1000:.2f}', str(n)]
            for op, (t, n) in sorted(times.items(), key=lambda kv: -kv[1][0])[:args.top]]
    return ([f'### {config}: LeViT-{args.arch.upper()}, batch {args.batch}, {args.threads} '
             f'thread(s), {total / 1000:.1f} ms per run', '']
            + markdown_table(['op', 'share', 'ms/run', 'calls/run'], rows) + [''])


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    folded = switch_to_deploy(LogitsWrapper(build_classifier(args.arch)).eval())
    graphs = {'folded': folded, 'fast': to_fast_graph(folded)}
    x = torch.randn(args.batch, 3, args.size, args.size)
    lines = []
    for config in args.configs:
        graph, runtime, *int8 = config.split('/')
        times = (torch_op_times(graphs[graph], x, args.iters, bool(int8)) if runtime == 'torch'
                 else onnxruntime_op_times(graphs[graph], x, args, bool(int8)))
        lines += profile_lines(config, times, args)
    report(lines, args.results, f'Where LeViT-{args.arch.upper()} spends its CPU time')


if __name__ == '__main__':
    run_cli(main)
