"""Where each public LeViT layout keeps each unit of :mod:`levit_mm.convert.layout`.

A format is data: a name, a path template per kind of unit (filled from the role's block
indices, :func:`role_fields`), the names of the attention sub-layers, and the names of the
two sub-modules of a Conv/Linear+BN pair.  Fused (deploy) forms keep the same paths with the pair
replaced by one layer (``path.weight``, ``path.bias``):

* ``official``: facebookresearch/LeViT; its ``utils.replace_batchnorm`` gives the fused form.
* ``timm``: ``timm.models.levit`` (linear mode); fused = each module's own ``fuse()``.
* ``hf``: Hugging Face ``transformers`` LeViT; no fused form exists there.
* ``mmpretrain``: mmpretrain 1.2.0's LeViT, which is levit_mm's own layout; its deploy form
  also merges the two heads into one (``head.head``).
"""
from dataclasses import dataclass
from typing import Dict, Sequence, Tuple

from .layout import BN_LINEAR, CONV_BN, LINEAR_BN, Role


#: names the templates below can use, per role (see :func:`role_fields`)
_UP_DOWN = ('linear_up', 'linear_down')


def role_fields(role: Role, depths: Sequence[int]) -> Dict[str, object]:
    """The numbers every layout's paths are made of, for one role.

    ``off``: index in the official flat ``blocks`` list (2 per attention/MLP pair before
    it, plus 2 per shrinking attention + MLP); ``mm``: index inside levit_mm's stage;
    ``hf``: index inside HF's stage, which keeps each shrinking attention (and its MLP) at
    the *end* of the previous stage.  MLP roles point one module past their attention.
    """
    kind = role[0]
    if kind == 'stem':
        return dict(conv=2 * role[1], n=role[1] + 1)
    if kind in ('head', 'head_dist'):
        return dict(kind=kind)
    stage = role[1]
    mlp = kind in ('mlp', 'down_mlp')
    fields = dict(s=stage, prev=stage - 1, j=role[-1] if mlp else 0)
    if mlp:
        fields.update(j2=2 * (role[-1] - 1), updown=_UP_DOWN[role[-1] - 1])
    first = sum(2 * d for d in depths[:stage]) + 2 * stage
    if kind.startswith('down'):
        return dict(fields, off=first - 2 + mlp, hf=2 * depths[stage - 1] + mlp)
    block = role[2]
    return dict(fields, b=block, off=first + 2 * block + mlp, hf=2 * block + mlp,
                mm=(2 if stage > 0 else 0) + 2 * block + mlp)


@dataclass(frozen=True)
class Format:
    name: str
    description: str
    #: kind -> path template over :func:`role_fields` (``head`` covers ``head_dist``
    #: unless the kind has its own)
    templates: Dict[str, str]
    #: 'down'/'attn' -> sub-layer -> name under the block's path ('' for the bias table)
    leaves: Dict[str, Dict[str, str]]
    #: kind -> name of the Conv/Linear sub-module (the BN is ``bn_name``)
    weight_name: Dict[str, str]
    bn_name: str
    #: a key only this format has, in its plain and (if any) fused form: used to detect it
    signatures: Tuple[str, ...]

    def path(self, role: Role, depths: Sequence[int]) -> str:
        """The module path of the unit with structural role ``role``."""
        kind = role[0]
        template = self.templates.get(kind) or self.templates[kind.replace('_dist', '')]
        path = template.format(**role_fields(role, depths))
        leaf = self.leaves[kind][role[-1]] if kind in self.leaves else ''
        return f'{path}.{leaf}' if leaf else path

    def suffix(self, kind: str, levit_suffix: str) -> str:
        """Rename a unit tensor suffix from levit_mm's sub-module names to this format's."""
        head, _, tail = levit_suffix.partition('.')
        if not tail:  # fused weight/bias, or a bias table
            return levit_suffix
        if head == 'bn':
            return f'{self.bn_name}.{tail}'
        return f'{self.weight_name[kind]}.{tail}'


#: the shrinking and plain attentions' sub-layers, as levit_mm, mmpretrain and the
#: official code name them
_QKV_LEAVES = dict(down={'bias': '', 'kv': 'kv', 'q': 'q.1', 'proj': 'proj.1'},
                   attn={'bias': '', 'qkv': 'qkv', 'proj': 'proj.1'})

MMPRETRAIN = Format(
    'mmpretrain', 'mmpretrain 1.2.0 / levit_mm',
    dict(stem='backbone.patch_embed.patch_embed.{conv}', head='head.{kind}',
         down='backbone.stages.{s}.0', down_mlp='backbone.stages.{s}.1.block.linear{j}',
         attn='backbone.stages.{s}.{mm}.block', mlp='backbone.stages.{s}.{mm}.block.linear{j}'),
    _QKV_LEAVES, {CONV_BN: 'conv', LINEAR_BN: 'linear', BN_LINEAR: 'linear'}, 'bn',
    ('backbone.patch_embed.patch_embed.0.conv.weight',
     'backbone.patch_embed.patch_embed.0.weight'))
OFFICIAL = Format(
    'official', 'facebookresearch/LeViT',
    dict(stem='patch_embed.{conv}', head='{kind}', down='blocks.{off}',
         down_mlp='blocks.{off}.m.{j2}', attn='blocks.{off}.m', mlp='blocks.{off}.m.{j2}'),
    _QKV_LEAVES, {CONV_BN: 'c', LINEAR_BN: 'c', BN_LINEAR: 'l'}, 'bn',
    ('patch_embed.0.c.weight', 'patch_embed.0.weight'))
TIMM = Format(
    'timm', 'timm levit_*',
    dict(stem='stem.conv{n}', head='{kind}', down='stages.{s}.downsample.attn_downsample',
         down_mlp='stages.{s}.downsample.mlp.ln{j}', attn='stages.{s}.blocks.{b}.attn',
         mlp='stages.{s}.blocks.{b}.mlp.ln{j}'),
    dict(down={'bias': '', 'kv': 'kv', 'q': 'q.ln', 'proj': 'proj.ln'},
         attn={'bias': '', 'qkv': 'qkv', 'proj': 'proj.ln'}),
    {CONV_BN: 'linear', LINEAR_BN: 'linear', BN_LINEAR: 'linear'}, 'bn',
    ('stem.conv1.linear.weight', 'stem.conv1.weight'))
HF = Format(
    'hf', 'Hugging Face transformers Levit*',
    dict(stem='levit.patch_embeddings.embedding_layer_{n}', head='classifier',
         head_dist='classifier_distill', down='levit.encoder.stages.{prev}.layers.{hf}',
         down_mlp='levit.encoder.stages.{prev}.layers.{hf}.module.{updown}',
         attn='levit.encoder.stages.{s}.layers.{hf}.module',
         mlp='levit.encoder.stages.{s}.layers.{hf}.module.{updown}'),
    dict(down={'bias': '', 'kv': 'keys_values', 'q': 'queries', 'proj': 'projection'},
         attn={'bias': '', 'qkv': 'queries_keys_values', 'proj': 'projection'}),
    {CONV_BN: 'convolution', LINEAR_BN: 'linear', BN_LINEAR: 'linear'}, 'batch_norm',
    ('levit.patch_embeddings.embedding_layer_1.convolution.weight', ))

FORMATS: Dict[str, Format] = {f.name: f for f in (MMPRETRAIN, OFFICIAL, TIMM, HF)}
