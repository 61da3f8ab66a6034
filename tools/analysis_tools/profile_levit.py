"""Where a deployed LeViT spends its CPU time: the top operators of PyTorch or onnxruntime.

    python tools/analysis_tools/profile_levit.py --arch 128s [--batch 16] [--threads 1]
        [--graph folded|fast] [--runtime torch|onnxruntime] [--int8] [--top 15]

``--graph fast`` profiles the fast deploy graph (:mod:`levit_mm.deploy.fast`), ``folded`` the
folded model.  With PyTorch, operators are sorted by self CPU time (``--shapes`` groups them
by input shape); with onnxruntime (its own profiler, on a fixed-size export with all graph
optimisations), the kernels' time is summed per operator type.  ``--int8``: PyTorch's
dynamic int8 Linears, or levit_mm's static int8 pass for onnxruntime.  So the limits the
benchmark reports can be traced to GEMMs, attention, convolutions or memory-bound ops.
"""
import argparse
import collections
import json
import os
import os.path as osp
import sys
import tempfile

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from levit_mm.arch import ARCH_SETTINGS  # noqa: E402
from levit_mm.deploy import LogitsWrapper, quantize_int8, switch_to_deploy  # noqa: E402
from levit_mm.deploy.fast import to_fast_graph  # noqa: E402
from levit_tools.cli import run_cli  # noqa: E402
from levit_tools.measure import print_table  # noqa: E402
from levit_tools.models import build_classifier  # noqa: E402


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
    parser.add_argument('--shapes', action='store_true', help='group by input shape (torch)')
    parser.add_argument('--top', type=int, default=15)
    return parser.parse_args(argv)


def profile_torch(model, x, args) -> None:
    if args.int8:
        if args.graph == 'fast':
            raise ValueError('PyTorch\'s dynamic int8 replaces nn.Linear modules, which the '
                             'fast graph does not have: use --graph folded, or --runtime '
                             'onnxruntime for the fast graph\'s static int8.')
        model = quantize_int8(model)
    with torch.inference_mode():
        model(x)
        with profile(activities=[ProfilerActivity.CPU], record_shapes=args.shapes) as prof:
            for _ in range(args.iters):
                model(x)
    print(prof.key_averages(group_by_input_shape=args.shapes).table(
        sort_by='self_cpu_time_total', row_limit=args.top, max_name_column_width=36))


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
    session.run(None, feed)
    for _ in range(iters):
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


def profile_onnxruntime(model, x, args) -> None:
    from levit_tools.bench.runs import export
    with tempfile.TemporaryDirectory() as tmp:
        path = export(model, osp.join(tmp, 'model.onnx'), args.size)
        if args.int8:
            from levit_mm.deploy.static_int8 import quantize_static_int8
            from levit_tools.sample_images import sample_photo_crops
            path = quantize_static_int8(path, osp.join(tmp, 'int8.onnx'),
                                        [sample_photo_crops(args.size)])
        times = ort_op_times(path, x, args.threads, args.iters)
    total = sum(t for t, _ in times.values())
    rows = [[op, f'{100 * t / total:.1f}%', f'{t / 1000:.2f}', str(n)]
            for op, (t, n) in sorted(times.items(), key=lambda kv: -kv[1][0])[:args.top]]
    print_table(f'onnxruntime, {args.threads} thread(s), batch {args.batch}: kernel time '
                f'per operator type ({total / 1000:.1f} ms per run)', rows,
                ['op type', 'share', 'ms/run', 'calls/run'])


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    model = switch_to_deploy(LogitsWrapper(build_classifier(args.arch)).eval())
    if args.graph == 'fast':
        model = to_fast_graph(model)
    x = torch.randn(args.batch, 3, args.size, args.size)
    if args.runtime == 'torch':
        profile_torch(model, x, args)
    else:
        profile_onnxruntime(model, x, args)


if __name__ == '__main__':
    run_cli(main)
