"""Where each public LeViT layout keeps each unit of :mod:`levit_mm.convert.layout`.

A format is a name, the module path of every structural role, and the names of the two
sub-modules of a Conv/Linear+BN pair.  Fused (deploy) forms keep the same paths with the pair
replaced by one layer (``path.weight``, ``path.bias``):

* ``official``: facebookresearch/LeViT; its ``utils.replace_batchnorm`` gives the fused form.
* ``timm``: ``timm.models.levit`` (linear mode); fused = each module's own ``fuse()``.
* ``hf``: Hugging Face ``transformers`` LeViT; no fused form exists there.
* ``mmpretrain``: mmpretrain 1.2.0's LeViT, which is levit_mm's own layout; its deploy form
  also merges the two heads into one (``head.head``).
"""
from dataclasses import dataclass
from typing import Callable, Dict, Sequence, Tuple

from .layout import BN_LINEAR, CONV_BN, LINEAR_BN, Role


@dataclass(frozen=True)
class Format:
    name: str
    description: str
    #: (role, depths) -> module path of that unit
    path: Callable[[Role, Sequence[int]], str]
    #: kind -> name of the Conv/Linear sub-module (the BN is ``bn_name``)
    weight_name: Dict[str, str]
    bn_name: str
    #: a key only this format has, in its plain and (if any) fused form: used to detect it
    signatures: Tuple[str, ...]

    def suffix(self, kind: str, levit_suffix: str) -> str:
        """Rename a unit tensor suffix from levit_mm's sub-module names to this format's."""
        head, _, tail = levit_suffix.partition('.')
        if not tail:  # fused weight/bias, or a bias table
            return levit_suffix
        if head == 'bn':
            return f'{self.bn_name}.{tail}'
        return f'{self.weight_name[kind]}.{tail}'


# ---------------------------------------------------------------- mmpretrain / levit_mm
def _mmpretrain_path(role: Role, depths: Sequence[int]) -> str:
    kind = role[0]
    if kind == 'stem':
        return f'backbone.patch_embed.patch_embed.{2 * role[1]}'
    if kind in ('head', 'head_dist'):
        return f'head.{kind}'
    stage = role[1]
    if kind == 'down':
        return _join(f'backbone.stages.{stage}.0',
                     {'bias': '', 'kv': 'kv', 'q': 'q.1', 'proj': 'proj.1'}[role[2]])
    if kind == 'down_mlp':
        return f'backbone.stages.{stage}.1.block.linear{role[2]}'
    first = 2 if stage > 0 else 0  # stages after the first start with attn-down + MLP
    index = first + 2 * role[2]
    if kind == 'attn':
        return _join(f'backbone.stages.{stage}.{index}.block',
                     {'bias': '', 'qkv': 'qkv', 'proj': 'proj.1'}[role[3]])
    return f'backbone.stages.{stage}.{index + 1}.block.linear{role[3]}'


# ---------------------------------------------------------------- official
def _official_block(stage: int, depths: Sequence[int]) -> int:
    """Index in the flat ``blocks`` Sequential of stage ``stage``'s first attention
    block: 2 per (attention, MLP) pair before it, plus 2 per shrinking attention + MLP."""
    return sum(2 * d for d in depths[:stage]) + 2 * stage


def _official_path(role: Role, depths: Sequence[int]) -> str:
    kind = role[0]
    if kind == 'stem':
        return f'patch_embed.{2 * role[1]}'
    if kind in ('head', 'head_dist'):
        return kind
    stage = role[1]
    if kind in ('down', 'down_mlp'):
        index = _official_block(stage, depths) - 2
        if kind == 'down':  # not wrapped in a Residual
            return _join(f'blocks.{index}',
                         {'bias': '', 'kv': 'kv', 'q': 'q.1', 'proj': 'proj.1'}[role[2]])
        return f'blocks.{index + 1}.m.{2 * (role[2] - 1)}'
    index = _official_block(stage, depths) + 2 * role[2]
    if kind == 'attn':
        return _join(f'blocks.{index}.m',
                     {'bias': '', 'qkv': 'qkv', 'proj': 'proj.1'}[role[3]])
    return f'blocks.{index + 1}.m.{2 * (role[3] - 1)}'


# ---------------------------------------------------------------- timm
def _timm_path(role: Role, depths: Sequence[int]) -> str:
    kind = role[0]
    if kind == 'stem':
        return f'stem.conv{role[1] + 1}'
    if kind in ('head', 'head_dist'):
        return kind
    stage = role[1]
    if kind == 'down':
        return _join(f'stages.{stage}.downsample.attn_downsample',
                     {'bias': '', 'kv': 'kv', 'q': 'q.ln', 'proj': 'proj.ln'}[role[2]])
    if kind == 'down_mlp':
        return f'stages.{stage}.downsample.mlp.ln{role[2]}'
    block = f'stages.{stage}.blocks.{role[2]}'
    if kind == 'attn':
        return _join(f'{block}.attn',
                     {'bias': '', 'qkv': 'qkv', 'proj': 'proj.ln'}[role[3]])
    return f'{block}.mlp.ln{role[3]}'


# ---------------------------------------------------------------- Hugging Face
def _hf_path(role: Role, depths: Sequence[int]) -> str:
    """HF keeps each shrinking attention (and its MLP) at the *end* of the previous stage."""
    kind = role[0]
    if kind == 'stem':
        return f'levit.patch_embeddings.embedding_layer_{role[1] + 1}'
    if kind == 'head':
        return 'classifier'
    if kind == 'head_dist':
        return 'classifier_distill'
    stage = role[1]
    if kind in ('down', 'down_mlp'):
        layers = f'levit.encoder.stages.{stage - 1}.layers'
        index = 2 * depths[stage - 1]
        if kind == 'down':
            return _join(f'{layers}.{index}',
                         {'bias': '', 'kv': 'keys_values', 'q': 'queries',
                          'proj': 'projection'}[role[2]])
        return f'{layers}.{index + 1}.module.' + ('linear_up' if role[2] == 1
                                                   else 'linear_down')
    layers = f'levit.encoder.stages.{stage}.layers'
    if kind == 'attn':
        return _join(f'{layers}.{2 * role[2]}.module',
                     {'bias': '', 'qkv': 'queries_keys_values',
                      'proj': 'projection'}[role[3]])
    return f'{layers}.{2 * role[2] + 1}.module.' + ('linear_up' if role[3] == 1
                                                     else 'linear_down')


def _join(base: str, leaf: str) -> str:
    return f'{base}.{leaf}' if leaf else base


MMPRETRAIN = Format(
    'mmpretrain', 'mmpretrain 1.2.0 / levit_mm', _mmpretrain_path,
    {CONV_BN: 'conv', LINEAR_BN: 'linear', BN_LINEAR: 'linear'}, 'bn',
    ('backbone.patch_embed.patch_embed.0.conv.weight',
     'backbone.patch_embed.patch_embed.0.weight'))
OFFICIAL = Format(
    'official', 'facebookresearch/LeViT', _official_path,
    {CONV_BN: 'c', LINEAR_BN: 'c', BN_LINEAR: 'l'}, 'bn',
    ('patch_embed.0.c.weight', 'patch_embed.0.weight'))
TIMM = Format(
    'timm', 'timm levit_*', _timm_path,
    {CONV_BN: 'linear', LINEAR_BN: 'linear', BN_LINEAR: 'linear'}, 'bn',
    ('stem.conv1.linear.weight', 'stem.conv1.weight'))
HF = Format(
    'hf', 'Hugging Face transformers Levit*', _hf_path,
    {CONV_BN: 'convolution', LINEAR_BN: 'linear', BN_LINEAR: 'linear'}, 'batch_norm',
    ('levit.patch_embeddings.embedding_layer_1.convolution.weight', ))

FORMATS: Dict[str, Format] = {f.name: f for f in (MMPRETRAIN, OFFICIAL, TIMM, HF)}
