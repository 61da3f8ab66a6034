"""Where LeViT weights load: the checks and conversions run by the LeViT modules themselves,
so mmengine's checkpoint loaders stay mmengine's and other models load as they always did.

* :func:`prepare_on_load`, the classifier's ``load_state_dict`` pre-hook (every route:
  ``get_model``/``inference_model``, ``load_checkpoint``, a Runner's ``load_from`` and
  ``--resume``, a ``Pretrained`` init, the EMA copy): NaN/Inf refused, a foreign layout
  (official, timm, Hugging Face) converted, another variant refused by name, and a head
  with another number of classes refused or left out (:func:`fit_head`).
* :class:`LeViTPretrainedInit`, the backbone's ``Pretrained`` init (dense configs load
  ``prefix='backbone.'`` into the backbone alone): mmengine's would find no ``backbone.``
  keys in a foreign file, so the file is read and converted first.
"""
import logging
from typing import Dict, Optional

import torch
from mmengine.logging import print_log
from mmengine.model.weight_init import PretrainedInit, update_init_info
from mmengine.registry import WEIGHT_INITIALIZERS

from ..arch import same_tensors
from ..finite import check_finite_weights, describe_source, loading_source
from .checkpoint_io import CheckpointFormatError, mmengine_checkpoint_globals, unwrap_state_dict
from .converter import detect_checkpoint, foreign_to_native, normalise_layout
from .model_loading import (CheckpointMismatchError, head_classes, head_mismatch_message,
                            prepare_checkpoint)

HEAD = 'head.'


def prepare_on_load(module, state_dict, prefix, local_metadata, strict, missing_keys,
                    unexpected_keys, error_msgs) -> None:
    """Classifier pre-hook: check and adapt, in place, the state dict under ``prefix``.
    Partial or non-LeViT dicts are left to the usual missing/unexpected-key report."""
    own = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    arch = getattr(getattr(module, 'backbone', None), 'arch', None)
    if not own or arch is None:
        return
    source = loading_source()
    try:
        check_finite_weights(unwrap_state_dict(own), describe_source(source))
    except CheckpointFormatError:
        return  # no tensors: nothing LeViT can say
    converted = foreign_to_native(own, arch=arch)
    if converted is None:
        _refuse_other_variant(own, arch)
    else:
        for key in [k for k in state_dict if k.startswith(prefix)]:
            del state_dict[key]
        for key, value in converted[0].items():
            state_dict[prefix + key] = value
        print_log(f'{describe_source(source)} holds {converted[1].describe()}: converted to '
                  'levit_mm\'s layout as it loads.', logger='current')
    fit_head(module, state_dict, prefix, source)


def _refuse_other_variant(state: Dict[str, torch.Tensor], arch: dict) -> None:
    """A complete levit_mm-layout state dict of a known variant must be ``arch``."""
    state = normalise_layout(state)
    try:
        found = detect_checkpoint(state)
    except CheckpointFormatError:
        return  # partial, custom or not a LeViT: nothing to say beyond missing keys
    if not same_tensors(found.spec, arch):
        detect_checkpoint(state, arch)  # raises, naming both variants


def being_trained(module: torch.nn.Module) -> bool:
    """Whether a classifier is set up for training rather than for predictions.

    mmengine initialises a model before it loads weights to train it (``Runner.train``
    calls ``init_weights`` before ``load_from``; a ``Pretrained`` init runs inside it); its
    EMA copy, made before that, is frozen and follows the trained model.  ``get_model``,
    ``inference_model``, a Runner's ``test``/``val`` and a bare ``load_checkpoint`` do
    neither.  One rule for every route, read off the model rather than guessed from the
    caller (mmengine passes hooks no route).
    """
    head = getattr(module, 'head', None)
    frozen = not any(p.requires_grad for p in module.parameters())
    return bool(getattr(head, 'is_init', False)) or frozen


def fit_head(module, state_dict, prefix: str, source: Optional[str]) -> None:
    """A checkpoint head with another number of classes than the model's: refused when
    the model is to predict (its head would stay random), left out when it is to be trained
    (fine-tuning keeps the backbone; the head keeps its initialisation), with one line."""
    head = getattr(module, 'head', None)
    if head is None:
        return
    ours = head.state_dict(prefix=prefix + HEAD)
    theirs = {k: v for k, v in state_dict.items() if k.startswith(prefix + HEAD)}
    in_file, in_model = head_classes(theirs), head_classes(ours)
    if in_file is None or in_model is None or in_file == in_model:
        return
    if not being_trained(module):
        raise CheckpointMismatchError(head_mismatch_message(source, in_file, in_model))
    for key in theirs:
        del state_dict[key]
    state_dict.update(ours)  # the head loads its own values: no size or missing-key noise
    trained = bool(getattr(head, 'is_init', False))  # the EMA copy follows it quietly
    print_log(f'{describe_source(source)}: its {in_file}-class head does not fit the '
              f'model\'s {in_model} classes, so only the rest is loaded; the head keeps its '
              'initialisation (fine-tuning).', logger='current',
              level=logging.INFO if trained else logging.DEBUG)


@WEIGHT_INITIALIZERS.register_module(name='LeViTPretrained')
class LeViTPretrainedInit(PretrainedInit):
    """mmengine's ``Pretrained`` init for the LeViT backbone (which asks for it by this
    name): the file is read once here -- NaN/Inf refused, a foreign layout converted --
    then its ``prefix`` part is loaded as mmengine's own init would (``strict=False``)."""

    def __call__(self, module):
        from mmengine.runner.checkpoint import _load_checkpoint, load_state_dict
        with mmengine_checkpoint_globals():  # a file named in one's own config
            checkpoint = _load_checkpoint(self.checkpoint, map_location=self.map_location)
        state = unwrap_state_dict(prepare_checkpoint(checkpoint, self.checkpoint))
        note = ''
        if self.prefix:
            prefix = self.prefix if self.prefix.endswith('.') else self.prefix + '.'
            classes = head_classes({k: v for k, v in state.items() if k.startswith(HEAD)})
            if classes is not None and prefix != HEAD:
                note = f'; its {classes}-class head is left out (the prefix selects the rest)'
            state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
            if not state:
                raise CheckpointMismatchError(f'Checkpoint {self.checkpoint!r} has no '
                                              f'{prefix!r} weights to initialise from.')
        print_log(f'load {self.prefix or "the model"} in model from: {self.checkpoint}{note}',
                  logger='current')
        load_state_dict(module, state, strict=False, logger='current')
        if hasattr(module, '_params_init_info'):
            update_init_info(module, init_info=self._get_init_info())
