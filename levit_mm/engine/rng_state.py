"""Random states in checkpoints, restored where the interrupted run would have gone on.

mmengine re-seeds a resumed run from the config seed and, in ``IterBasedTrainLoop``, replays
the data loader up to the checkpoint's iteration.  The order of samples then matches, but
every random draw after the seed (augmentations in the main process, Mixup/CutMix, drop
path) comes from a different stream than in the uninterrupted run.  This hook saves the
Python, NumPy and torch random states with each checkpoint and puts them back exactly
before the first batch after the replay, so the resumed run continues the same stream.

Limits: the states are the main process's of rank 0 (ranks share them under mmengine's
default ``diff_rank_seed=False``); data-loader workers are re-seeded by PyTorch per epoch,
so bit-exact resume needs ``num_workers=0`` or worker-side randomness that is seeded per
sample.  ``EpochBasedTrainLoop`` restarts an interrupted epoch from its beginning (an
mmengine choice), so exact mid-epoch resume needs ``IterBasedTrainLoop``.
"""
import random
from typing import Callable, Optional

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.runner import IterBasedTrainLoop
from mmpretrain.registry import HOOKS

RNG_KEY = 'rng_state'


def capture_rng_state() -> dict:
    """Python, NumPy and torch states, as tensors and plain ints (``weights_only``-safe)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = dict(
        python=torch.tensor(random.getstate()[1], dtype=torch.int64),
        numpy=dict(kind=kind, keys=torch.from_numpy(keys.astype(np.int64)), pos=int(pos),
                   has_gauss=int(has_gauss), gauss=float(gauss)),
        torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    random.setstate((3, tuple(int(v) for v in state['python']), None))
    npy = state['numpy']
    np.random.set_state((npy['kind'], npy['keys'].numpy().astype(np.uint32), npy['pos'],
                         npy['has_gauss'], npy['gauss']))
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


class _RestoreBeforeBatch:
    """Iterator proxy: runs ``restore`` just before handing out batch number ``index``."""

    def __init__(self, iterator, index: int, restore: Callable[[], None]):
        self._iterator, self._left, self._restore = iterator, index, restore

    def __iter__(self):
        return self

    def __next__(self):
        if self._left == 0 and self._restore is not None:
            self._restore()
            self._restore = None
        self._left -= 1
        return next(self._iterator)

    def __getattr__(self, name):
        return getattr(self._iterator, name)


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Save random states in every checkpoint; restore them exactly on resume."""

    priority = 'VERY_LOW'

    def __init__(self):
        self._resumed: Optional[dict] = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint[RNG_KEY] = capture_rng_state()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        # Also called for `load_from` (fine-tuning): only a resume continues a stream.
        self._resumed = checkpoint.get(RNG_KEY) if runner._resume else None

    def before_train(self, runner) -> None:
        state, self._resumed = self._resumed, None
        if state is None:
            return
        loop = runner.train_loop
        if isinstance(loop, IterBasedTrainLoop) and loop.iter > 0:
            # The loop replays `loop.iter` batches first; restore after them.
            loop.dataloader_iterator = _RestoreBeforeBatch(
                loop.dataloader_iterator, loop.iter, lambda: restore_rng_state(state))
        else:
            restore_rng_state(state)
