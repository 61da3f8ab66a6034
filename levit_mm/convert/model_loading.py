"""What levit_mm does to a LeViT checkpoint it reads itself, and the tools' strict loader.

* :func:`prepare_checkpoint`: NaN/Inf weights refused (naming the file), a LeViT in a
  foreign layout (official, timm, Hugging Face) converted to levit_mm's.  The model-side
  routes run the same steps in ``load_state_dict`` pre-hooks (:mod:`.load_hooks`);
  mmengine's checkpoint loaders are not touched, so other models load as mmengine loads them.
* :func:`load_checkpoint_strict`: the tools' loader (demo, ``tools/test.py``): every tensor
  must fit the model, and a head with another number of classes is refused in one line.
"""
import os.path as osp
from typing import Dict, List, Optional, Tuple

import torch

from ..arch import PUBLISHED_ARCHS
from ..finite import check_finite_weights, describe_source
from ..forms import pointwise_match
from .checkpoint_io import (CheckpointFormatError, CheckpointUnavailableError,
                            mmengine_checkpoint_globals, unwrap_state_dict)
from .converter import DERIVED_SUFFIXES, detect_checkpoint, foreign_to_native, normalise_layout

#: How many mismatched keys a checkpoint message lists before summarising the rest.
MAX_LISTED_KEYS = 12


class CheckpointMismatchError(ValueError):
    """A checkpoint's tensors do not fit the model (wrong variant, head or layout)."""


def prepare_checkpoint(checkpoint, source: str):
    """Refuse non-finite weights and convert a foreign LeViT layout; anything that is
    not a dict of tensors (or not a LeViT) passes through unchanged."""
    try:
        state = unwrap_state_dict(checkpoint)
    except CheckpointFormatError:
        return checkpoint
    check_finite_weights(state, f'Checkpoint {source!r}')
    converted = foreign_to_native(state)
    if converted is None:
        return checkpoint
    state, info = converted
    from mmengine.logging import print_log
    print_log(f'{source}: {info.describe()}, converted to levit_mm\'s layout as it loads.',
              logger='current')
    meta = checkpoint.get('meta', {}) if isinstance(checkpoint, dict) else {}
    return dict(state_dict=state, meta=meta)


# ----------------------------------------------------------------------- the head
def head_classes(head_state: Dict[str, torch.Tensor]) -> Optional[int]:
    """The number of classes of a classifier head's tensors: the rows of its 2-D weights
    (LeViT's class and distillation Linears, folded or not; a plain ``fc``); ``None``
    when it has none or they disagree."""
    rows = {v.shape[0] for k, v in head_state.items()
            if k.endswith('weight') and torch.is_tensor(v) and v.dim() == 2}
    return rows.pop() if len(rows) == 1 else None


def head_mismatch_message(source: Optional[str], in_file: int, in_model: int) -> str:
    """One line: the two class counts, and what to do for either intent."""
    return (f'{describe_source(source)} has a {in_file}-class head but the model has '
            f'{in_model} classes. To predict with it, use the config it was trained with '
            f'(model.head.num_classes={in_file}); to fine-tune its backbone on {in_model} '
            "classes, load it with load_from or init_cfg=dict(type='Pretrained', "
            "checkpoint=..., prefix='backbone.').")


# ----------------------------------------------------------------------- strict loading
def state_dict_mismatches(model: torch.nn.Module, state: Dict[str, torch.Tensor]
                          ) -> Tuple[List[Tuple[str, tuple, tuple]], List[str], List[str]]:
    """``(shape_mismatches, missing, unexpected)`` of ``state`` against ``model``; the
    other LeViT form's pointwise weights fit (the model reshapes them as it loads)."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    given = {k: tuple(v.shape) for k, v in state.items() if not k.endswith(DERIVED_SUFFIXES)}
    shapes = [(k, given[k], expected[k]) for k in expected
              if k in given and given[k] != expected[k]
              and not pointwise_match(given[k], expected[k])]
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    return shapes, missing, unexpected


def check_checkpoint_fits(model: torch.nn.Module, checkpoint: dict, source: str) -> None:
    """Refuse a checkpoint whose tensors do not fit ``model``, listing keys and shapes.

    mmengine's ``load_checkpoint`` only warns on a shape mismatch and leaves those layers
    random; a tool that then prints predictions would be silently wrong.
    """
    state = unwrap_state_dict(checkpoint)
    shapes, missing, unexpected = state_dict_mismatches(model, state)
    if not (shapes or missing or unexpected):
        return
    _refuse_other_head(model, state, [k for k, _, _ in shapes] + missing + unexpected,
                       source)
    lines = [f'Checkpoint {source!r} does not fit the model: {len(shapes)} tensors differ '
             f'in shape, {len(missing)} are missing, {len(unexpected)} are unexpected.']
    try:
        arch = detect_checkpoint(normalise_layout(state)).arch
        config = f'configs/levit/levit-{arch.replace("_", "-")}_8xb256_in1k.py'
        zoo = (f' (or the model name levit-{arch}_3rdparty_in1k)'
               if arch in PUBLISHED_ARCHS else '')
        lines.append(f'It holds a LeViT-{arch.upper()} backbone: use {config}{zoo}.')
    except CheckpointFormatError:
        pass
    details = [f'  shape {k}: checkpoint {list(got)} vs model {list(want)}'
               for k, got, want in shapes]
    details += [f'  missing {k}' for k in missing]
    details += [f'  unexpected {k}' for k in unexpected]
    lines += details[:MAX_LISTED_KEYS]
    if len(details) > MAX_LISTED_KEYS:
        lines.append(f'  ... and {len(details) - MAX_LISTED_KEYS} more')
    raise CheckpointMismatchError('\n'.join(lines))


def _refuse_other_head(model: torch.nn.Module, state: Dict[str, torch.Tensor],
                       mismatched: List[str], source: str) -> None:
    """When only the head differs, and in its number of classes, say that in one line."""
    if not all(k.startswith('head.') for k in mismatched):
        return
    in_file = head_classes({k: v for k, v in state.items() if k.startswith('head.')})
    head = getattr(model, 'head', None)
    in_model = None if head is None else head_classes(head.state_dict())
    if in_file is not None and in_model is not None and in_file != in_model:
        raise CheckpointMismatchError(head_mismatch_message(source, in_file, in_model))


def load_checkpoint_strict(model: torch.nn.Module, filename: str) -> dict:
    """Load ``filename`` (path or URL) into ``model`` only if every tensor fits.

    Returns the checkpoint; sets ``model._dataset_meta`` from its meta (class names), as
    ``mmpretrain.get_model`` does.
    """
    from mmengine.runner.checkpoint import _load_checkpoint, _load_checkpoint_to_model
    if '://' not in filename and not osp.isfile(filename):
        raise FileNotFoundError(f'Checkpoint not found: {filename!r} (no such file).')
    try:
        with mmengine_checkpoint_globals():  # training checkpoints hold mmengine state
            checkpoint = _load_checkpoint(filename, map_location='cpu')
    except (RuntimeError, EOFError, OSError) as err:
        if isinstance(err, (FileNotFoundError, CheckpointUnavailableError)):
            raise
        raise CheckpointMismatchError(f'Cannot read checkpoint {filename!r}: the file is '
                                      f'truncated or not a torch checkpoint ({err}).') from None
    if not isinstance(checkpoint, dict):
        raise CheckpointMismatchError(f'Checkpoint {filename!r} holds a '
                                      f'{type(checkpoint).__name__}, expected a dict.')
    checkpoint = prepare_checkpoint(checkpoint, filename)
    check_checkpoint_fits(model, checkpoint, filename)
    _load_checkpoint_to_model(model, checkpoint, strict=False)
    meta = checkpoint.get('meta', {}) or {}
    if 'dataset_meta' in meta:
        model._dataset_meta = meta['dataset_meta']
    return checkpoint
