"""Training-engine extensions: checkpoints that survive a kill, exact resume, the official
recipe's gradient clipping (AGC) and weight EMA."""
from .agc import AGCOptimWrapper, AmpAGCOptimWrapper
from .atomic_checkpoint import AtomicCheckpointHook
from .ema import LeViTEMAHook
from .plain_checkpoint import PlainCheckpointHook
from .rng_state import RNGStateHook

__all__ = ['AGCOptimWrapper', 'AmpAGCOptimWrapper', 'AtomicCheckpointHook', 'LeViTEMAHook',
           'PlainCheckpointHook', 'RNGStateHook']
