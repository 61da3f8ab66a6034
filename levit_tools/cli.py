"""What every command-line tool shares: errors become one clear line and a non-zero exit,
configs and models are built from checked inputs."""
import argparse
import os
import os.path as osp
import sys

from levit_mm.convert import CheckpointUnavailableError

#: Errors a user can fix from the message alone; anything else keeps its traceback.
USER_ERRORS = (CheckpointUnavailableError, FileNotFoundError, ValueError, KeyError)


def add_launcher_args(parser: argparse.ArgumentParser) -> None:
    """``--launcher`` and ``--local-rank``, as every mmengine Runner tool takes them."""
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_runner_args(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """Parse, and export ``LOCAL_RANK`` for launchers that pass it as a flag only."""
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def set_work_dir(cfg, work_dir, config_path: str) -> None:
    """``--work-dir``, else the config's own, else ``work_dirs/<config name>``."""
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])


def load_run_config(args: argparse.Namespace, merge_args):
    """The config of a ``tools/train.py`` / ``tools/test.py`` run: read, the command line
    folded in by ``merge_args(cfg, args)``, its LeViT arch checked, and a CPU-only
    distributed run prepared."""
    from mmengine.config import Config

    from levit_mm.engine.distributed import prepare_cpu_distributed
    from .validation import check_config_arch
    cfg = merge_args(Config.fromfile(args.config), args)
    check_config_arch(cfg, args.config)
    prepare_cpu_distributed(cfg)
    return cfg


def run_cli(main, argv=None) -> None:
    try:
        main(argv)
    except USER_ERRORS as err:
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f'error: {msg}', file=sys.stderr)
        sys.exit(2)


def build_checked_classifier(model: str, checkpoint=None, device: str = 'cpu'):
    """A classifier from a model name or config, with weights that are known to fit it.

    ``checkpoint`` defaults to the model-zoo weights of a name; a config needs one.  Every
    input is checked first (:mod:`levit_tools.validation`), so a typo or a wrong file gives one
    specific message rather than a traceback or a half-random model.
    """
    from mmpretrain import get_model
    from mmpretrain.apis.model import ModelHub

    from levit_mm.convert import load_checkpoint_strict
    from .validation import check_model_source
    check_model_source(model)
    if checkpoint is None:
        if model.endswith('.py'):
            raise ValueError(f'{model!r} is a config file: give its weights with '
                             '--checkpoint, or use a model name for the zoo weights.')
        checkpoint = ModelHub.get(model).weights
    net = get_model(model, pretrained=False)
    load_checkpoint_strict(net, checkpoint)
    return net.to(device).eval()
