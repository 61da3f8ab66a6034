"""Every route that loads weights into a model goes through here.

* :func:`prepare_checkpoint` is what happens to a checkpoint right after it is read, once:
  its weights are refused if any is NaN or infinite, and a LeViT in a foreign layout
  (official, timm, Hugging Face) is converted to levit_mm's.  It is installed into
  mmengine's checkpoint loaders (local files, URLs), so ``load_checkpoint``,
  ``init_cfg=dict(type='Pretrained', ...)`` (with or without a prefix: dense backbones),
  ``get_model(pretrained=...)``, the Runner's ``load_from``/``--resume`` and the teacher
  all take foreign files and all refuse diverged ones.
* :func:`convert_on_load` is the classifier's ``load_state_dict`` pre-hook: a state dict
  handed over directly is converted too, and one of another variant is refused by name.
* :func:`load_checkpoint_strict` is the tools' loader: every tensor must fit the model.
"""
import functools
import os.path as osp
from typing import Callable, Dict, List, Tuple

import torch
from mmengine.runner.checkpoint import CheckpointLoader, load_from_http, load_from_local

from ..arch import PUBLISHED_ARCHS, same_tensors
from ..finite import check_finite_weights
from ..forms import pointwise_match
from .checkpoint_io import (CheckpointFormatError, CheckpointUnavailableError,
                            mmengine_checkpoint_globals, unwrap_state_dict)
from .converter import (DERIVED_SUFFIXES, detect_checkpoint, foreign_to_native,
                        normalise_layout)

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


def prepared(loader: Callable) -> Callable:
    """An mmengine checkpoint loader whose results go through :func:`prepare_checkpoint`."""

    @functools.wraps(loader)  # mmengine logs the loader's name
    def load(filename, map_location=None, *args, **kwargs):
        return prepare_checkpoint(loader(filename, map_location, *args, **kwargs), filename)

    return load


CheckpointLoader.register_scheme(prefixes='', loader=prepared(load_from_local), force=True)
CheckpointLoader.register_scheme(prefixes=('http://', 'https://'),
                                 loader=prepared(load_from_http), force=True)


def convert_on_load(module, state_dict, prefix, local_metadata, strict, missing_keys,
                    unexpected_keys, error_msgs) -> None:
    """Classifier pre-hook: replace, in place, a foreign-layout state dict under ``prefix``
    by its levit_mm equivalent, and refuse a LeViT of another variant than
    ``module.backbone.arch`` with a message naming both.  Partial or non-LeViT dicts are
    left to the usual missing/unexpected-key report."""
    own = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    arch = getattr(getattr(module, 'backbone', None), 'arch', None)
    if not own or arch is None:
        return
    converted = foreign_to_native(own, arch=arch)
    if converted is None:
        _refuse_other_variant(own, arch)
        return
    for key in [k for k in state_dict if k.startswith(prefix)]:
        del state_dict[key]
    for key, value in converted[0].items():
        state_dict[prefix + key] = value


def _refuse_other_variant(state: Dict[str, torch.Tensor], arch: dict) -> None:
    """A complete levit_mm-layout state dict of a known variant must be ``arch``."""
    state = normalise_layout(state)
    try:
        found = detect_checkpoint(state)
    except CheckpointFormatError:
        return  # partial, custom or not a LeViT: nothing to say beyond missing keys
    if not same_tensors(found.spec, arch):
        detect_checkpoint(state, arch)  # raises, naming both variants


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
    check_checkpoint_fits(model, checkpoint, filename)
    _load_checkpoint_to_model(model, checkpoint, strict=False)
    meta = checkpoint.get('meta', {}) or {}
    if 'dataset_meta' in meta:
        model._dataset_meta = meta['dataset_meta']
    return checkpoint
