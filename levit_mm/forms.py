"""LeViT's two forms hold one set of weights.

The linear form (tokens ``(B, H, W, C)``, ``nn.Linear``) and the conv form, LeViT-C (maps
``(B, C, H, W)``, 1x1 ``nn.Conv2d``: the official ``levit_c.py``, timm's ``levit_conv_*``,
levit_mm's ``form='conv'``) have the same parameter names; a pointwise weight is
``(out, in)`` in one and ``(out, in, 1, 1)`` in the other, and nothing else differs.  So
either form's checkpoint loads into either model by a reshape, done here as a
``load_state_dict`` pre-hook.

Pure functions of tensors and shapes: nothing here knows about modules' classes or files.
"""
from typing import Sequence

FORMS = ('linear', 'conv')


def pointwise_match(shape: Sequence[int], target: Sequence[int]) -> bool:
    """Whether ``shape`` becomes ``target`` by adding or removing trailing 1x1 kernel dims
    (``(o, i)`` <-> ``(o, i, 1, 1)``)."""
    shape, target = tuple(shape), tuple(target)
    if len(shape) == 2 and len(target) == 4:
        return target == shape + (1, 1)
    if len(shape) == 4 and len(target) == 2:
        return shape == target + (1, 1)
    return False


def check_form(form: str) -> str:
    if form not in FORMS:
        raise ValueError(f'LeViT form must be one of {list(FORMS)} (linear layers on '
                         f'(B, H, W, C) tokens, or LeViT-C\'s 1x1 convolutions on (B, C, H, W) '
                         f'maps); got {form!r}.')
    return form


def match_form_on_load(module, state_dict, prefix, local_metadata, strict, missing_keys,
                       unexpected_keys, error_msgs) -> None:
    """``load_state_dict`` pre-hook of the backbone: the other form's pointwise weights
    under ``prefix`` are reshaped, in place, to this model's shapes, so a linear-form
    checkpoint loads into a conv-form model and the other way round (by every route:
    ``load_state_dict``, ``load_checkpoint``, ``Pretrained`` with a prefix)."""
    own = {name: tuple(t.shape) for name, t in module.state_dict().items()}
    for name, shape in own.items():
        key = prefix + name
        value = state_dict.get(key)
        if value is not None and pointwise_match(value.shape, shape):
            state_dict[key] = value.reshape(shape)
