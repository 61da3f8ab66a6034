"""Accuracy of every inference path of a trained LeViT on its config's held-out images.

    python tools/analysis_tools/precision_report.py CONFIG CHECKPOINT [--calib-images 256]

    # the digits model of tools/digits_demo.py:
    python tools/analysis_tools/precision_report.py \\
        configs/levit/digits/levit-128s_digits.py work_dirs/digits/levit-128s_digits.pth \\
        --cfg-options test_dataloader.dataset.data_root=work_dirs/digits/data \\
                      train_dataloader.dataset.data_root=work_dirs/digits/data

Paths: fp32 eager (the model as trained), deploy (BN folded, heads merged), compiled
(Inductor), bf16 (autocast), int8 dynamic (PyTorch, Linears), onnxruntime fp32, onnxruntime
int8 dynamic and onnxruntime int8 static (calibrated on ``--calib-images`` training images,
see :mod:`levit_mm.deploy.static_int8`; the Linears in int8, with "+conv" the stem too).
"fast ..." are the same paths of the fast deploy graph (:mod:`levit_mm.deploy.fast`), with
onnxruntime's fused attention and levit_mm's static int8 pass, and OpenVINO.  Each gets
top-1 on the test split, top-1 agreement with fp32 eager and the largest logit difference
from it.  The ONNX paths use a fixed-shape export at the test images' size.
"""
import argparse
import os.path as osp
import sys
import tempfile
import time
import warnings

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402
from mmengine.config import DictAction  # noqa: E402

import levit_mm  # noqa: E402,F401  (registers the LeViT modules)
from levit_tools.cli import run_cli  # noqa: E402
from levit_tools.measure import markdown_table  # noqa: E402
from levit_tools.results import add_results_arg, report  # noqa: E402

PATHS = ('fp32 eager', 'deploy', 'compiled', 'bf16', 'int8 dynamic', 'ort fp32',
         'ort int8 dynamic', 'ort int8 static', 'ort int8 static+conv', 'fast', 'fast compiled',
         'fast bf16', 'fast ort fp32', 'fast ort int8 static', 'fast openvino fp32')
#: the fast deploy graph's paths, as levit_tools.bench.runs names them
FAST_PATHS = {'fast': 'eager', 'fast compiled': 'compiled', 'fast bf16': 'bf16',
              'fast ort fp32': 'ort fp32', 'fast ort int8 static': 'ort int8 static levit_mm',
              'fast openvino fp32': 'openvino fp32'}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='training-form model config')
    parser.add_argument('checkpoint', help='weights for the config')
    parser.add_argument('--calib-images', type=int, default=256,
                        help='training images that calibrate the static int8 path')
    parser.add_argument('--paths', nargs='+', choices=PATHS,
                        help='default: every path this installation can run (OpenVINO\'s '
                             'only where openvino is installed)')
    parser.add_argument('--max-images', type=int, help='evaluate on the first N test images')
    parser.add_argument('--batch', type=int, default=64)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    add_results_arg(parser, 'precision')
    return parser.parse_args(argv)


def default_paths():
    """Every path, less OpenVINO's where openvino is not installed (an optional runtime)."""
    from levit_mm.deploy import openvino_available
    if openvino_available():
        return list(PATHS)
    print('fast openvino fp32: skipped, openvino is not installed (pip install openvino)')
    return [p for p in PATHS if 'openvino' not in p]


def torch_paths(names, eager, deploy):
    """The PyTorch paths of the folded model."""
    from levit_mm.deploy import compile_for_inference
    from levit_mm.deploy.precision import bf16_autocast, quantize_int8

    def bf16(x):
        with bf16_autocast():
            return deploy(x).float()

    builders = {'fp32 eager': lambda: eager, 'deploy': lambda: deploy,
                'compiled': lambda: compile_for_inference(deploy), 'bf16': lambda: bf16,
                'int8 dynamic': lambda: quantize_int8(deploy)}
    return {name: build() for name, build in builders.items() if name in names}


def ort_paths(names, deploy, calibration, shape, tmp_dir, threads):
    """The onnxruntime paths of the folded model (fixed-shape export)."""
    from levit_mm.deploy.onnx import (export_onnx, ort_runner, ort_session,
                                      quantize_onnx_int8)
    from levit_mm.deploy.static_int8 import quantize_static_int8
    src = osp.join(tmp_dir, 'fp32.onnx')
    export_onnx(deploy, src, shape, dynamic_hw=False)
    files = {'ort fp32': lambda: src,
             'ort int8 dynamic': lambda: quantize_onnx_int8(
                 src, osp.join(tmp_dir, 'int8-dynamic.onnx'))}
    for name, convs in (('ort int8 static', False), ('ort int8 static+conv', True)):
        files[name] = lambda name=name, convs=convs: quantize_static_int8(
            src, osp.join(tmp_dir, f'{name.replace(" ", "-")}.onnx'), calibration,
            int8_convs=convs)
    return {name: ort_runner(ort_session(make(), threads)) for name, make in files.items()
            if name in names}


def build_paths(names, model, calibration, shape, tmp_dir, threads):
    """``{name: callable(x) -> logits}`` for the requested paths."""
    import copy

    from levit_mm.deploy import LogitsWrapper, switch_to_deploy
    from levit_mm.deploy.fast import to_fast_graph
    from levit_tools.bench.runs import path_builders

    eager = LogitsWrapper(model).eval()
    deploy = switch_to_deploy(copy.deepcopy(eager))
    paths = torch_paths(set(names) | {'fp32 eager'}, eager, deploy)
    if any(n.startswith('ort') for n in names):
        paths.update(ort_paths(names, deploy, calibration, shape, tmp_dir, threads))
    if any(n in FAST_PATHS for n in names):
        builders = path_builders('fast', to_fast_graph(deploy), tmp_dir, shape, calibration,
                                 [threads])
        paths.update({n: builders[FAST_PATHS[n]]()[threads] for n in names
                      if n in FAST_PATHS})
    return {n: paths[n] for n in PATHS if n in paths}


def evaluate(paths, batches):
    """Logits of every path on every batch; returns ``({name: logits}, labels)``."""
    logits = {name: [] for name in paths}
    labels = []
    with torch.inference_mode():
        for x, y in batches:
            labels.append(y)
            for name, fn in paths.items():
                logits[name].append(fn(x).float())
    return {n: torch.cat(v) for n, v in logits.items()}, torch.cat(labels)


def score(logits, labels):
    """Rows: (path, top-1 %, agreement with fp32 eager %, max |logit diff|)."""
    from levit_tools.sample_images import agreement
    reference = logits['fp32 eager']
    rows = []
    for name, out in logits.items():
        top1 = 100 * (out.argmax(1) == labels).float().mean().item()
        agree, diff, _ = agreement(reference, out)
        rows.append((name, top1, 100 * agree, diff))
    return rows


def main(argv=None):
    args = parse_args(argv)
    from levit_tools.config_data import config_batches, load_classifier, load_config
    if args.calib_images < 1:
        raise ValueError(f'--calib-images must be at least 1, got {args.calib_images}.')
    warnings.filterwarnings('ignore')
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config, args.cfg_options)
    model = load_classifier(cfg, args.checkpoint)
    test = list(config_batches(cfg, model, 'test', batch_size=args.batch))
    if args.max_images is not None:
        if args.max_images < 1:
            raise ValueError(f'--max-images must be at least 1, got {args.max_images}.')
        kept, count = [], 0
        for x, y in test:
            if count >= args.max_images:
                break
            room = args.max_images - count
            kept.append((x[:room], y[:room]))
            count += len(y[:room])
        test = kept
    shape = tuple(test[0][0].shape[2:])
    calibration = [x for x, _ in config_batches(cfg, model, 'train', num=args.calib_images,
                                                 batch_size=args.batch)]
    with tempfile.TemporaryDirectory() as tmp_dir:
        start = time.time()
        paths = build_paths(args.paths or default_paths(), model, calibration, shape,
                            tmp_dir, args.threads)
        logits, labels = evaluate(paths, test)
        rows = score(logits, labels)
    lines = [f'{args.config} ({args.checkpoint}): {len(labels)} test images at '
             f'{shape[0]}x{shape[1]}; static int8 calibrated on '
             f'{sum(len(c) for c in calibration)} training images; {args.threads} thread(s); '
             f'{time.time() - start:.0f} s. Max abs dlogit: the largest logit difference '
             f'from fp32 eager, whose logits reach '
             f'{logits["fp32 eager"].abs().max().item():.1f} in magnitude.', '']
    fp32_top1 = rows[0][1]
    lines += markdown_table(
        ('path', 'top-1 %', 'vs fp32 (points)', 'agrees with fp32 %', 'max abs dlogit'),
        [(name, f'{top1:.2f}', f'{top1 - fp32_top1:+.2f}', f'{agree:.2f}', f'{diff:.1e}')
         for name, top1, agree, diff in rows])
    report(lines, args.results, 'Accuracy of every inference path on held-out images')
    return rows


if __name__ == '__main__':
    run_cli(main)
