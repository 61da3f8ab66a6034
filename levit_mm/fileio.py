"""Writing files so that a reader only ever sees the old file or the complete new one.

Every writer of the package (checkpoints, converted weights, ONNX models, annotated
images, the training hooks) goes through here: write to a partial file in the target
directory, flush it to disk, rename it into place (``os.replace`` is atomic on POSIX).  A
failure or a kill leaves no half-written file behind under the final name, and a failed
write removes its partial file at once (a full disk is not kept full by our leftovers).

A failed write raises :class:`OutputWriteError`: an ``OSError`` with the errno of the
fault and, as its ``filename``, the file the caller asked for (not the partial file's
temporary name), so a tool can say in one line which output failed and why.
"""
import contextlib
import errno
import os
import os.path as osp
import re
import tempfile
from typing import Any, Iterator, Optional

PARTIAL_SUFFIX = '.partial'

#: How torch's zip writer reports a failed write: the OSError behind it is lost.
_TORCH_WRITE_FAILURE = re.compile(r'unexpected pos|PytorchStreamWriter failed|'
                                  r'file write failed')


class OutputWriteError(OSError):
    """Writing the output ``filename`` failed with ``errno`` (no space, read-only, ...)."""


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


def diagnose_write_failure(directory: str) -> int:
    """The likely errno of a write into ``directory`` that failed without saying why
    (torch's ``unexpected pos``): no space, a read-only file system, no permission, or
    ``EIO`` when none of these shows."""
    try:
        stat = os.statvfs(directory)
    except OSError as err:
        return err.errno or errno.EIO
    free_blocks = stat.f_bfree if os.geteuid() == 0 else stat.f_bavail
    if free_blocks * stat.f_frsize < 1 << 20:
        return errno.ENOSPC
    if stat.f_flag & os.ST_RDONLY:
        return errno.EROFS
    if not os.access(directory, os.W_OK):
        return errno.EACCES
    return errno.EIO


def _is_ours(err: OSError, partial: Optional[str], directory: str) -> bool:
    """Did ``err`` come from writing into ``directory`` (rather than from reading some
    input inside the ``with`` block)?"""
    if err.filename is None or err.filename == partial:
        return True
    name = osp.abspath(os.fsdecode(err.filename))
    # the folder itself, a file or folder in it, or a parent being created for it
    return (name == directory or name.startswith(directory + os.sep)
            or directory.startswith(name + os.sep))


@contextlib.contextmanager
def output_errors(path: str, partial: Optional[str] = None) -> Iterator[None]:
    """Inside the block, a failed write into ``path``'s directory (or a temporary folder in
    it) is re-raised as an :class:`OutputWriteError` naming ``path``; ``partial`` (if given)
    is removed when the block fails in any way."""
    directory = osp.dirname(osp.abspath(path))
    try:
        yield
    except OSError as err:
        _remove_quietly(partial)
        if err.errno is None or not _is_ours(err, partial, directory) or (
                isinstance(err, OutputWriteError) and err.filename == path):
            raise
        raise OutputWriteError(err.errno, os.strerror(err.errno), path) from err
    except RuntimeError as err:
        _remove_quietly(partial)
        if not _TORCH_WRITE_FAILURE.search(str(err)):
            raise
        code = diagnose_write_failure(directory)
        raise OutputWriteError(code, os.strerror(code), path) from err
    except BaseException:
        _remove_quietly(partial)
        raise


def _remove_quietly(path: Optional[str]) -> None:
    if path is not None and osp.lexists(path):
        with contextlib.suppress(OSError):
            os.remove(path)


@contextlib.contextmanager
def atomic_output(path: str, suffix: str = '') -> Iterator[str]:
    """Yield a temporary path next to ``path``; publish it as ``path`` when the block
    succeeds, remove it when it fails.  ``suffix`` ends the temporary name (for writers
    that pick the format from the extension, e.g. ``'.png'``)."""
    directory = osp.dirname(osp.abspath(path))
    tmp = None
    with output_errors(path):
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f'{osp.basename(path)}.',
                                   suffix=PARTIAL_SUFFIX + suffix, dir=directory)
        os.close(fd)
    with output_errors(path, partial=tmp):
        yield tmp
        publish_file(tmp, path)


def write_text_atomic(path: str, text: str) -> None:
    with atomic_output(path) as tmp:
        _write_all(tmp, text.encode())


class _FileWriter:
    """The file-like object ``torch.save`` writes through: every byte goes out with
    ``os.write``, and the first ``OSError`` is kept, because torch's zip writer turns it
    into ``RuntimeError('unexpected pos ...')`` and the cause (a full disk) is lost."""

    def __init__(self, fd: int):
        self.fd, self.error = fd, None

    def write(self, data) -> int:
        view = memoryview(data).cast('B')
        size = len(view)
        try:
            while view:
                view = view[os.write(self.fd, view):]
        except OSError as err:
            self.error = self.error or err
            raise
        return size

    def flush(self) -> None:
        pass


def _write_all(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    try:
        _FileWriter(fd).write(data)
    finally:
        os.close(fd)


def save_torch_atomic(obj: Any, path: str) -> None:
    """``torch.save(obj, path)``, atomically; a failed write raises
    :class:`OutputWriteError` with the real cause."""
    import torch
    with atomic_output(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_TRUNC)
        writer = _FileWriter(fd)
        try:
            torch.save(obj, writer)
        except RuntimeError:
            if writer.error is not None:
                raise writer.error from None
            raise
        finally:
            os.close(fd)
