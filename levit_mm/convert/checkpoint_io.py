"""Reading checkpoint files safely, and finding the weights inside them.

Reading never runs code from the file: ``torch.load(weights_only=True)`` (or safetensors),
and a pickle that asks for a Python global is refused with the name of that global.
:func:`unwrap_state_dict` is the one place that knows how checkpoints wrap their tensors.

mmengine 0.10 saves its message hub (``HistoryBuffer`` objects holding NumPy arrays, whose
statistics methods are pickled through ``getattr``) in every training checkpoint and loads
with torch's default, ``weights_only=True`` since torch 2.6, so ``--resume`` and loading a
training checkpoint fail with "Weights only load failed".
:func:`mmengine_checkpoint_globals` allow-lists exactly the globals those checkpoints
contain, for the duration of a ``with`` block.  ``getattr`` is among them, which weakens the
weights-only guarantee: use it for checkpoints you or your training runs wrote (work dirs,
model-zoo files), as mmengine did before torch 2.6.
"""
import argparse
import builtins
import contextlib
import os.path as osp
import pickle
import re
from collections import OrderedDict
from typing import Any, Dict, Mapping

import numpy as np
import torch

from ..finite import check_finite_weights

#: containers a state dict is commonly wrapped in (mmengine, official/DeiT training)
WRAPPER_KEYS = ('state_dict', 'model')


class CheckpointFormatError(ValueError):
    """The checkpoint is not a LeViT in a layout levit_mm knows, or not the expected one."""


#: plain-data classes allowed besides tensors: the official/DeiT training scripts save
#: their ``argparse.Namespace`` as ``'args'`` next to ``'model'``
SAFE_GLOBALS = [argparse.Namespace]


class CheckpointUnavailableError(RuntimeError):
    """A model-zoo checkpoint could neither be downloaded nor found in the cache."""


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


def unwrap_state_dict(checkpoint) -> Dict[str, torch.Tensor]:
    """The tensor dict inside a checkpoint: ``{'state_dict': ...}``, ``{'model': ...}`` or
    the dict itself; a DataParallel ``module.`` prefix is removed."""
    if not isinstance(checkpoint, Mapping):
        raise CheckpointFormatError(
            f'Expected a checkpoint dict of tensors, found a {type(checkpoint).__name__}.')
    for key in WRAPPER_KEYS:
        if isinstance(checkpoint.get(key), Mapping):
            checkpoint = checkpoint[key]
            break
    state = OrderedDict((k, v) for k, v in checkpoint.items() if torch.is_tensor(v))
    if not state:
        raise CheckpointFormatError(
            'Expected a state dict of tensors (optionally under "state_dict" or "model"); '
            f'found no tensors among keys {preview_keys(checkpoint)}.')
    if all(k.startswith('module.') for k in state):
        state = OrderedDict((k[len('module.'):], v) for k, v in state.items())
    return state


def read_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """The weights of a checkpoint file, read safely, unwrapped, and refused if any is
    NaN or infinite."""
    state = unwrap_state_dict(load_checkpoint_file(path))
    check_finite_weights(state, f'Checkpoint {path!r}')
    return state


def preview_keys(keys, n: int = 5) -> str:
    keys = list(keys)
    shown = ', '.join(repr(k) for k in keys[:n])
    return f'[{shown}{", ..." if len(keys) > n else ""}] ({len(keys)} keys)'


def _numpy_globals():
    try:  # NumPy 2
        from numpy._core import multiarray
    except ImportError:
        from numpy.core import multiarray
    found = [np.ndarray, np.dtype, multiarray._reconstruct, multiarray.scalar]
    # NumPy >= 1.25 pickles dtypes by their class (numpy.dtypes.Float64DType ...).
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        found += [getattr(dtypes, name) for name in dir(dtypes) if name.endswith('DType')]
    return found


def mmengine_globals() -> list:
    from mmengine.logging.history_buffer import HistoryBuffer
    return [HistoryBuffer, builtins.getattr] + _numpy_globals()


@contextlib.contextmanager
def mmengine_checkpoint_globals():
    with torch.serialization.safe_globals(mmengine_globals()):
        yield
