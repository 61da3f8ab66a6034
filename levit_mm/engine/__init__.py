"""Training-engine extensions: checkpoints that survive a kill, exact resume, the official
recipe's gradient clipping (AGC) and weight EMA, runs that name an unreadable image."""
from .agc import AGCOptimWrapper, AmpAGCOptimWrapper
from .atomic_checkpoint import AtomicCheckpointHook, AtomicDumpResults
from .bad_images import SkipUnreadableImages, UnreadableImageHook, guard_image_loading
from .ema import LeViTEMAHook
from .plain_checkpoint import PlainCheckpointHook
from .rng_state import RNGStateHook

__all__ = ['AGCOptimWrapper', 'AmpAGCOptimWrapper', 'AtomicCheckpointHook', 'AtomicDumpResults',
           'LeViTEMAHook', 'PlainCheckpointHook', 'RNGStateHook', 'SkipUnreadableImages',
           'UnreadableImageHook', 'guard_image_loading']
