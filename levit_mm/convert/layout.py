"""The parameter units of a LeViT, named structurally, with their shapes.

Every public LeViT layout (official, timm, Hugging Face, mmpretrain/levit_mm) stores the same
tensors with the same shapes; only the module paths differ.  The conv form (LeViT-C: the
official ``levit_c.py``, timm's ``levit_conv_*``, levit_mm's ``form='conv'``) stores every
Linear+BN weight as a 1x1 convolution kernel, ``(out, in, 1, 1)`` instead of ``(out, in)``;
nothing else differs.  This module lists those tensors
once, as *units* (a Conv+BN, a Linear+BN, a BN+Linear head, a bias table), each with a
structural *role* such as ``('attn', stage, block, 'qkv')``.  A layout is then just a
function from role to module path (:mod:`levit_mm.convert.formats`).

Pure data: no modules, no files.
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from ..arch import ATTN_RATIO, DOWN_ATTN_RATIO, MLP_RATIO, down_heads, stage_grids, stem_channels
from ..folding import BN_COUNTER, BN_KEYS as BN_STATS  # noqa: F401  (BN_COUNTER: public)

Role = Tuple
Shape = Tuple[int, ...]

#: unit kinds
CONV_BN = 'conv_bn'      # Conv2d(bias=False) -> BatchNorm2d
LINEAR_BN = 'linear_bn'  # Linear(bias=False) -> BatchNorm1d
BN_LINEAR = 'bn_linear'  # BatchNorm1d -> Linear (the classifier heads)
BIAS_TABLE = 'bias_table'  # an attention block's learned bias table


@dataclass(frozen=True)
class Unit:
    """One group of tensors: ``out_dim x in_dim`` weights (plus BN), or a bias table
    ``(heads, offsets)`` stored as ``out_dim, in_dim``."""
    role: Role
    kind: str
    out_dim: int
    in_dim: int

    def tensor_shapes(self, fused: bool, conv: bool = False) -> Dict[str, Shape]:
        """Suffix -> shape, with levit_mm's sub-module names (``conv``/``linear``/``bn``);
        formats rename the first component.  Fused units are one ``weight``/``bias``.
        ``conv``: the conv form (LeViT-C), whose Linear+BN units are 1x1 convolutions."""
        o, i = self.out_dim, self.in_dim
        if self.kind == BIAS_TABLE:
            return {'attention_biases': (o, i)}
        if self.kind == CONV_BN:
            weight = (o, i, 3, 3)
        else:
            weight = (o, i, 1, 1) if conv and self.kind == LINEAR_BN else (o, i)
        if fused:
            return {'weight': weight, 'bias': (o, )}
        if self.kind == BN_LINEAR:
            shapes = {f'bn.{s}': (i, ) for s in BN_STATS}
            shapes.update({'linear.weight': weight, 'linear.bias': (o, )})
            return shapes
        first = 'conv' if self.kind == CONV_BN else 'linear'
        shapes = {f'{first}.weight': weight}
        shapes.update({f'bn.{s}': (o, ) for s in BN_STATS})
        return shapes


def levit_units(spec: dict, img_size: int = 224, num_classes: Optional[int] = 1000,
                distilled: bool = True) -> List[Unit]:
    """All units of a LeViT classifier in the official module order.

    ``spec`` is a resolved arch dict (``embed_dims``, ``num_heads``, ``depths``,
    ``key_dims``, ``stem_stride``).  ``num_classes=None`` lists the backbone only.
    """
    dims, heads, depths, key_dims = (spec['embed_dims'], spec['num_heads'],
                                     spec['depths'], spec['key_dims'])
    grids = stage_grids(len(depths), img_size, spec['stem_stride'])
    units: List[Unit] = []
    stem = stem_channels(dims[0], spec['stem_stride'])
    for i in range(len(stem) - 1):
        units.append(Unit(('stem', i), CONV_BN, stem[i + 1], stem[i]))
    for s, (dim, kd, nh, depth) in enumerate(zip(dims, key_dims, heads, depths)):
        if s > 0:
            prev = dims[s - 1]
            heads = down_heads(spec, s)
            value_dims = DOWN_ATTN_RATIO * kd * heads
            prev_grid = grids[s - 1]
            units += [
                Unit(('down', s, 'bias'), BIAS_TABLE, heads, prev_grid[0] * prev_grid[1]),
                Unit(('down', s, 'kv'), LINEAR_BN, value_dims + kd * heads, prev),
                Unit(('down', s, 'q'), LINEAR_BN, kd * heads, prev),
                Unit(('down', s, 'proj'), LINEAR_BN, dim, value_dims),
            ]
            units += _mlp_units(('down_mlp', s), dim)
        value_dims = ATTN_RATIO * kd * nh
        for b in range(depth):
            units += [
                Unit(('attn', s, b, 'bias'), BIAS_TABLE, nh, grids[s][0] * grids[s][1]),
                Unit(('attn', s, b, 'qkv'), LINEAR_BN, value_dims + 2 * kd * nh, dim),
                Unit(('attn', s, b, 'proj'), LINEAR_BN, dim, value_dims),
            ]
            units += _mlp_units(('mlp', s, b), dim)
    if num_classes is not None:
        units.append(Unit(('head', ), BN_LINEAR, num_classes, dims[-1]))
        if distilled:
            units.append(Unit(('head_dist', ), BN_LINEAR, num_classes, dims[-1]))
    return units


def _mlp_units(role: Role, dim: int) -> List[Unit]:
    hidden = MLP_RATIO * dim
    return [Unit(role + (1, ), LINEAR_BN, hidden, dim),
            Unit(role + (2, ), LINEAR_BN, dim, hidden)]
