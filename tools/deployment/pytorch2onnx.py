"""Export a LeViT classifier's deploy form to ONNX, check it against PyTorch, time it.

    python tools/deployment/pytorch2onnx.py configs/levit/levit-128s_8xb256_in1k.py \\
        --checkpoint CKPT --output-file levit-128s.onnx [--shape 224 224] [--static-hw]

A training-form config/checkpoint is folded after loading; a config from
``configs/levit/deploy/`` takes a folded checkpoint.  Batch is dynamic; height and width
are dynamic unless ``--static-hw`` (needed above the trained size, see
:mod:`levit_mm.deploy.onnx`).  The check runs onnxruntime and PyTorch on the same random
batches (batch 1 and 3 at the export size, plus a smaller size when H/W are dynamic) and
fails if the max abs logit difference exceeds ``--atol``.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.runner import load_checkpoint  # noqa: E402

import levit_mm  # noqa: E402,F401  (registers the LeViT modules)
from levit_mm.deploy import (LogitsWrapper, export_onnx, ort_runner, ort_session,  # noqa: E402
                             switch_to_deploy)
from levit_mm.deploy.timing import time_interleaved  # noqa: E402
from levit_tools.cli import check_output_file, run_cli  # noqa: E402
from levit_tools.measure import num_threads  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='model config (training or deploy form)')
    parser.add_argument('--checkpoint', help='checkpoint matching the config form; '
                        'random weights if omitted')
    parser.add_argument('--output-file', default='levit.onnx')
    parser.add_argument('--shape', type=int, nargs=2, default=[224, 224],
                        metavar=('H', 'W'), help='export (and check) input size')
    parser.add_argument('--static-hw', action='store_true',
                        help='fix height/width (required above the trained size)')
    parser.add_argument('--opset', type=int, default=17)
    parser.add_argument('--atol', type=float, default=1e-4,
                        help='max abs logit difference allowed in the check')
    parser.add_argument('--threads', type=int, default=1, help='threads for timing')
    parser.add_argument('--time-iters', type=int, default=10,
                        help='timed batch-16 runs per backend (0: skip timing)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def build_deploy_model(config: str, checkpoint=None, cfg_options=None):
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope('mmpretrain')
    from mmpretrain.registry import MODELS
    model = MODELS.build(cfg.model)
    if checkpoint:
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True,
                        logger='silent')
    switch_to_deploy(model)  # no-op for modules built with deploy=True
    img_size = cfg.model.backbone.get('img_size', 224)
    trained = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
    return LogitsWrapper(model).eval(), trained


def check(model, run_onnx, shapes, atol):
    worst = 0.
    for batch, h, w in shapes:
        x = torch.randn(batch, 3, h, w, generator=torch.Generator().manual_seed(batch))
        with torch.no_grad():
            expected = model(x)
        diff = (run_onnx(x) - expected).abs().max().item()
        print(f'  onnxruntime vs PyTorch, input {(batch, 3, h, w)}: max abs diff {diff:.2e}')
        worst = max(worst, diff)
    if worst > atol:
        raise ValueError(f'onnxruntime output differs from PyTorch by {worst:.3e} > '
                         f'--atol {atol}.')
    return worst


def main(argv=None):
    args = parse_args(argv)
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'No config at {args.config!r}.')
    check_output_file(args.output_file)
    model, trained = build_deploy_model(args.config, args.checkpoint, args.cfg_options)
    h, w = args.shape
    export_onnx(model, args.output_file, (h, w), dynamic_hw=not args.static_hw,
                opset=args.opset, trained_size=trained)
    print(f'Exported {args.output_file} (dynamic batch'
          f'{"" if args.static_hw else ", height, width"})')
    session = ort_session(args.output_file, threads=args.threads)
    run_onnx = ort_runner(session)
    shapes = [(1, h, w), (3, h, w)]
    if not args.static_hw:
        shapes.append((2, max(32, h * 3 // 4), max(32, w // 2)))
    worst = check(model, run_onnx, shapes, args.atol)
    print(f'max abs diff {worst:.2e} <= {args.atol}: OK')
    if args.time_iters > 0:
        x = torch.randn(16, 3, h, w)
        with num_threads(args.threads):
            best = time_interleaved({'PyTorch': model, 'onnxruntime': run_onnx}, x, 1,
                                    args.time_iters)
        print(f'batch 16, {args.threads} thread(s): ' + ', '.join(
            f'{name} {16 / seconds:.1f} img/s' for name, seconds in best.items()))


if __name__ == '__main__':
    run_cli(main)
