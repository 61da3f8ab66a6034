"""BatchNorm folding and head merging, as functions of tensors.

LeViT puts a BatchNorm after every Conv/Linear (and before each classifier Linear), so at
inference each pair is one layer.  The arithmetic lives here once, and both routes call it:
the modules' ``fuse()`` (``switch_to_deploy`` on a built model) and :func:`fold_state_dict`
(a training-form state dict, e.g. a checkpoint file, into the deploy layout).  Folding runs
in float64 and casts back to the weight's dtype.

Layout change of :func:`fold_state_dict`, per module prefix ``P``:

* ``ConvBN``  (``P.conv.weight`` + ``P.bn.*``) -> ``P.weight``, ``P.bias``
* ``LinearBN`` (``P.linear.weight`` without bias + ``P.bn.*``) -> ``P.weight``, ``P.bias``
* ``BNLinear`` (``P.bn.*`` + ``P.linear.weight``/``bias``; the head) -> ``P.weight``,
  ``P.bias``; a sibling ``head_dist`` is then averaged into ``head`` and dropped.
"""
from typing import Dict, Mapping, Optional, Tuple

import torch

BN_KEYS = ('weight', 'bias', 'running_mean', 'running_var')
#: saved by BatchNorm since PyTorch 0.4.1; optional (older files lack it)
BN_COUNTER = 'num_batches_tracked'
DIST_HEAD, CLS_HEAD = 'head_dist', 'head'
Pair = Tuple[torch.Tensor, torch.Tensor]


class DeployConversionError(ValueError):
    """The state dict is not a LeViT training-form state dict."""


def bn_scale_shift(weight, bias, running_mean, running_var, eps: float) -> Pair:
    """Per-channel ``(scale, shift)`` with ``bn(x) == x * scale + shift`` (eval mode),
    in float64."""
    scale = weight.double() / torch.sqrt(running_var.double() + eps)
    return scale, bias.double() - running_mean.double() * scale


def fold_bn_after(weight: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> Pair:
    """Conv/Linear (no bias) followed by BN -> ``(weight, bias)`` of one layer."""
    view = (-1, ) + (1, ) * (weight.dim() - 1)
    return ((weight.double() * scale.view(view)).to(weight.dtype), shift.to(weight.dtype))


def fold_bn_before(weight: torch.Tensor, bias: torch.Tensor, scale: torch.Tensor,
                   shift: torch.Tensor) -> Pair:
    """BN followed by Linear -> ``(weight, bias)`` of one Linear."""
    w = weight.double()
    return ((w * scale[None, :]).to(weight.dtype),
            (w @ shift + bias.double()).to(weight.dtype))


def average_linears(first: Pair, second: Pair) -> Pair:
    """One Linear computing the mean of two (the class and distillation heads)."""
    return (first[0] + second[0]) / 2, (first[1] + second[1]) / 2


def bn_module_scale_shift(bn) -> Pair:
    return bn_scale_shift(bn.weight, bn.bias, bn.running_mean, bn.running_var, bn.eps)


def _bn_state_scale_shift(sd: Mapping[str, torch.Tensor], prefix: str, eps: float) -> Pair:
    missing = [prefix + k for k in BN_KEYS if prefix + k not in sd]
    if missing:
        raise DeployConversionError(f'BatchNorm {prefix[:-1]!r} is incomplete: missing '
                                    f'{missing}.')
    return bn_scale_shift(*(sd[prefix + k] for k in BN_KEYS), eps=eps)


def fold_state_dict(state_dict: Mapping[str, torch.Tensor],
                    eps: float = 1e-5) -> Dict[str, torch.Tensor]:
    """A training-form LeViT state dict (backbone, head or whole classifier) in the
    deploy layout.  Pure: the input is not modified.

    Args:
        state_dict: keys as saved by the training form (``...conv.weight``,
            ``...bn.running_var``, ``head.head_dist.linear.weight`` ...).
        eps: the BatchNorm epsilon (LeViT uses PyTorch's default, 1e-5).

    Raises:
        DeployConversionError: if the dict is already folded or a BN has no partner.
    """
    bn_prefixes = [k[:-len('bn.running_var')] for k in state_dict
                   if k.endswith('bn.running_var')]
    if not bn_prefixes:
        raise DeployConversionError(
            'No BatchNorm found (no key ends with "bn.running_var"): the state dict is '
            'already in the deploy layout or is not a LeViT training-form state dict.')
    out = dict(state_dict)
    for prefix in bn_prefixes:
        scale, shift = _bn_state_scale_shift(state_dict, prefix + 'bn.', eps)
        for k in BN_KEYS + (BN_COUNTER, ):
            out.pop(prefix + 'bn.' + k, None)
        if prefix + 'conv.weight' in state_dict:  # Conv -> BN
            folded = fold_bn_after(out.pop(prefix + 'conv.weight'), scale, shift)
        elif prefix + 'linear.weight' in state_dict:
            weight = out.pop(prefix + 'linear.weight')
            linear_bias: Optional[torch.Tensor] = out.pop(prefix + 'linear.bias', None)
            if linear_bias is None:  # Linear -> BN
                folded = fold_bn_after(weight, scale, shift)
            else:  # BN -> Linear (the classifier heads)
                folded = fold_bn_before(weight, linear_bias, scale, shift)
        else:
            raise DeployConversionError(
                f'BatchNorm {prefix + "bn"!r} has no "conv.weight" or "linear.weight" '
                'partner to fold into.')
        out[prefix + 'weight'], out[prefix + 'bias'] = folded
    return merge_head_pairs(out)


def merge_head_pairs(sd: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Average each folded ``...head_dist`` into its sibling ``...head``, in place (the
    inference output is the mean of the two heads, which is linear)."""
    suffix = DIST_HEAD + '.weight'
    for key in [k for k in sd if k.endswith(suffix)]:
        dist = key[:-len(suffix)] + DIST_HEAD + '.'
        cls = key[:-len(suffix)] + CLS_HEAD + '.'
        if cls + 'weight' not in sd:
            raise DeployConversionError(f'Found {dist}weight but no {cls}weight to merge '
                                        'it with.')
        sd[cls + 'weight'], sd[cls + 'bias'] = average_linears(
            (sd[cls + 'weight'], sd[cls + 'bias']),
            (sd.pop(dist + 'weight'), sd.pop(dist + 'bias')))
    return sd


def fold_on_load(module, state_dict, prefix, local_metadata, strict, missing_keys,
                 unexpected_keys, error_msgs) -> None:
    """``load_state_dict`` pre-hook of the backbone and the head: when the module is
    deployed and the keys under ``prefix`` are in the training form, fold them in place, so
    a training-form checkpoint loads by every route (``load_checkpoint``, ``init_cfg``,
    ``Pretrained`` with a prefix) into a ``deploy=True`` model."""
    if not getattr(module, 'deploy', False):
        return
    own = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    if not any(k.endswith('bn.running_var') for k in own):
        return
    from mmengine.logging import print_log
    print_log(f'Folding the training-form checkpoint into the deployed '
              f'{type(module).__name__} as it loads.', logger='current')
    for key in own:
        del state_dict[prefix + key]
    for key, value in fold_state_dict(own).items():
        state_dict[prefix + key] = value
