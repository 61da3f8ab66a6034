"""Training-engine extensions: checkpoints that survive a kill, exact resume."""
from .atomic_checkpoint import AtomicCheckpointHook
from .rng_state import RNGStateHook

__all__ = ['AtomicCheckpointHook', 'RNGStateHook']
