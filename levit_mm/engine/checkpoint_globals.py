"""Let ``torch.load(weights_only=True)`` (the default since torch 2.6) read mmengine's own
training checkpoints.

mmengine 0.10 saves the message hub (``HistoryBuffer`` objects holding NumPy arrays, whose
statistics methods are pickled through ``getattr``) in every checkpoint, and loads with
torch's default, so ``--resume`` and loading a training checkpoint fail with
"Weights only load failed".  :func:`mmengine_checkpoint_globals` allow-lists exactly the
globals those checkpoints contain, for the duration of a ``with`` block.

Trust: ``getattr`` is among them, which weakens the weights-only guarantee; use it for
checkpoints you or your training runs wrote (work dirs, model-zoo files), as mmengine did
before torch 2.6.
"""
import builtins
import contextlib

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer


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
    return [HistoryBuffer, builtins.getattr] + _numpy_globals()


@contextlib.contextmanager
def mmengine_checkpoint_globals():
    with torch.serialization.safe_globals(mmengine_globals()):
        yield
