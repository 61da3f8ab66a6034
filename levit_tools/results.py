"""Results files: every figure the README quotes comes from one of these, written by the
tool that measured it, with what is needed to reproduce and judge it at the top (the
command, the commit, the date, the machine and the versions)."""
import argparse
import datetime
import os.path as osp
import platform
import subprocess
import sys
from importlib import metadata
from typing import List, Optional, Sequence

from levit_mm.fileio import write_text_atomic

from .cli import check_output_file

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
RESULTS_DIR = osp.join(REPO, 'docs', 'results')
#: CPU features that decide which kernels run (int8 dot products, bf16, vector width)
CPU_FLAGS = ('avx2', 'fma', 'avx512f', 'avx512_vnni', 'avx512_bf16', 'amx_bf16', 'amx_int8',
             'avx_vnni')
PACKAGES = ('torch', 'mmengine', 'mmpretrain', 'mmcv', 'mmdet', 'mmsegmentation', 'timm',
            'transformers', 'onnxruntime', 'openvino', 'numpy')


class _OutputFile(argparse.Action):
    """Store the path once it is known to be writable, so that a read-only or full
    location fails when the command line is read, not after the measurements."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, check_output_file(values))


def add_results_arg(parser: argparse.ArgumentParser, name: str) -> None:
    """``--results PATH``: also write the printed tables to a results file (the README's
    figures come from ``docs/results/<name>.md``)."""
    parser.add_argument('--results', metavar='PATH', nargs='?', action=_OutputFile,
                        const=osp.join(RESULTS_DIR, f'{name}.md'),
                        help='write the tables to a results file with the command, commit, '
                        f'date and machine at its top (default PATH: docs/results/{name}.md)')


def cpu_description() -> str:
    """``'<model name>, N cores; flags avx2 fma ...'`` from ``/proc/cpuinfo``."""
    model, flags, cores = platform.processor() or platform.machine(), set(), 0
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                key, _, value = line.partition(':')
                key, value = key.strip(), value.strip()
                if key == 'model name':
                    model, cores = value, cores + 1
                elif key == 'flags':
                    flags = set(value.split())
    except OSError:
        pass
    present = [flag for flag in CPU_FLAGS if flag in flags]
    return f'{model}, {cores} cores; flags: {" ".join(present) or "none of " + "/".join(CPU_FLAGS)}'


def gpu_description() -> str:
    try:
        import torch
        if torch.cuda.is_available():
            return torch.cuda.get_device_name()
    except ImportError:
        pass
    return 'none'


def versions() -> str:
    found = [f'Python {platform.python_version()}']
    for name in PACKAGES:
        try:
            found.append(f'{name} {metadata.version(name)}')
        except metadata.PackageNotFoundError:
            continue
    return ', '.join(found)


def commit() -> str:
    def git(*args):
        return subprocess.run(['git', *args], cwd=REPO, capture_output=True, text=True)
    head = git('rev-parse', '--short', 'HEAD')
    if head.returncode:
        return 'unknown (not a git checkout)'
    dirty = git('status', '--porcelain', '--untracked-files=no').stdout.strip()
    return head.stdout.strip() + (' with uncommitted changes' if dirty else '')


def header(title: str, argv: Optional[Sequence[str]] = None) -> List[str]:
    argv = list(sys.argv if argv is None else argv)
    if argv and osp.isabs(argv[0]) and argv[0].startswith(REPO):
        argv[0] = osp.relpath(argv[0], REPO)
    date = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')
    return [f'# {title}', '', f'- command: `python {" ".join(argv)}`', f'- commit: {commit()}',
            f'- date: {date}', f'- CPU: {cpu_description()}', f'- GPU: {gpu_description()}',
            f'- versions: {versions()}', '']


def write_results(path: str, title: str, lines: Sequence[str],
                  argv: Optional[Sequence[str]] = None) -> str:
    """Write ``lines`` under the :func:`header` to ``path``, atomically; returns ``path``."""
    write_text_atomic(path, '\n'.join(header(title, argv) + list(lines)) + '\n')
    print(f'results written to {path}')
    return path


def report(lines: Sequence[str], results: Optional[str], title: str,
           preformatted: bool = False) -> None:
    """Print ``lines``; with a ``--results`` path, also write them to that results file
    (``preformatted``: a plain-text table, fenced as such in the file)."""
    print('\n'.join([title, ''] + list(lines)))
    if results:
        lines = ['```'] + list(lines) + ['```'] if preformatted else lines
        write_results(results, title, lines)
