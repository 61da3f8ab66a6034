"""Reading and writing checkpoint files safely.

Reading never runs code from the file: ``torch.load(weights_only=True)`` (or safetensors),
and a pickle that asks for a Python global is refused with the name of that global.  Writing
goes to a temporary file in the target directory, renamed into place only when complete, so
a failure never leaves a half-written checkpoint.
"""
import argparse
import os
import os.path as osp
import pickle
import re
import tempfile
from typing import Any

import torch

from .converter import CheckpointFormatError


#: plain-data classes allowed besides tensors: the official/DeiT training scripts save
#: their ``argparse.Namespace`` as ``'args'`` next to ``'model'``
SAFE_GLOBALS = [argparse.Namespace]


class UnsafeCheckpointError(CheckpointFormatError):
    """The file's pickle would import or call Python code; it was not loaded."""


def load_checkpoint_file(path: str) -> Any:
    """Load a ``.pth``/``.pt``/``.bin`` (torch) or ``.safetensors`` file on the CPU without
    executing any code from it."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'Checkpoint file not found: {path}')
    if osp.getsize(path) == 0:
        raise CheckpointFormatError(f'{path} is empty (0 bytes), not a checkpoint.')
    if path.endswith('.safetensors'):
        return _load_safetensors(path)
    with open(path, 'rb') as f:
        magic = f.read(2)
    is_zip = magic == b'PK'  # torch.save's format since 1.6
    is_pickle = magic[:1] == b'\x80'  # legacy torch.save / plain pickle
    if not (is_zip or is_pickle):
        raise CheckpointFormatError(
            f'{path} is not a PyTorch checkpoint: expected a torch.save zip archive or a '
            f'pickle, found a file starting with {magic!r}.')
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r'GLOBAL ([\w.]+)', str(err))
        what = f'the Python object {found.group(1)}' if found else 'Python objects'
        raise UnsafeCheckpointError(
            f'Refused to load {path}: its pickle references {what}, which could run code '
            'when loaded. Only plain tensor checkpoints are read (torch.load with '
            'weights_only=True). If you trust the file, re-save just its tensors, e.g. '
            'torch.save(torch.load(path, weights_only=False)["model"], new_path).') from None
    except (RuntimeError, EOFError, KeyError, ValueError, OSError) as err:
        state = 'truncated or corrupt' if is_zip else 'not a readable PyTorch checkpoint'
        raise CheckpointFormatError(
            f'{path} is {state}: torch.load failed with {type(err).__name__}: '
            f'{str(err).splitlines()[0] if str(err) else "(no message)"}') from None


def _load_safetensors(path: str) -> Any:
    try:
        from safetensors.torch import load_file
    except ImportError:  # pragma: no cover - transformers/timm install it
        raise CheckpointFormatError(
            f'{path} is a safetensors file; install the "safetensors" package.') from None
    try:
        return load_file(path, device='cpu')
    except Exception as err:  # safetensors raises its own error types
        raise CheckpointFormatError(
            f'{path} is not a readable safetensors file: {err}') from None


def save_checkpoint_atomic(obj: Any, path: str) -> None:
    """``torch.save`` to ``path`` via a temporary file in the same directory and a rename,
    so ``path`` is either the complete new file or untouched."""
    directory = osp.dirname(osp.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.levit_convert_', suffix='.tmp', dir=directory)
    try:
        with os.fdopen(fd, 'wb') as f:
            torch.save(obj, f)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.unlink(tmp)
        raise
