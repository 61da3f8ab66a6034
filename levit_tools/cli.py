"""What every command-line tool shares: errors become one clear line and a non-zero exit,
output locations are checked before the work starts, configs and models are built from
checked inputs."""
import argparse
import errno
import os
import os.path as osp
import sys
import tempfile
from typing import List, Optional

from levit_mm.convert import CheckpointUnavailableError
from levit_mm.fileio import OutputWriteError

#: Errors a user can fix from the message alone; anything else keeps its traceback.
#: Operating-system faults (``OSError`` with an errno) are reported too, in plain words.
USER_ERRORS = (CheckpointUnavailableError, FileNotFoundError, ValueError, KeyError)

#: The faults a cluster's disks and mounts produce, in plain words.
OS_FAULTS = {
    errno.EROFS: 'the file system is read-only',
    errno.EACCES: 'permission denied',
    errno.EPERM: 'the operation is not permitted',
    errno.ENOSPC: 'no space left on the device',
    errno.EDQUOT: 'the disk quota is exceeded',
    errno.ENOENT: 'no such file or folder',
    errno.ENOTDIR: 'a part of the path is a file, not a folder',
    errno.EISDIR: 'it is a folder',
    errno.EFBIG: 'the file is larger than the file system or the file-size limit '
                 '(ulimit -f) allows',
    errno.EIO: 'input/output error (a failing disk or network file system)',
    errno.ENAMETOOLONG: 'the name is too long',
    errno.EMFILE: 'too many open files (ulimit -n)',
    errno.ESTALE: 'stale network file handle',
}
#: What to do when a write fails, by errno.
WRITE_ADVICE = {
    errno.EROFS: 'choose a writable location',
    errno.EACCES: 'choose a location you may write to',
    errno.EPERM: 'choose a location you may write to',
    errno.ENOSPC: 'free some space or write elsewhere',
    errno.EDQUOT: 'free some of your quota or write elsewhere',
    errno.ENOENT: 'a folder on its path is missing',
}
#: Faults that only a write produces: when one comes without a path, it was an output.
WRITE_ONLY = (errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
#: The output locations the running tool checked (named when a fault has no path).
_OUTPUTS: List[str] = []


def add_launcher_args(parser: argparse.ArgumentParser) -> None:
    """``--launcher`` and ``--local-rank``, as every mmengine Runner tool takes them."""
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_runner_args(parser: argparse.ArgumentParser, argv=None,
                      cfg_options_help: str = 'override config entries'
                      ) -> argparse.Namespace:
    """Add the options every Runner tool shares (``--cfg-options``, ``--skip-bad-images``,
    the launcher's), parse, and export ``LOCAL_RANK`` for launchers that pass it as a
    flag only."""
    from mmengine.config import DictAction
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help=cfg_options_help)
    add_skip_bad_images_arg(parser)
    add_launcher_args(parser)
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


def add_skip_bad_images_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--skip-bad-images', action='store_true',
                        help='leave unreadable images out (a warning each; the metrics '
                        'give the images evaluated and skipped) instead of stopping at '
                        'the first one (config key: skip_bad_images)')


def load_run_config(args: argparse.Namespace, merge_args):
    """The config of a ``tools/train.py`` / ``tools/test.py`` run: read, the command line
    folded in by ``merge_args(cfg, args)``, its LeViT arch checked, its work dir checked for
    writing (before any work), its image loading guarded
    (:func:`levit_mm.engine.guard_image_loading`), and a CPU-only distributed run
    prepared."""
    from mmengine.config import Config

    from levit_mm.engine import guard_image_loading
    from levit_mm.engine.distributed import prepare_cpu_distributed
    from .validation import check_config_arch
    check_output_dir(getattr(args, 'work_dir', None))  # before reading the config even
    cfg = merge_args(Config.fromfile(args.config), args)
    if getattr(args, 'skip_bad_images', False):
        cfg.skip_bad_images = True
    check_config_arch(cfg, args.config)
    if cfg.work_dir != getattr(args, 'work_dir', None):
        check_output_dir(cfg.work_dir)
    guard_image_loading(cfg)
    prepare_cpu_distributed(cfg)
    return cfg


def run_cli(main, argv=None) -> None:
    """Run a tool's ``main``: a user mistake or an operating-system fault (read-only,
    permission, disk full, quota, missing folder) ends it with one ``error:`` line and exit
    status 2; anything else (a bug) keeps its traceback."""
    del _OUTPUTS[:]
    try:
        main(argv)
    except OSError as err:
        if err.errno is None and not isinstance(err, FileNotFoundError):
            raise
        _fail(os_fault_message(err) if err.errno is not None else one_line(err))
    except USER_ERRORS as err:
        _fail(one_line(err.args[0] if isinstance(err, KeyError) and err.args else err))


def _fail(message: str) -> None:
    print(f'error: {message}', file=sys.stderr)
    sys.exit(2)


def one_line(message) -> str:
    """The message itself, also when a DataLoader worker re-raised it wrapped in its
    traceback ("Caught ... in DataLoader worker process 0. Original Traceback ...")."""
    text = str(message)
    if 'Original Traceback' in text:
        last = text.rstrip().splitlines()[-1]
        text = last.split(': ', 1)[1] if ': ' in last else last
    return text


def os_fault_message(err: OSError) -> str:
    """``cannot write 'PATH': no space left on the device (ENOSPC); free some space or
    write elsewhere.`` and the like: the path, the cause in plain words, the errno name."""
    name = errno.errorcode.get(err.errno, str(err.errno))
    cause = f'{OS_FAULTS.get(err.errno, err.strerror or os.strerror(err.errno))} ({name})'
    writing = isinstance(err, OutputWriteError) or err.errno in WRITE_ONLY
    if err.filename is not None:
        where = repr(err.filename) + (f' -> {err.filename2!r}' if err.filename2 else '')
    elif writing and _OUTPUTS:
        where = 'under ' + ' or '.join(repr(path) for path in _OUTPUTS)
    else:
        where = ''
    if not writing:
        return f'{where}: {cause}.' if where else f'{cause}.'
    advice = WRITE_ADVICE.get(err.errno)
    return (f'cannot write {where}'.rstrip() + f': {cause}' +
            (f'; {advice}.' if advice else '.'))


def check_output_dir(path: Optional[str]) -> Optional[str]:
    """Fail now, in one line, if files cannot be created under the folder ``path`` (read-only,
    no permission, disk full ...), rather than after the work; ``None`` passes.  The
    folder itself is not created."""
    if path is not None:
        _probe(path, path)
        _remember(path)
    return path


def check_output_file(path: Optional[str]) -> Optional[str]:
    """:func:`check_output_dir` for the folder of the file ``path``; ``None`` passes."""
    if path is not None:
        if osp.isdir(path):
            raise OutputWriteError(errno.EISDIR, os.strerror(errno.EISDIR), path)
        _probe(osp.dirname(osp.abspath(path)), path)
        _remember(osp.dirname(osp.abspath(path)))
    return path


def _remember(folder: str) -> None:
    if folder not in _OUTPUTS:
        _OUTPUTS.append(folder)


def _probe(directory: str, name: str) -> None:
    """Write one byte to a temporary file in ``directory`` (or its nearest existing
    parent, where the tool will create it), then remove it; a fault names ``name``."""
    existing = osp.abspath(directory)
    while not osp.isdir(existing):
        if osp.lexists(existing):
            raise OutputWriteError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), name)
        existing = osp.dirname(existing)
    probe = None
    try:
        fd, probe = tempfile.mkstemp(prefix='.write-check-', dir=existing)
        try:
            os.write(fd, b'\0')
        finally:
            os.close(fd)
    except OSError as err:
        raise OutputWriteError(err.errno, os.strerror(err.errno), name) from None
    finally:
        if probe is not None and osp.lexists(probe):
            os.remove(probe)


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
