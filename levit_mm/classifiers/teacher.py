"""The distillation teacher: built once from the model config, frozen, run on the student's
inputs, and kept out of the student's module tree.

The teacher is held by a plain object (:class:`Teacher`), not registered as a submodule, so
it never appears in the student's ``state_dict``, checkpoints, ``parameters()`` or optimizer,
and the student's ``.train()`` never reaches it.  It is built lazily on the first training
step: building a config's model (for inference, tests, FLOP counts) never loads or downloads
teacher weights.

A teacher is described by one of::

    teacher=dict(config='path/to/teacher_config.py', checkpoint='teacher.pth')
    teacher=dict(name='resnet50_8xb32_in1k', checkpoint=None)   # None: the zoo weights
    teacher=dict(model=dict(type='TimmClassifier', model_name='regnety_160'),
                 checkpoint='https://.../regnety_160.pth')

plus optional ``input_size=(h, w)`` (resize the student's inputs for the teacher, bicubic).
Normalisation: if the teacher declares its own (``mean``/``std`` in its data_preprocessor),
the student's normalised inputs are mapped to the teacher's (channel order included);
otherwise the teacher receives the student's tensors unchanged.
"""
import copy
import os.path as osp
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..convert import mmengine_checkpoint_globals, prepare_checkpoint, unwrap_state_dict
from ..finite import check_finite_weights

SOURCES = ('config', 'name', 'model')
OPTIONS = ('checkpoint', 'input_size')


def _teacher_model_cfg(cfg: dict):
    """The teacher's model config (an mmengine ``ConfigDict``) from ``config=``/``model=``."""
    from mmengine.config import Config, ConfigDict
    if 'model' in cfg:
        return ConfigDict(copy.deepcopy(cfg['model']))
    path = cfg['config']
    if '::' in path:
        from mmengine.hub import get_config
        full = get_config(path)
    else:
        if not osp.isfile(path):
            raise FileNotFoundError(f'Teacher config not found: {path}')
        full = Config.fromfile(path)
    model_cfg = copy.deepcopy(full.model)
    if 'data_preprocessor' in full and 'data_preprocessor' not in model_cfg:
        model_cfg.data_preprocessor = full.data_preprocessor  # as mmengine's Runner does
    return model_cfg


def load_teacher_weights(model: nn.Module, checkpoint: str) -> None:
    """Load ``checkpoint`` strictly: a teacher with missing weights is worse than none.

    The teacher checks its own file, whatever its model: NaN/Inf weights are refused (they
    would teach NaN) and a LeViT in a foreign layout is converted.  A file named in your own
    config may be an mmengine training checkpoint (message hub included), read as mmengine
    read it before torch 2.6."""
    from mmengine.runner.checkpoint import CheckpointLoader
    if '://' not in checkpoint and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'Teacher checkpoint not found: {checkpoint}')
    with mmengine_checkpoint_globals():
        raw = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu',
                                               logger='silent')
    state = unwrap_state_dict(prepare_checkpoint(raw, checkpoint))
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatches
        lines = [line.strip() for line in str(err).splitlines() if 'size mismatch' in line]
        raise ValueError(f'Teacher checkpoint {checkpoint} does not match the teacher model: '
                         f'{len(lines)} tensors have other shapes (e.g. {lines[:1]}).') from None
    # The teacher's own data_preprocessor holds no weights that a checkpoint must carry.
    missing = [k for k in missing if not k.startswith('data_preprocessor.')]
    if missing or unexpected:
        raise ValueError(
            f'Teacher checkpoint {checkpoint} does not match the teacher model: '
            f'{len(missing)} missing keys (e.g. {missing[:3]}), {len(unexpected)} unexpected '
            f'keys (e.g. {unexpected[:3]}).')


def build_teacher_model(cfg: dict) -> nn.Module:
    """Build the teacher network described by ``cfg`` and load its weights."""
    from mmpretrain.registry import MODELS
    if 'name' in cfg:
        from mmpretrain import get_model
        checkpoint = cfg.get('checkpoint')
        model = get_model(cfg['name'], pretrained=checkpoint if checkpoint else True)
        check_finite_weights(model.state_dict(), f'Teacher {cfg["name"]!r}')
        return model
    model_cfg = _teacher_model_cfg(cfg)
    model_cfg.pop('teacher', None)  # a teacher never has a teacher of its own
    model = MODELS.build(model_cfg)
    if cfg.get('checkpoint'):
        load_teacher_weights(model, cfg['checkpoint'])
    return model


def check_teacher_cfg(cfg: dict) -> dict:
    """Validate a ``teacher=`` dict up front, so a typo fails at build time, not at the
    first training step (which may be hours in on a cluster)."""
    if not isinstance(cfg, dict):
        raise ValueError(f'teacher must be a dict, got {type(cfg).__name__}.')
    given = [k for k in SOURCES if cfg.get(k) is not None]
    if len(given) != 1:
        raise ValueError(f'teacher needs exactly one of {SOURCES}, got {given or "none"} '
                         f'(in {dict(cfg)}).')
    unknown = set(cfg) - set(SOURCES) - set(OPTIONS)
    if unknown:
        raise ValueError(f'Unknown teacher option(s) {sorted(unknown)}; expected one of '
                         f'{SOURCES} plus {OPTIONS}.')
    if given[0] == 'config' and not cfg.get('checkpoint'):
        raise ValueError('teacher=dict(config=...) needs checkpoint=...: a teacher with '
                         'random weights would only teach noise.')
    return dict(cfg)


class Teacher:
    """A frozen network that produces distillation targets for the student's inputs.

    Not an ``nn.Module`` on purpose (see the module docstring).  ``to_(fn)`` follows the
    student's device/dtype moves; ``deepcopy`` (e.g. an EMA copy of the student) shares the
    same frozen network instead of duplicating it.
    """

    def __init__(self, cfg: dict):
        self.cfg = check_teacher_cfg(cfg)
        self.input_size: Optional[Tuple[int, int]] = (
            tuple(cfg['input_size']) if cfg.get('input_size') else None)
        self.model: Optional[nn.Module] = None
        self._pending_apply = []  # device/dtype moves requested before the build

    def __repr__(self):
        state = 'built' if self.model is not None else 'not built yet'
        return f'Teacher({self.cfg}, {state})'

    def __deepcopy__(self, memo):
        return self

    def build(self) -> nn.Module:
        """Build (once), load weights, freeze."""
        if self.model is None:
            model = build_teacher_model(self.cfg)
            for param in model.parameters():
                param.requires_grad_(False)
            for fn in self._pending_apply:
                model._apply(fn)
            self.model = model.eval()
        return self.model

    def to_(self, fn) -> None:
        """Apply a tensor move (the function an ``nn.Module._apply`` received)."""
        if self.model is None:
            self._pending_apply.append(fn)
        else:
            self.model._apply(fn)

    def adapt_inputs(self, inputs: torch.Tensor, student_preprocessor) -> torch.Tensor:
        """Map the student's normalised inputs to what the teacher was trained on."""
        teacher_pre = getattr(self.model, 'data_preprocessor', None)
        if getattr(teacher_pre, '_enable_normalize', False):
            x = inputs
            if getattr(student_preprocessor, '_enable_normalize', False):
                x = x * student_preprocessor.std + student_preprocessor.mean
            if bool(getattr(student_preprocessor, 'to_rgb', False)) != bool(
                    getattr(teacher_pre, 'to_rgb', False)):
                x = x.flip(1)
            inputs = (x - teacher_pre.mean) / teacher_pre.std
        if self.input_size is not None and tuple(inputs.shape[-2:]) != self.input_size:
            inputs = F.interpolate(inputs, size=self.input_size, mode='bicubic',
                                   align_corners=False)
        return inputs

    @torch.compiler.disable
    @torch.no_grad()
    def logits(self, inputs: torch.Tensor, student_preprocessor=None) -> torch.Tensor:
        """Teacher logits for the (already batch-augmented) student inputs.

        Never traced when the student's training step is compiled (``compile=True``):
        building the teacher reads configs and files, and its network is not the
        student's graph; it runs eagerly, as a frozen function of the inputs."""
        model = self.build()
        model.eval()  # whatever anyone did to it, the teacher predicts in eval mode
        first = next(model.parameters(), None)
        if first is not None and first.device != inputs.device:
            model.to(inputs.device)
        out = model(self.adapt_inputs(inputs, student_preprocessor), mode='tensor')
        if isinstance(out, (tuple, list)):
            out = out[-1]
        if not torch.is_tensor(out) or out.dim() != 2:
            raise ValueError(f'The teacher must return (N, num_classes) logits in '
                             f'mode="tensor"; got {getattr(out, "shape", type(out))}.')
        return out.detach()
