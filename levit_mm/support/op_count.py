"""Counting the aten operators a piece of code dispatches: a hardware-independent measure
of launch overhead (on a GPU, each one is at least one kernel launch or a Python/C++ round
trip; a training step that dispatches fewer ops keeps the GPU busier)."""
from collections import Counter
from typing import Callable

import torch
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

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def count_ops(fn: Callable[[], object]) -> Counter:
    """The aten ops dispatched by one call of ``fn``."""
    with OpCounter() as ops:
        fn()
    return ops.counts


def training_step(model: torch.nn.Module, loss_fn: Callable[[], torch.Tensor],
                  optimizer: torch.optim.Optimizer) -> Callable[[], None]:
    """One step: ``loss_fn()`` (forward and loss), backward, optimizer step, zero grads."""

    def step():
        loss = loss_fn()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step
