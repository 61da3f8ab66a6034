"""Loading foreign LeViT checkpoints straight into levit_mm models.

Two entry points, so no separate conversion step is needed:

* :func:`convert_on_load` is a ``load_state_dict`` pre-hook for the classifier: whatever calls
  ``load_state_dict`` (``load_checkpoint``, ``init_cfg``, ``get_model(pretrained=...)``),
  an official/timm/HF state dict is converted in place before the keys are matched.
* :func:`load_foreign_pretrained` lets the backbone alone (dense prediction) take a foreign
  file through ``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')``.
"""
import os.path as osp
from typing import Optional

from .checkpoint_io import load_checkpoint_file
from .converter import (CheckpointFormatError, convert_checkpoint, detect_format,
                        is_native_layout, normalise_layout, unwrap_state_dict)
from .formats import MMPRETRAIN


def convert_on_load(module, state_dict, prefix, local_metadata, strict, missing_keys,
                    unexpected_keys, error_msgs) -> None:
    """Replace, in place, a foreign-layout state dict under ``prefix`` by its levit_mm
    equivalent, checked against ``module.backbone.arch``.  Native or non-LeViT dicts are
    left alone (the normal missing/unexpected-key report applies)."""
    own = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    if not own:
        return
    try:
        fmt, _ = detect_format(normalise_layout(unwrap_state_dict(own)))
    except CheckpointFormatError:
        return
    if fmt is MMPRETRAIN:
        return
    arch = getattr(getattr(module, 'backbone', None), 'arch', None)
    converted = convert_checkpoint(own, arch=arch)
    for key in [k for k in state_dict if k.startswith(prefix)]:
        del state_dict[key]
    for key, value in converted.items():
        state_dict[prefix + key] = value


def load_foreign_pretrained(module, init_cfg, default_prefix: str = 'backbone.') -> bool:
    """Load a local foreign-layout file named by a ``Pretrained`` ``init_cfg`` into
    ``module`` (a LeViT backbone); return False when mmengine's usual loading applies
    (no Pretrained cfg, a URL, or a file already in levit_mm's layout)."""
    if not isinstance(init_cfg, dict) or init_cfg.get('type') != 'Pretrained':
        return False
    path: Optional[str] = init_cfg.get('checkpoint')
    if not isinstance(path, str) or not osp.isfile(path):
        return False
    state = unwrap_state_dict(load_checkpoint_file(path))
    if is_native_layout(state):
        return False
    converted = convert_checkpoint(state, arch=getattr(module, 'arch', None))
    prefix = init_cfg.get('prefix') or default_prefix
    prefix = prefix if prefix.endswith('.') else prefix + '.'
    own = {k[len(prefix):]: v for k, v in converted.items() if k.startswith(prefix)}
    if not own:
        raise CheckpointFormatError(
            f'{path}: no weights under prefix {prefix!r} after conversion; the converted '
            f'keys start with {sorted({k.split(".")[0] + "." for k in converted})}.')
    from mmengine.logging import MMLogger
    from mmengine.runner.checkpoint import load_state_dict
    logger = MMLogger.get_current_instance()
    logger.info(f'Loaded {path} into {type(module).__name__} after converting it to '
                f'levit_mm\'s layout (prefix {prefix!r}).')
    load_state_dict(module, own, strict=False, logger=logger)
    return True
