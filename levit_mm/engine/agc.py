"""Adaptive gradient clipping (AGC, Brock et al. 2021) as an mmengine optimizer wrapper.

The official LeViT recipe clips with ``--clip-grad 0.01 --clip-mode agc``: timm's
``dispatch_clip_grad`` applied to ``model.parameters()`` after the loss scaler has unscaled
the gradients and before the optimizer step.  Every parameter that has a gradient is
clipped, none is skipped: a weight unit-wise (one norm per output unit, i.e. per slice along
dim 0: a Linear/Conv output channel, an attention-bias table's head), a 1-D tensor (biases,
BatchNorm) as a whole.  A unit whose gradient norm exceeds ``clip_factor`` times its weight
norm (the weight norm floored at ``eps``) is rescaled to exactly that size.

mmengine's ``OptimWrapper`` clips through ``clip_grad`` (``'norm'`` or ``'value'``) at the
same point of the step; these wrappers add ``type='agc'`` to it::

    optim_wrapper = dict(type='AGCOptimWrapper',
                         clip_grad=dict(type='agc', clip_factor=0.01, eps=1e-3))

``AmpAGCOptimWrapper`` is the mixed-precision twin (``tools/train.py --amp`` picks it).
"""
from typing import Iterable, Optional

import torch
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmpretrain.registry import OPTIM_WRAPPERS


def unitwise_norm(x: torch.Tensor) -> torch.Tensor:
    """L2 norm per slice along dim 0 (shape ``(out, 1, ...)``); one norm for a 1-D tensor."""
    if x.ndim <= 1:
        return torch.linalg.vector_norm(x)
    return torch.linalg.vector_norm(x, dim=tuple(range(1, x.ndim)), keepdim=True)


@torch.no_grad()
def adaptive_clip_grad_(parameters: Iterable[torch.Tensor], clip_factor: float,
                        eps: float = 1e-3) -> int:
    """Clip the gradients of ``parameters`` in place; return how many units were clipped."""
    if clip_factor <= 0 or eps <= 0:
        raise ValueError(f'AGC needs clip_factor > 0 and eps > 0, got {clip_factor}, {eps}.')
    clipped = []
    for p in parameters:
        if p.grad is None:
            continue
        grad = p.grad
        max_norm = unitwise_norm(p).clamp(min=eps).mul_(clip_factor)
        grad_norm = unitwise_norm(grad)
        over = grad_norm > max_norm
        # The floor on grad_norm is timm's; it only matters where nothing is clipped.
        scale = torch.where(over, max_norm / grad_norm.clamp(min=1e-6), 1.0)
        grad.mul_(scale.to(grad.dtype))
        clipped.append(over.sum())
    # One device sync per step, not one per tensor.
    return int(torch.stack(clipped).sum()) if clipped else 0


class _AGCMixin:
    """``clip_grad=dict(type='agc', clip_factor=..., eps=...)`` for an mmengine wrapper."""

    def __init__(self, *args, clip_grad: Optional[dict] = None, **kwargs):
        agc = None
        if clip_grad is not None and clip_grad.get('type') == 'agc':
            agc = {k: v for k, v in clip_grad.items() if k != 'type'}
            unknown = set(agc) - {'clip_factor', 'eps'}
            if 'clip_factor' not in agc or unknown:
                raise ValueError("clip_grad=dict(type='agc') takes clip_factor (required) and "
                                 f"eps, got {sorted(agc)}.")
            clip_grad = None
        super().__init__(*args, clip_grad=clip_grad, **kwargs)
        if agc is not None:
            # The parent's step() clips (after unscaling, with AMP) whenever clip_grad_kwargs
            # is set, by calling clip_func on the parameters that have gradients.
            self.clip_func = adaptive_clip_grad_
            self.grad_name = 'agc_clipped_units'
            self.clip_grad_kwargs = agc


@OPTIM_WRAPPERS.register_module()
class AGCOptimWrapper(_AGCMixin, OptimWrapper):
    """mmengine's ``OptimWrapper`` that also accepts ``clip_grad=dict(type='agc', ...)``."""


@OPTIM_WRAPPERS.register_module()
class AmpAGCOptimWrapper(_AGCMixin, AmpOptimWrapper):
    """mmengine's ``AmpOptimWrapper`` that also accepts ``clip_grad=dict(type='agc', ...)``;
    gradients are unscaled before they are clipped, as in the official loss scaler."""
