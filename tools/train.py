"""Train a classifier with mmengine's Runner (levit_mm registered).

    python tools/train.py configs/levit/levit-128s_8xb256_in1k.py --work-dir work_dirs/x

The work dir is checked for writing before anything else; an unreadable image stops the
run with one line naming it (``--skip-bad-images``: a warning, and another image instead);
a checkpoint that cannot be written (disk full, quota) ends it with one line, the previous
checkpoint intact.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.runner import Runner  # noqa: E402

import levit_mm  # noqa: E402,F401  (registers the LeViT modules)
from levit_mm.convert import mmengine_checkpoint_globals  # noqa: E402
from levit_tools.cli import load_run_config, parse_runner_args, run_cli, set_work_dir  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from a checkpoint; without a path, from the latest '
                        'checkpoint in the work dir')
    parser.add_argument('--amp', action='store_true', help='mixed-precision training')
    parser.add_argument('--compile', action='store_true',
                        help='torch.compile the training step (mmengine\'s `compile` key); '
                        'the first iterations are slow while it compiles')
    parser.add_argument('--no-validate', action='store_true',
                        help='do not evaluate checkpoints during training')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr by the real batch size (auto_scale_lr)')
    parser.add_argument('--no-pin-memory', action='store_true')
    parser.add_argument('--no-persistent-workers', action='store_true')
    return parse_runner_args(parser, argv, 'override config entries, e.g. train_cfg.max_epochs=3')


def merge_args(cfg, args):
    """Fold the command-line flags into the config, the way mmpretrain's tools do."""
    set_work_dir(cfg, args.work_dir, args.config)
    if args.amp:
        # The recipe's AGC wrapper has a mixed-precision twin (levit_mm/engine/agc.py).
        agc = cfg.optim_wrapper.get('type') == 'AGCOptimWrapper'
        cfg.optim_wrapper.type = 'AmpAGCOptimWrapper' if agc else 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.compile:
        cfg.compile = cfg.get('compile') or True
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True
    for split in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(split, None)
        if loader is None:
            continue
        if args.no_pin_memory:
            loader['pin_memory'] = False
        if args.no_persistent_workers:
            loader['persistent_workers'] = False
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    return cfg


def main(argv=None):
    args = parse_args(argv)
    cfg = load_run_config(args, merge_args)
    runner = Runner.from_cfg(cfg)
    # --resume / load_from read mmengine training checkpoints (message hub included).
    with mmengine_checkpoint_globals():
        runner.train()


if __name__ == '__main__':
    run_cli(main)
