"""Writing files so that a reader only ever sees the old file or the complete new one.

Every writer of the package (checkpoints, converted weights, ONNX models, annotated
images, the training hooks) goes through here: write to a partial file in the target
directory, flush it to disk, rename it into place (``os.replace`` is atomic on POSIX).  A
failure or a kill leaves no half-written file behind under the final name.
"""
import contextlib
import os
import os.path as osp
import tempfile
from typing import Any, Iterator

PARTIAL_SUFFIX = '.partial'


def fsync_path(path: str) -> None:
    """Flush a file's (or a directory's) data to the disk."""
    flags = os.O_RDONLY | getattr(os, 'O_DIRECTORY', 0) if osp.isdir(path) else os.O_RDONLY
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish_file(partial: str, final: str) -> None:
    """Make the complete file ``partial`` appear as ``final`` in one step."""
    fsync_path(partial)
    os.replace(partial, final)
    fsync_path(osp.dirname(osp.abspath(final)))


@contextlib.contextmanager
def atomic_output(path: str, suffix: str = '') -> Iterator[str]:
    """Yield a temporary path next to ``path``; publish it as ``path`` when the block
    succeeds, remove it when it fails.  ``suffix`` ends the temporary name (for writers
    that pick the format from the extension, e.g. ``'.png'``)."""
    directory = osp.dirname(osp.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'{osp.basename(path)}.',
                               suffix=PARTIAL_SUFFIX + suffix, dir=directory)
    os.close(fd)
    try:
        yield tmp
        publish_file(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def write_text_atomic(path: str, text: str) -> None:
    with atomic_output(path) as tmp, open(tmp, 'w') as f:
        f.write(text)


def save_torch_atomic(obj: Any, path: str) -> None:
    """``torch.save(obj, path)``, atomically."""
    import torch
    with atomic_output(path) as tmp:
        torch.save(obj, tmp)
