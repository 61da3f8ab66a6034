"""Deploy form: the training-form model or state dict, folded for inference.

Two equivalent routes, tested against each other:

* :func:`switch_to_deploy` folds a built model in place (every module that has a
  ``switch_to_deploy``);
* :func:`fold_state_dict` turns a *training-form state dict* into the deploy layout
  (``tools/model_converters/levit_reparameterize.py`` wraps it for checkpoint files), and
  :func:`fold_on_load` applies it as a deployed backbone or head loads one, so a config
  with ``deploy=True`` takes either form.

Layout change, per module prefix ``P``:

* ``ConvBN``  (``P.conv.weight`` + ``P.bn.*``) -> ``P.weight``, ``P.bias``
* ``LinearBN`` (``P.linear.weight`` without bias + ``P.bn.*``) -> ``P.weight``, ``P.bias``
* ``BNLinear`` (``P.bn.*`` + ``P.linear.weight``/``bias``; the head) -> ``P.weight``,
  ``P.bias``; a sibling ``head_dist`` is then averaged into ``head`` and dropped.

Nothing here knows about files or argparse.
"""
from typing import Dict, Mapping

import torch
import torch.nn as nn

BN_KEYS = ('weight', 'bias', 'running_mean', 'running_var')
DIST_HEAD, CLS_HEAD = 'head_dist', 'head'


class DeployConversionError(ValueError):
    """The state dict is not a LeViT training-form state dict."""


def switch_to_deploy(model: nn.Module) -> nn.Module:
    """Fold every sub-module that offers ``switch_to_deploy`` (backbone, head) in place."""
    for module in list(model.modules()):
        if hasattr(module, 'switch_to_deploy'):
            module.switch_to_deploy()
    return model


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


def compile_for_inference(model: nn.Module) -> nn.Module:
    """``torch.compile`` a deployed model for CPU inference, weights frozen.

    Inductor then fuses what eager mode runs as separate passes (bias + softmax, the
    activations, residual adds, the head split/merge copies) around the GEMMs: +4 to +8%
    over eager at batch 16 on one core (``tools/analysis_tools/benchmark.py``).  The
    graph is compiled on the first call, which must run without autograd
    (``torch.inference_mode()`` or ``torch.no_grad()``) for the weights to be frozen into
    it; each new input shape compiles again (Dynamo allows
    ``torch._dynamo.config.recompile_limit`` shapes per forward function, counted over all
    compiled models in the process; ``torch._dynamo.reset()`` starts afresh).  Weights and
    attention biases are read at compile time: compile after loading a checkpoint, not
    before.
    """
    model.eval()
    for module in model.modules():
        if hasattr(module, 'materialise_biases'):
            module.materialise_biases()  # the graph reads cached biases as constants
    return torch.compile(model, fullgraph=True, dynamic=False, options={'freezing': True})


def _bn_scale_shift(sd: Mapping[str, torch.Tensor], prefix: str, eps: float):
    missing = [prefix + k for k in BN_KEYS if prefix + k not in sd]
    if missing:
        raise DeployConversionError(f'BatchNorm {prefix[:-1]!r} is incomplete: missing '
                                    f'{missing}.')
    weight, bias, mean, var = (sd[prefix + k].double() for k in BN_KEYS)
    scale = weight / torch.sqrt(var + eps)
    return scale, bias - mean * scale


def fold_state_dict(state_dict: Mapping[str, torch.Tensor],
                    eps: float = 1e-5) -> Dict[str, torch.Tensor]:
    """A training-form LeViT state dict (backbone, head or whole classifier) in the
    deploy layout.  Pure: the input is not modified; folding runs in float64 and casts
    back to each weight's dtype.

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
        scale, shift = _bn_scale_shift(state_dict, prefix + 'bn.', eps)
        for k in BN_KEYS + ('num_batches_tracked', ):
            out.pop(prefix + 'bn.' + k, None)
        if prefix + 'conv.weight' in state_dict:  # Conv -> BN
            weight = out.pop(prefix + 'conv.weight')
            folded_w = weight.double() * scale[:, None, None, None]
            folded_b = shift
        elif prefix + 'linear.weight' in state_dict:
            weight = out.pop(prefix + 'linear.weight')
            linear_bias = out.pop(prefix + 'linear.bias', None)
            if linear_bias is None:  # Linear -> BN
                folded_w = weight.double() * scale[:, None]
                folded_b = shift
            else:  # BN -> Linear (the classifier heads)
                folded_w = weight.double() * scale[None, :]
                folded_b = weight.double() @ shift + linear_bias.double()
        else:
            raise DeployConversionError(
                f'BatchNorm {prefix + "bn"!r} has no "conv.weight" or "linear.weight" '
                'partner to fold into.')
        out[prefix + 'weight'] = folded_w.to(weight.dtype)
        out[prefix + 'bias'] = folded_b.to(weight.dtype)
    return _merge_heads(out)


def _merge_heads(sd: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Average each folded ``...head_dist`` into its sibling ``...head`` (the inference
    output is the mean of the two heads, which is linear)."""
    suffix = DIST_HEAD + '.weight'
    for key in [k for k in sd if k.endswith(suffix)]:
        dist = key[:-len(suffix)] + DIST_HEAD + '.'
        cls = key[:-len(suffix)] + CLS_HEAD + '.'
        if cls + 'weight' not in sd:
            raise DeployConversionError(f'Found {dist}weight but no {cls}weight to merge '
                                        'it with.')
        for name in ('weight', 'bias'):
            sd[cls + name] = (sd[cls + name] + sd.pop(dist + name)) / 2
    return sd
