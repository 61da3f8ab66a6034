"""NaN/Inf checks for inputs and for weights, cheap enough to run on every call or load.

A sum is finite whenever every element is (NaN and Inf propagate), so the common case
costs one reduction per tensor; only a non-finite sum -- a bad element, or an overflow of
large finite values -- pays for the element-wise test.  (``isfinite(x).all()`` alone took
about 5% of a batch-16 LeViT-128S forward.)
"""
import sys
from typing import Mapping, Optional

import torch

#: How many offending tensors a weights message names before summarising the rest.
MAX_LISTED_TENSORS = 3
#: mmengine calls that load a named file: ``load_checkpoint`` (and ``Runner.load_checkpoint``,
#: through which ``Runner.resume`` loads) hold it in ``filename``
LOADING_CALLS = ('load_checkpoint', )


class NonFiniteInputError(ValueError):
    """A NaN or infinite value reached the model's input."""


class NonFiniteWeightsError(ValueError):
    """A checkpoint holds NaN or infinite weights (e.g. from a diverged run)."""


def has_non_finite(x: torch.Tensor) -> bool:
    if not x.is_floating_point() or bool(torch.isfinite(x.sum())):
        return False
    return not bool(torch.isfinite(x).all())


def check_finite(x: torch.Tensor, what: str = 'input') -> None:
    """Raise :class:`NonFiniteInputError` if ``x`` holds NaN or +-Inf, with the counts."""
    if has_non_finite(x):
        nan = int(torch.isnan(x).sum())
        pos = int(torch.isposinf(x).sum())
        neg = int(torch.isneginf(x).sum())
        raise NonFiniteInputError(
            f'The {what} contains non-finite values ({nan} NaN, {pos} +Inf, {neg} -Inf '
            f'of {x.numel()} elements, shape {tuple(x.shape)}); expected finite numbers. '
            'Check how the image was decoded and normalised (a zero std gives Inf).')


def check_finite_weights(state: Mapping[str, torch.Tensor], source: str) -> None:
    """Raise :class:`NonFiniteWeightsError` naming the tensors of ``state`` (a state dict
    read from ``source``) that hold NaN or +-Inf."""
    bad = [(k, v) for k, v in state.items() if torch.is_tensor(v) and has_non_finite(v)]
    if not bad:
        return
    tensors = sum(torch.is_tensor(v) for v in state.values())
    named = ', '.join(f'{k} ({int(torch.isnan(v).sum())} NaN, '
                      f'{int(torch.isinf(v).sum())} Inf)' for k, v in bad[:MAX_LISTED_TENSORS])
    more = f' and {len(bad) - MAX_LISTED_TENSORS} more' if len(bad) > MAX_LISTED_TENSORS else ''
    raise NonFiniteWeightsError(
        f'{source} holds non-finite values (NaN/Inf) in {len(bad)} of {tensors} tensors: '
        f'{named}{more}. The run that wrote it probably diverged; use an earlier '
        'checkpoint.')


def loading_source() -> Optional[str]:
    """The file mmengine is loading, if a load is under way: mmengine hands load hooks
    tensors only, so the name comes from the loading call on the stack (``filename`` of
    ``load_checkpoint``/``Runner.load_checkpoint``, ``checkpoint`` of a ``Pretrained``
    init).  ``None`` for a state dict handed to ``load_state_dict`` directly."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_globals.get('__name__', '').startswith('mmengine.'):
            local = frame.f_locals
            if frame.f_code.co_name in LOADING_CALLS and isinstance(local.get('filename'), str):
                return local['filename']
            init = local.get('self')
            if type(init).__name__ == 'PretrainedInit' and isinstance(init.checkpoint, str):
                return init.checkpoint
        frame = frame.f_back
    return None


def describe_source(source: Optional[str]) -> str:
    return 'The state dict being loaded' if source is None else f'Checkpoint {source!r}'


def refuse_non_finite_on_load(module, state_dict, prefix, local_metadata, strict,
                              missing_keys, unexpected_keys, error_msgs) -> None:
    """``load_state_dict`` pre-hook: refuse NaN/Inf among the tensors loaded into ``module``
    (those under ``prefix``), by every route that reaches it (``load_checkpoint``, a
    Runner's ``load_from``/``resume``, ``Pretrained`` init, ``load_state_dict``)."""
    own = {k: v for k, v in state_dict.items() if k.startswith(prefix) and torch.is_tensor(v)}
    if any(has_non_finite(v) for v in own.values()):
        check_finite_weights(own, describe_source(loading_source()))
