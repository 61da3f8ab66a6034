"""Evaluate a checkpoint with mmengine's Runner (levit_mm registered).

    python tools/test.py configs/levit/levit-256_8xb256_in1k.py CKPT
prints ``accuracy/top1`` and ``accuracy/top5``.  An unreadable image stops it with one line
naming the file and how many images were done; ``--skip-bad-images`` leaves such images out
and adds ``images/evaluated`` and ``images/skipped`` to the metrics.  ``--out`` is written
atomically; it and the work dir are checked for writing before the run.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.dist import is_main_process  # noqa: E402
from mmengine.model import is_model_wrapper  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import levit_mm  # noqa: E402,F401  (registers the LeViT modules)
from levit_mm.convert import load_checkpoint_strict  # noqa: E402
from levit_mm.fileio import atomic_output  # noqa: E402
from levit_tools.cli import (check_output_file, load_run_config, parse_runner_args,  # noqa: E402
                             run_cli, set_work_dir)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file (path or URL)')
    parser.add_argument('--work-dir', help='the dir to save logs and results')
    parser.add_argument('--out', help='dump the metrics (or predictions with '
                        '--out-item pred) to this pickle/json file')
    parser.add_argument('--out-item', choices=['metrics', 'pred'], default='metrics')
    parser.add_argument('--batch-size', type=int, help='override the test batch size')
    parser.add_argument('--amp', action='store_true', help='mixed-precision inference')
    return parse_runner_args(parser, argv)


def merge_args(cfg, args):
    set_work_dir(cfg, args.work_dir, args.config)
    cfg.load_from = args.checkpoint
    cfg.launcher = args.launcher
    # A checkpoint trained with EMA holds the EMA weights in `state_dict`, which is what is
    # loaded here; an EMAHook would swap in a copy of those same weights and, with
    # `evaluate_on_origin`, test them a second time under the raw weights' name.
    cfg.custom_hooks = [hook for hook in cfg.get('custom_hooks', [])
                        if 'EMAHook' not in str(hook.get('type'))]
    if args.batch_size is not None:
        cfg.test_dataloader.batch_size = args.batch_size
    if args.amp:
        cfg.test_cfg.fp16 = True
    if args.out is not None:
        if args.out_item == 'pred':
            cfg.test_evaluator = [cfg.test_evaluator] if isinstance(
                cfg.test_evaluator, dict) else list(cfg.test_evaluator)
            cfg.test_evaluator.append(dict(type='AtomicDumpResults', out_file_path=args.out))
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    return cfg


def main(argv=None):
    args = parse_args(argv)
    check_output_file(args.out)
    cfg = load_run_config(args, merge_args)
    # Loaded here rather than by the Runner (which only warns about tensors that do not
    # fit and would then report the accuracy of a half-random model).
    checkpoint, cfg.load_from = cfg.load_from, None
    runner = Runner.from_cfg(cfg)
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    load_checkpoint_strict(model, checkpoint)
    runner.logger.info('Testing the loaded weights (a checkpoint trained with EMA holds the '
                       'EMA weights in its state_dict).')
    metrics = runner.test()
    if not is_main_process():  # every rank holds the gathered metrics; report them once
        return metrics
    if args.out is not None and args.out_item == 'metrics':
        from mmengine.fileio import dump
        with atomic_output(args.out, osp.splitext(args.out)[1]) as tmp:
            dump(metrics, tmp)
    for name, value in metrics.items():
        print(f'{name}: {value:.4f}' if isinstance(value, float) else f'{name}: {value}')
    return metrics


if __name__ == '__main__':
    run_cli(main)
