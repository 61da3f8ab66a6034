"""Format and variant detection, and conversion of a LeViT state dict to levit_mm's layout.

Detection never guesses: the format comes from a key only that layout has, and the variant is
the arch whose complete key/shape list (:func:`expected_tensors`) the checkpoint matches
exactly.  Anything else is a :class:`CheckpointFormatError` saying what was expected and what
was found.
"""
from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Tuple, Union

import torch

from ..arch import (ARCH_SETTINGS, DOWN_STRIDE, arch_name, resolve_arch, stage_grids,
                    trained_img_size)
from ..attention_bias import table_index
from ..folding import merge_head_pairs
from .checkpoint_io import CheckpointFormatError, preview_keys, unwrap_state_dict
from .formats import FORMATS, MMPRETRAIN, Format
from .layout import BIAS_TABLE, BN_COUNTER, BN_LINEAR, LINEAR_BN, Shape, Unit, levit_units

#: buffers some layouts save that are derived from the grid (levit_mm rebuilds them)
DERIVED_SUFFIXES = ('attention_bias_idxs', )


@dataclass(frozen=True)
class CheckpointInfo:
    """What detection found."""
    format: str
    arch: str  # a name from ARCH_SETTINGS, or 'custom'
    spec: dict
    fused: bool  # backbone Conv/Linear+BN pairs folded
    conv: bool  # the conv form (LeViT-C): Linear+BN weights as 1x1 convolution kernels
    head_fused: bool  # heads folded (mmpretrain's switch_to_deploy folds them apart)
    distilled: bool
    num_classes: Optional[int]  # None: backbone only
    img_size: int

    def describe(self) -> str:
        head = ('backbone only' if self.num_classes is None else
                f'{self.num_classes} classes, '
                f'{"distilled (2 heads)" if self.distilled else "single head"}')
        form = 'fused/deploy' if self.fused else 'training'
        if self.num_classes is not None and self.head_fused != self.fused:
            form += f' backbone, {"fused" if self.head_fused else "training"}-form heads'
        conv = 'LeViT-C: 1x1 convolutions; ' if self.conv else ''
        return (f'LeViT-{self.arch.upper()} in the {FORMATS[self.format].description} '
                f'layout ({conv}{form} form, {head}, trained at {self.img_size}px)')


# ------------------------------------------------------------------------- layouts
def normalise_layout(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Backbone-only dicts (HF ``LevitModel``, an mmpretrain backbone) get the prefix their
    full-model layout has, so one key table serves both."""
    if 'patch_embeddings.embedding_layer_1.convolution.weight' in state:
        return OrderedDict((f'levit.{k}', v) for k, v in state.items())
    if any(k.startswith('patch_embed.patch_embed.0.') for k in state):
        return OrderedDict((f'backbone.{k}', v) for k, v in state.items())
    return state


# ------------------------------------------------------------------------- detection
def detect_format(state: Mapping[str, torch.Tensor]) -> Tuple[Format, bool]:
    """``(format, fused)`` from the stem's first key, which differs in every layout."""
    for fmt in FORMATS.values():
        for i, signature in enumerate(fmt.signatures):
            if signature in state:
                return fmt, i == 1
    known = '; '.join(f'{f.description}: {f.signatures[0]!r}' for f in FORMATS.values())
    raise CheckpointFormatError(
        'Not a LeViT checkpoint in a known layout: expected a stem key such as '
        f'{known}; found keys {preview_keys(state)}.')


def is_conv_form(state: Mapping[str, torch.Tensor]) -> bool:
    """Whether a LeViT state dict is in the conv form (LeViT-C): its Linear+BN weights are
    1x1 convolution kernels (the stem's are 3x3 in both forms)."""
    return any(v.dim() == 4 and tuple(v.shape[2:]) == (1, 1) for v in state.values())


def expected_tensors(fmt: Format, spec: dict, fused: bool, num_classes: Optional[int],
                     distilled: bool, img_size: int = 224, head_fused: Optional[bool] = None,
                     conv: bool = False) -> 'OrderedDict[str, Tuple[Unit, str, Shape]]':
    """Every tensor a checkpoint of this format/arch must hold: key -> (unit, levit_mm
    suffix, shape).  BN's optional ``num_batches_tracked`` is not listed."""
    head_fused = fused if head_fused is None else head_fused
    out: 'OrderedDict[str, Tuple[Unit, str, Shape]]' = OrderedDict()
    for unit in levit_units(spec, img_size, num_classes, distilled):
        is_head = unit.role[0] in ('head', 'head_dist')
        base = fmt.path(unit.role, spec['depths'])
        for suffix, shape in unit.tensor_shapes(head_fused if is_head else fused,
                                                conv).items():
            out[f'{base}.{fmt.suffix(unit.kind, suffix)}'] = (unit, suffix, shape)
    return out


def _head_info(fmt: Format, state, depths) -> Tuple[Optional[int], bool, bool]:
    """``(num_classes or None, distilled, fused)`` from the heads' Linear weights."""
    def weight(role, fused):
        name = 'weight' if fused else fmt.suffix(BN_LINEAR, 'linear.weight')
        return state.get(f'{fmt.path(role, depths)}.{name}')

    for fused in (False, True):
        head = weight(('head', ), fused)
        if head is not None and head.dim() == 2:
            return head.shape[0], weight(('head_dist', ), fused) is not None, fused
    return None, False, False


def _trained_img_size(fmt: Format, state, spec: dict) -> int:
    """The training resolution, from the first attention block's bias table (R*R offsets
    for an R x R grid, R = size / stem stride)."""
    table = state.get(f'{fmt.path(("attn", 0, 0, "bias"), spec["depths"])}.attention_biases')
    if table is None or table.dim() != 2:
        return 224
    square, img_size = trained_img_size(table.shape[1], spec['stem_stride'])
    return img_size if square else 224


def _problems(state, expected) -> List[str]:
    """Human-readable differences between a state dict and an expected key/shape list."""
    problems = []
    for key, (_, _, shape) in expected.items():
        if key not in state:
            problems.append(f'missing {key} {list(shape)}')
        elif tuple(state[key].shape) != tuple(shape):
            problems.append(f'{key}: expected shape {list(shape)}, '
                            f'found {list(state[key].shape)}')
    for key in state:
        if key not in expected and not key.endswith(DERIVED_SUFFIXES + (BN_COUNTER, )):
            problems.append(f'unexpected {key} {list(state[key].shape)}')
    return problems


def detect_checkpoint(state: Mapping[str, torch.Tensor],
                      arch: Union[str, dict, None] = None) -> CheckpointInfo:
    """Format and variant of a (normalised) state dict; with ``arch`` the file must be
    that variant."""
    fmt, fused = detect_format(state)
    conv = is_conv_form(state)
    candidates: Dict[str, dict]
    if arch is None:
        candidates = {name: resolve_arch(name) for name in ARCH_SETTINGS}
    else:
        candidates = {arch_name(arch): resolve_arch(arch)}
    results = []
    for name, spec in candidates.items():
        num_classes, distilled, head_fused = _head_info(fmt, state, spec['depths'])
        img_size = _trained_img_size(fmt, state, spec)
        expected = expected_tensors(fmt, spec, fused, num_classes, distilled, img_size,
                                    head_fused, conv)
        problems = _problems(state, expected)
        if not problems:
            return CheckpointInfo(fmt.name, name, spec, fused, conv, head_fused, distilled,
                                  num_classes, img_size)
        results.append((len(problems), name, problems))
    results.sort(key=lambda r: r[0])
    _, best, problems = results[0]
    form = ('fused' if fused else 'training') + (', conv' if conv else '')
    if arch is not None:
        try:  # say which variant the file *is*, if it is one
            found = detect_checkpoint(state).describe()
        except CheckpointFormatError:
            found = f'a {FORMATS[fmt.name].description} checkpoint of no known LeViT variant'
        raise CheckpointFormatError(
            f'Variant mismatch: expected LeViT-{best.upper()} ({fmt.description} layout, '
            f'{form} form), but the checkpoint is {found}. First differences: '
            + '; '.join(problems[:3]) + f' ({len(problems)} in total).')
    raise CheckpointFormatError(
        f'The checkpoint has {fmt.description} keys but matches no LeViT variant '
        f'({", ".join(ARCH_SETTINGS)}); closest is LeViT-{best.upper()} with '
        f'{len(problems)} differences, e.g. ' + '; '.join(problems[:3])
        + '. Pass arch=<dict> for a custom architecture.')


# ------------------------------------------------------------------------- conversion
def convert_state_dict(state: Mapping[str, torch.Tensor], arch: Union[str, dict, None] = None
                       ) -> Tuple['OrderedDict[str, torch.Tensor]', CheckpointInfo]:
    """Convert a LeViT state dict in any known layout to levit_mm's (== mmpretrain's).

    Training-form files give a training-form model (``head.head``/``head.head_dist``); fused
    files give levit_mm's deploy form, where two folded heads are merged into one Linear
    (``deploy=True``).  Conv-form files (LeViT-C) give the linear layout, which both of
    levit_mm's forms load (a reshape).  Derived index buffers are dropped.  Every tensor is
    checked against the detected (or given) variant's full key and shape list first.
    """
    return _convert(normalise_layout(unwrap_state_dict(state)), arch)


def foreign_to_native(state: Mapping[str, torch.Tensor], arch: Union[str, dict, None] = None
                      ) -> Optional[Tuple['OrderedDict[str, torch.Tensor]', CheckpointInfo]]:
    """:func:`convert_state_dict` for a LeViT in a foreign layout (official, timm, HF);
    ``None`` for levit_mm's own layout or a state dict of no LeViT layout at all (nothing
    to convert).  The dict is unwrapped, normalised and detected once."""
    normalised = normalise_layout(unwrap_state_dict(state))
    try:
        fmt, _ = detect_format(normalised)
    except CheckpointFormatError:
        return None
    return None if fmt is MMPRETRAIN else _convert(normalised, arch)


def _convert(state, arch) -> Tuple['OrderedDict[str, torch.Tensor]', CheckpointInfo]:
    info = detect_checkpoint(state, arch)
    fmt = FORMATS[info.format]
    source = expected_tensors(fmt, info.spec, info.fused, info.num_classes,
                              info.distilled, info.img_size, info.head_fused, info.conv)
    converted: 'OrderedDict[str, torch.Tensor]' = OrderedDict()
    for key, (unit, suffix, _) in source.items():
        target = f'{MMPRETRAIN.path(unit.role, info.spec["depths"])}.' \
                 f'{MMPRETRAIN.suffix(unit.kind, suffix)}'
        value = state[key]
        converted[target] = value.flatten(1) if unit.kind == LINEAR_BN and value.dim() == 4 \
            else value
        counter = key.rsplit('.', 1)[0] + f'.{BN_COUNTER}'
        if suffix == 'bn.running_var' and counter in state:
            converted[target.rsplit('.', 1)[0] + f'.{BN_COUNTER}'] = state[counter]
    if info.head_fused and info.distilled:
        merge_head_pairs(converted)  # levit_mm's deploy form has one merged head
    return converted, info


def mmpretrain_index_buffers(info: CheckpointInfo) -> 'OrderedDict[str, torch.Tensor]':
    """The ``attention_bias_idxs`` buffers of mmpretrain 1.2.0's own LeViT for ``info``'s
    variant and grid.  Derived data (levit_mm rebuilds and drops them as it loads), but
    persistent there: a file without them loads into mmpretrain's LeViT with a warning of
    missing keys although nothing is missing, so files written for it carry them, as
    mmpretrain's released ones do."""
    depths = info.spec['depths']
    grids = stage_grids(len(depths), info.img_size, info.spec['stem_stride'])
    buffers: 'OrderedDict[str, torch.Tensor]' = OrderedDict()
    for unit in levit_units(info.spec, info.img_size, num_classes=None):
        if unit.kind == BIAS_TABLE:
            down = unit.role[0] == 'down'
            stage = unit.role[1]
            index = table_index(grids[stage - 1] if down else grids[stage],
                                DOWN_STRIDE if down else 1)
            buffers[f'{MMPRETRAIN.path(unit.role, depths)}.{DERIVED_SUFFIXES[0]}'] = index
    return buffers


def convert_checkpoint(state_dict: Mapping[str, torch.Tensor],
                       arch: Union[str, dict, None] = None
                       ) -> 'OrderedDict[str, torch.Tensor]':
    """:func:`convert_state_dict` without the detection report."""
    return convert_state_dict(state_dict, arch)[0]
