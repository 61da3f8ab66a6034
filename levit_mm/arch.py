"""The LeViT architectures as data: the one table the backbone, the converter and the
checks all read.

An arch is ``embed_dims``, ``num_heads``, ``depths`` and ``key_dims`` (one entry per
stage).  Everything else about a published LeViT follows from it and from the constants
below: the stem widths, the shrinking attentions' heads, the trained token grids.

Nothing here knows about modules, files or devices.
"""
import copy
from typing import Dict, List, Sequence, Tuple, Union

from .attention_bias import Size2, subsampled_size, to_2tuple

#: embed dims, heads and depths per stage, and the key dim of the attention blocks.
ARCH_SETTINGS: Dict[str, Dict[str, List[int]]] = {
    '128s': dict(embed_dims=[128, 256, 384], num_heads=[4, 6, 8], depths=[2, 3, 4],
                 key_dims=[16, 16, 16]),
    '128': dict(embed_dims=[128, 256, 384], num_heads=[4, 8, 12], depths=[4, 4, 4],
                key_dims=[16, 16, 16]),
    '192': dict(embed_dims=[192, 288, 384], num_heads=[3, 5, 6], depths=[4, 4, 4],
                key_dims=[32, 32, 32]),
    '256': dict(embed_dims=[256, 384, 512], num_heads=[4, 6, 8], depths=[4, 4, 4],
                key_dims=[32, 32, 32]),
    '384': dict(embed_dims=[384, 512, 768], num_heads=[6, 9, 12], depths=[4, 4, 4],
                key_dims=[32, 32, 32]),
}
ARCH_KEYS = ('embed_dims', 'num_heads', 'depths', 'key_dims')

#: value dim / key dim of the attention blocks, of the shrinking attentions, and the MLP
#: hidden / embed ratio (the official code's constants for every published variant)
ATTN_RATIO = 2
DOWN_ATTN_RATIO = 4
MLP_RATIO = 2
#: the stem's four stride-2 convolutions, and the shrinking attentions' stride
PATCH_SIZE = 16
DOWN_STRIDE = 2


def resolve_arch(arch: Union[str, dict]) -> Dict[str, List[int]]:
    """Turn an arch name or dict into a validated ``{embed_dims, num_heads, depths,
    key_dims}`` dict (lists of equal length), with a message that says what is wrong."""
    if isinstance(arch, str):
        name = arch.lower()
        if name not in ARCH_SETTINGS:
            raise ValueError(f'Unknown LeViT arch {arch!r}; choose one of '
                             f'{sorted(ARCH_SETTINGS)} or pass a dict with keys '
                             f'{list(ARCH_KEYS)}.')
        return copy.deepcopy(ARCH_SETTINGS[name])
    if not isinstance(arch, dict):
        raise TypeError(f'LeViT arch must be a name or a dict, got {type(arch).__name__}.')
    missing = [k for k in ARCH_KEYS if k not in arch]
    extra = [k for k in arch if k not in ARCH_KEYS]
    if missing or extra:
        raise ValueError(f'Custom LeViT arch needs exactly the keys {list(ARCH_KEYS)}; '
                         f'missing {missing}, unexpected {extra}.')
    spec = {k: list(arch[k]) for k in ARCH_KEYS}
    lengths = {k: len(v) for k, v in spec.items()}
    if len(set(lengths.values())) != 1 or lengths['embed_dims'] == 0:
        raise ValueError(f'Custom LeViT arch lists must have one entry per stage and the '
                         f'same length; got lengths {lengths}.')
    for i in range(1, len(spec['embed_dims'])):
        if spec['embed_dims'][i - 1] % spec['key_dims'][i]:
            raise ValueError(
                f'Stage {i}: the shrinking attention uses embed_dims[{i - 1}] // '
                f'key_dims[{i}] heads, so {spec["embed_dims"][i - 1]} must be divisible '
                f'by {spec["key_dims"][i]}.')
    if spec['embed_dims'][0] % 8:
        raise ValueError('embed_dims[0] must be divisible by 8 (the stem widths are '
                         f'C/8, C/4, C/2); got {spec["embed_dims"][0]}.')
    return spec


def arch_name(arch: Union[str, dict]) -> str:
    """The table's name for an arch (name or dict), or ``'custom'``."""
    if isinstance(arch, str):
        return arch.lower()
    spec = resolve_arch(arch)
    for name, known in ARCH_SETTINGS.items():
        if known == spec:
            return name
    return 'custom'


def stem_channels(embed_dim: int) -> List[int]:
    """Channels along the stem: 3 -> C/8 -> C/4 -> C/2 -> C."""
    return [3, embed_dim // 8, embed_dim // 4, embed_dim // 2, embed_dim]


def down_heads(spec: dict, stage: int) -> int:
    """Heads of the shrinking attention that starts ``stage`` (> 0)."""
    return spec['embed_dims'][stage - 1] // spec['key_dims'][stage]


def stage_grids(num_stages: int, img_size: Union[int, Sequence[int]]) -> List[Size2]:
    """The token grid each stage's bias tables are trained for: stride 16, then halved
    (ceil) per stage."""
    grid = subsampled_size(to_2tuple(img_size), PATCH_SIZE)
    grids = []
    for i in range(num_stages):
        if i > 0:
            grid = subsampled_size(grid, DOWN_STRIDE)
        grids.append(grid)
    return grids


def trained_img_size(stage0_offsets: int) -> Tuple[bool, int]:
    """``(square, img_size)`` from the number of offsets in a stage-0 bias table (``R*R``
    for an ``R x R`` grid, ``R = img_size / 16``)."""
    side = int(stage0_offsets**0.5 + 0.5)
    return side * side == stage0_offsets, side * PATCH_SIZE
