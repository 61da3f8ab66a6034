"""Training-engine extensions: checkpoints that survive a kill, exact resume and the official
recipe's gradient clipping (AGC).  The recipe's weight EMA is mmpretrain's own ``EMAHook``."""
from .agc import AGCOptimWrapper, AmpAGCOptimWrapper
from .atomic_checkpoint import AtomicCheckpointHook
from .rng_state import RNGStateHook

__all__ = ['AGCOptimWrapper', 'AmpAGCOptimWrapper', 'AtomicCheckpointHook', 'RNGStateHook']
