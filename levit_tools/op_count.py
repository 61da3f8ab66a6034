"""Counting the aten operators a piece of code dispatches: a hardware-independent measure
of launch overhead (on a GPU, each one is at least one kernel launch or a Python/C++ round
trip; a training step that dispatches fewer ops keeps the GPU busier)."""
from collections import Counter
from typing import Callable

from torch.utils._python_dispatch import TorchDispatchMode


class OpCounter(TorchDispatchMode):
    """``with OpCounter() as ops: ...`` counts every aten op run inside, backward included
    (autograd dispatches through the mode too); ``ops.counts`` maps op name -> calls."""

    def __init__(self):
        super().__init__()
        self.counts: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.counts[func.overloadpacket.__name__] += 1
        return func(*args, **(kwargs or {}))


def count_ops(fn: Callable[[], object]) -> Counter:
    """The aten ops dispatched by one call of ``fn``."""
    with OpCounter() as ops:
        fn()
    return ops.counts
