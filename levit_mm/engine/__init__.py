"""Training-engine extensions: checkpoints that survive a kill, exact resume, the official
recipe's gradient clipping (AGC), runs that name an unreadable image, and bare state dicts
for ``load_from``.  The recipe's weight EMA is mmpretrain's own ``EMAHook``."""
from .agc import AGCOptimWrapper, AmpAGCOptimWrapper
from .atomic_checkpoint import AtomicCheckpointHook, AtomicDumpResults
from .bad_images import SkipUnreadableImages, UnreadableImageHook, guard_image_loading
from .plain_checkpoint import PlainCheckpointHook
from .rng_state import RNGStateHook

__all__ = ['AGCOptimWrapper', 'AmpAGCOptimWrapper', 'AtomicCheckpointHook', 'AtomicDumpResults',
           'PlainCheckpointHook', 'RNGStateHook', 'SkipUnreadableImages',
           'UnreadableImageHook', 'guard_image_loading']
