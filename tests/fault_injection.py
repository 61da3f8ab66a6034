"""Disk and permission faults injected into the running process, without root.

Tests run as root, so a folder with its write bit removed does not stop a write, and
mounting a read-only or full file system needs privileges.  :func:`disk_fault` patches the
calls through which every writer of the project reaches the disk (``open``/``io.open``,
``os.open``, ``os.write``, ``os.mkdir``; tempfile, shutil, PIL, onnx and mmengine's
LocalBackend all go through them) for paths under one folder:

* ``EROFS``, ``EACCES``, ``EPERM``, ``ENOENT`` (read-only, permission, missing folder): creating
  a file or folder there fails, as the kernel would refuse it;
* ``ENOSPC``, ``EDQUOT`` (disk full, quota): creating works, and the first write to such a
  file puts half its bytes on the disk and then fails, so a partial file is really there.

``match`` (a glob on the file name) limits the fault to some files, ``after`` lets that many
matching files be written whole first (the first checkpoint of a run).  At the first fault
the folder's files are read into ``snapshot`` ({relative path: bytes}), so a test can check
that what was on the disk before the failed write is still there, byte for byte, and that
nothing was left behind.
"""
import builtins
import contextlib
import errno
import fnmatch
import io
import os
import os.path as osp
from typing import Dict, Optional

OPEN_FAULTS = (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOENT)
WRITE_FAULTS = (errno.ENOSPC, errno.EDQUOT)
ALL_FAULTS = OPEN_FAULTS + WRITE_FAULTS
#: plain words each fault's ``error:`` line must contain
PLAIN_WORDS = {errno.EROFS: 'read-only', errno.EACCES: 'permission denied',
               errno.EPERM: 'not permitted', errno.ENOENT: 'no such file or folder',
               errno.ENOSPC: 'no space left', errno.EDQUOT: 'quota'}
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT


def fault_id(code: int) -> str:
    return errno.errorcode[code]


def tree(root) -> Dict[str, bytes]:
    """Every file under ``root``: {path relative to root: its bytes}."""
    files = {}
    for folder, _, names in os.walk(str(root)):
        for name in names:
            path = osp.join(folder, name)
            with open(path, 'rb') as f:
                files[osp.relpath(path, str(root))] = f.read()
    return files


class _HalfWriter:
    """A file object whose first write puts half its bytes on the disk, then fails."""

    def __init__(self, real, code: int):
        self._real, self._code = real, code

    def write(self, data):
        self._real.write(data[:len(data) // 2])
        self._real.flush()
        raise OSError(self._code, os.strerror(self._code))

    def fileno(self):  # writers that find a descriptor write around Python (PIL)
        raise io.UnsupportedOperation('fileno')

    def __getattr__(self, name):
        return getattr(self._real, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._real.close()


class DiskFault:

    def __init__(self, root, code: int, match: str = '*', after: int = 0):
        self.root = osp.abspath(str(root))
        self.code, self.match, self.after = code, match, after
        self.seen = set()
        self.snapshot: Optional[Dict[str, bytes]] = None
        self.fault_fds = set()

    def hits(self, path) -> bool:
        """Is creating/writing ``path`` to fail?  (Counts matching files for ``after``.)"""
        if not isinstance(path, (str, bytes, os.PathLike)) or isinstance(path, int):
            return False
        path = osp.abspath(os.fsdecode(path))
        if not (path + os.sep).startswith(self.root + os.sep):
            return False
        if not fnmatch.fnmatch(osp.basename(path), self.match):
            return False
        self.seen.add(path)
        if len(self.seen) <= self.after:
            return False
        if self.snapshot is None:
            self.snapshot = {k: v for k, v in tree(self.root).items()
                             if osp.join(self.root, k) != path} if osp.isdir(self.root) else {}
        return True

    def error(self, path) -> OSError:
        return OSError(self.code, os.strerror(self.code), os.fsdecode(path))


@contextlib.contextmanager
def disk_fault(root, code: int, match: str = '*', after: int = 0):
    """Inject the fault ``code`` (an errno) for files under ``root``; yields the
    :class:`DiskFault` (its ``snapshot``, taken at the first fault)."""
    fault = DiskFault(root, code, match, after)
    real = dict(open=builtins.open, os_open=os.open, write=os.write, close=os.close,
                mkdir=os.mkdir)

    def fake_open(file, mode='r', *args, **kwargs):
        writing = any(c in mode for c in 'wax+')
        if not writing or not fault.hits(file):
            return real['open'](file, mode, *args, **kwargs)
        if code in OPEN_FAULTS:
            raise fault.error(file)
        return _HalfWriter(real['open'](file, mode, *args, **kwargs), code)

    def fake_os_open(path, flags, *args, **kwargs):
        if not flags & WRITE_FLAGS or not fault.hits(path):
            return real['os_open'](path, flags, *args, **kwargs)
        if code in OPEN_FAULTS:
            raise fault.error(path)
        fd = real['os_open'](path, flags, *args, **kwargs)
        fault.fault_fds.add(fd)
        return fd

    def fake_write(fd, data):
        if fd not in fault.fault_fds:
            return real['write'](fd, data)
        real['write'](fd, bytes(memoryview(data)[:len(data) // 2]))
        raise OSError(code, os.strerror(code))

    def fake_close(fd):
        fault.fault_fds.discard(fd)
        return real['close'](fd)

    def fake_mkdir(path, *args, **kwargs):
        if code in OPEN_FAULTS and fault.hits(path):
            raise fault.error(path)
        return real['mkdir'](path, *args, **kwargs)

    patches = [(builtins, 'open', fake_open), (io, 'open', fake_open),
               (os, 'open', fake_os_open), (os, 'write', fake_write),
               (os, 'close', fake_close), (os, 'mkdir', fake_mkdir)]
    saved = [(module, name, getattr(module, name)) for module, name, _ in patches]
    for module, name, value in patches:
        setattr(module, name, value)
    try:
        yield fault
    finally:
        for module, name, value in saved:
            setattr(module, name, value)
