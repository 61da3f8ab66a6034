"""The like-for-like CPU tables: every model on every path (:mod:`.runs`), timed in one
process with the candidates interleaved (:func:`levit_mm.deploy.timing.time_interleaved`),
so a busy machine slows all of them alike.

Per arch: images/s at the paper's protocol (1 thread, batch 16), batch-1 latency with two
threads, and each path's top-1 agreement with the same model's eager fp32 logits on real
photo crops.  The summary compares levit_mm (the better of its two graphs on each path)
with the best peer on the same path, and levit_mm's fastest path with the peers' fastest.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from levit_mm.deploy.timing import time_interleaved
from levit_tools.measure import markdown_table, num_threads
from levit_tools.sample_images import agreement, sample_photo_crops

from .runs import LEVIT_MM, PATHS, build_runs, warm_up

#: the issue's targets on the CPU: levit_mm's fastest path vs the peers' fastest, and each
#: of its fp32 paths vs the best peer on the same path
FASTEST_TARGET, FP32_TARGET = 1.6, 1.2
TARGET_FP32_PATHS = ('eager', 'compiled', 'ort fp32')
Key = Tuple[str, str]


def _timed(runs, x: torch.Tensor, threads: int, warmup: int, iters: int,
           failures: dict) -> Dict[Key, float]:
    """Best seconds per (model, path) at ``threads`` threads, all interleaved."""
    with num_threads(threads):
        warm_up(runs, x, failures)
        calls = {key: run[threads] for key, run in runs.items()}
        return time_interleaved(calls, x, max(warmup - 1, 0), iters)


def _agreement(runs, size: int, failures: dict) -> Dict[Key, tuple]:
    """Each path's ``(top-1 agreement, max |dlogit| / max |logit|)`` with its own model's
    eager fp32 logits on the photo crops (two threads)."""
    crops = sample_photo_crops(size)
    found = {}
    with num_threads(2), torch.inference_mode():
        for (model, path), run in runs.items():
            if path == 'eager' or (model, 'eager') not in runs:
                continue
            reference = runs[(model, 'eager')][2](crops)
            top1, _, relative = agreement(reference, run[2](crops))
            found[(model, path)] = (top1, relative)
    return found


def measure_arch(arch: str, args, work_dir: str) -> dict:
    """Every requested model and path of one arch: images/s (1 thread, ``args.batch``),
    batch-1 latency (2 threads, unless ``args.no_latency``), agreement, failures."""
    torch._dynamo.reset()  # each arch's compiled graphs start afresh (recompile limit)
    calibration = [sample_photo_crops(args.size)]
    runs, failures = build_runs(arch, args.models, args.paths, work_dir, args.size,
                                calibration)
    x = torch.randn(args.batch, 3, args.size, args.size)
    seconds = _timed(runs, x, 1, args.warmup, args.iters, failures)
    result = dict(ips={k: args.batch / t for k, t in seconds.items()}, failures=failures,
                  batch=args.batch)
    if not args.no_latency:
        x1 = torch.randn(1, 3, args.size, args.size)
        result['latency'] = _timed(runs, x1, 2, args.warmup, max(2 * args.iters, 1),
                                   failures)
    result['agree'] = _agreement({k: r for k, r in runs.items() if k in seconds},
                                 args.size, failures)
    return result


# ----------------------------------------------------------------------------- summary
def best_of(values: Dict[Key, float], models: Sequence[str], path: Optional[str] = None,
            lower: bool = False) -> Optional[Tuple[Key, float]]:
    """The best ``((model, path), value)`` among ``models`` (on ``path`` if given)."""
    found = [(k, v) for k, v in values.items()
             if k[0] in models and (path is None or k[1] == path)]
    if not found:
        return None
    return (min if lower else max)(found, key=lambda kv: kv[1])


def ratios(values: Dict[Key, float], lower: bool = False) -> Dict[str, Optional[float]]:
    """``{path: levit_mm's best / best peer}`` (speed ratio: > 1 is levit_mm faster) and
    ``'fastest'``: levit_mm's fastest path vs the peers' fastest."""
    peers = sorted({m for m, _ in values if m not in LEVIT_MM})
    out = {}
    for path in list(PATHS) + [None]:
        ours, theirs = best_of(values, LEVIT_MM, path, lower), best_of(values, peers, path,
                                                                      lower)
        ratio = None
        if ours and theirs:
            ratio = theirs[1] / ours[1] if lower else ours[1] / theirs[1]
        out['fastest' if path is None else path] = ratio
    return out


def _cell(value: Optional[float], fmt: str, unit: str = '') -> str:
    return '-' if value is None else format(value, fmt) + unit


def path_table(values: Dict[Key, float], failures: dict, fmt: str,
               lower: bool = False) -> List[str]:
    """Markdown: a row per model, a column per path, the fastest path last; then the
    ratio row (levit_mm's best graph vs the best peer, per path)."""
    models = list(dict.fromkeys(m for m, _ in list(values) + list(failures)))
    paths = [p for p in PATHS if any(k[1] == p for k in list(values) + list(failures))]
    rows = []
    for model in models:
        cells = [_cell(values.get((model, p)), fmt) if (model, p) not in failures
                 else 'failed' for p in paths]
        best = best_of(values, [model], lower=lower)
        rows.append([model] + cells + [best[0][1] if best else '-'])
    speed = ratios(values, lower)
    rows.append(['**levit_mm / best peer**'] + [_cell(speed[p], '.2f', 'x') for p in paths]
                + [_cell(speed['fastest'], '.2f', 'x')])
    return markdown_table(['model'] + paths + ['fastest path'], rows)


def agreement_table(agree: Dict[Key, tuple]) -> List[str]:
    models = list(dict.fromkeys(m for m, _ in agree))
    paths = [p for p in PATHS if any(k[1] == p for k in agree)]
    rows = [[m] + ['-' if (m, p) not in agree else
                   f'{100 * agree[(m, p)][0]:.0f}% / {agree[(m, p)][1]:.1e}' for p in paths]
            for m in models]
    return markdown_table(['model'] + paths, rows)


def failure_lines(failures: Dict[Key, str]) -> List[str]:
    return [f'- {model}, {path}: {why}' for (model, path), why in sorted(failures.items())]


def arch_lines(arch: str, result: dict, iters: int) -> List[str]:
    """The results-file section of one arch."""
    lines = [f'### LeViT-{arch.upper()}', '',
             f'Images/s, batch {result["batch"]}, 1 thread (best of {iters} interleaved '
             'rounds):', '']
    lines += path_table(result['ips'], result['failures'], '.1f')
    if 'latency' in result:
        ms = {k: 1000 * v for k, v in result['latency'].items()}
        lines += ['', 'Batch-1 latency, ms, 2 threads (ratio: best peer ms / levit_mm ms):',
                  ''] + path_table(ms, result['failures'], '.2f', lower=True)
    lines += ['', 'Top-1 agreement with the same model\'s eager fp32 logits / max |dlogit| '
              '(relative) on the photo crops:', ''] + agreement_table(result['agree'])
    if result['failures']:
        lines += ['', 'Paths that did not run:'] + failure_lines(result['failures'])
    return lines + ['']


def _verdict(value: Optional[float], target: float) -> str:
    if value is None:
        return '-'
    return f'{value:.2f}x ({"met" if value >= target else "short"})'


def summary_lines(results: Dict[str, dict]) -> List[str]:
    """Per arch: levit_mm's fastest vs the peers' fastest (throughput and latency) and
    its fp32 paths vs the best peer on each, against the targets."""
    rows = []
    for arch, result in results.items():
        ips = result['ips']
        ours = best_of(ips, LEVIT_MM)
        theirs = best_of(ips, [m for m, _ in ips if m not in LEVIT_MM])
        speed = ratios(ips)
        latency = ratios(result['latency'], lower=True) if 'latency' in result else {}
        rows.append([arch, f'{ours[0][0]}, {ours[0][1]}: {ours[1]:.1f}' if ours else '-',
                     f'{theirs[0][0]}, {theirs[0][1]}: {theirs[1]:.1f}' if theirs else '-',
                     _verdict(speed['fastest'], FASTEST_TARGET)]
                    + [_verdict(speed[p], FP32_TARGET) for p in TARGET_FP32_PATHS]
                    + [_cell(speed.get('openvino fp32'), '.2f', 'x'),
                       _cell(latency.get('fastest'), '.2f', 'x')])
    header = ['arch', 'levit_mm fastest (img/s)', 'peers\' fastest (img/s)',
              f'fastest vs fastest (target {FASTEST_TARGET}x)'] + [
        f'{p} (target {FP32_TARGET}x)' for p in TARGET_FP32_PATHS] + [
        'openvino fp32', 'batch-1 fastest vs fastest']
    return markdown_table(header, rows)
