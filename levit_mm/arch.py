"""The LeViT architectures as data: the one table the backbone, the converter and the
checks all read.

An arch is ``embed_dims``, ``num_heads``, ``depths`` and ``key_dims`` (one entry per
stage), plus two settings with defaults: ``stem_stride`` (16: four stride-2 convolutions,
or 8: three, so the stages run on a grid twice as fine) and ``act`` (the activation, an
mmcv name: ``'HSwish'`` for the published models, ``'SiLU'`` for timm's larger
experiments).  Everything else about a LeViT follows from it and from the constants
below: the stem widths, the shrinking attentions' heads, the trained token grids.

Nothing here knows about modules, files or devices.
"""
import copy
from typing import Dict, List, Sequence, Tuple, Union

from .attention_bias import Size2, subsampled_size, to_2tuple

#: embed dims, heads and depths per stage, the key dim of the attention blocks, and
#: (where not the default) the stem stride and the activation.
ARCH_SETTINGS: Dict[str, dict] = {
    # the published variants (facebookresearch/LeViT, ImageNet-1k weights)
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
    # timm's larger experiments (``levit_<name>``; no trained weights exist anywhere)
    '384_s8': dict(embed_dims=[384, 512, 768], num_heads=[6, 9, 12], depths=[4, 4, 4],
                   key_dims=[32, 32, 32], stem_stride=8, act='SiLU'),
    '512_s8': dict(embed_dims=[512, 640, 896], num_heads=[8, 10, 14], depths=[4, 4, 4],
                   key_dims=[64, 64, 64], stem_stride=8, act='SiLU'),
    '512': dict(embed_dims=[512, 768, 1024], num_heads=[8, 12, 16], depths=[4, 4, 4],
                key_dims=[64, 64, 64], act='SiLU'),
    '256d': dict(embed_dims=[256, 384, 512], num_heads=[4, 6, 8], depths=[4, 8, 6],
                 key_dims=[32, 32, 32], act='SiLU'),
    '512d': dict(embed_dims=[512, 640, 768], num_heads=[8, 10, 12], depths=[4, 8, 6],
                 key_dims=[64, 64, 64], act='SiLU'),
}
#: the per-stage lists every arch gives
ARCH_KEYS = ('embed_dims', 'num_heads', 'depths', 'key_dims')
#: the settings an arch may give, and their values when it does not
ARCH_DEFAULTS = dict(stem_stride=16, act='HSwish')
#: the variants with released ImageNet weights (metafile, model zoo, default benchmarks)
PUBLISHED_ARCHS = ('128s', '128', '192', '256', '384')
#: stem strides a stem of stride-2 convolutions can have here
STEM_STRIDES = (8, 16)

#: value dim / key dim of the attention blocks, of the shrinking attentions, and the MLP
#: hidden / embed ratio (the official code's constants for every published variant)
ATTN_RATIO = 2
DOWN_ATTN_RATIO = 4
MLP_RATIO = 2
#: the shrinking attentions' stride
DOWN_STRIDE = 2


def resolve_arch(arch: Union[str, dict]) -> dict:
    """Turn an arch name or dict into a validated ``{embed_dims, num_heads, depths,
    key_dims, stem_stride, act}`` dict (lists of equal length, defaults filled in), with a
    message that says what is wrong."""
    if isinstance(arch, str):
        name = arch.lower()
        if name not in ARCH_SETTINGS:
            raise ValueError(f'Unknown LeViT arch {arch!r}; choose one of '
                             f'{list(ARCH_SETTINGS)} or pass a dict with keys '
                             f'{list(ARCH_KEYS)} (optional: {list(ARCH_DEFAULTS)}).')
        arch = ARCH_SETTINGS[name]
    elif not isinstance(arch, dict):
        raise TypeError(f'LeViT arch must be a name or a dict, got {type(arch).__name__}.')
    missing = [k for k in ARCH_KEYS if k not in arch]
    extra = [k for k in arch if k not in ARCH_KEYS and k not in ARCH_DEFAULTS]
    if missing or extra:
        raise ValueError(f'Custom LeViT arch needs exactly the keys {list(ARCH_KEYS)} '
                         f'(optional: {list(ARCH_DEFAULTS)}); missing {missing}, '
                         f'unexpected {extra}.')
    spec = {k: list(arch[k]) for k in ARCH_KEYS}
    spec.update({k: copy.deepcopy(arch.get(k, v)) for k, v in ARCH_DEFAULTS.items()})
    lengths = {k: len(spec[k]) for k in ARCH_KEYS}
    if len(set(lengths.values())) != 1 or lengths['embed_dims'] == 0:
        raise ValueError(f'Custom LeViT arch lists must have one entry per stage and the '
                         f'same length; got lengths {lengths}.')
    for i in range(1, len(spec['embed_dims'])):
        if spec['embed_dims'][i - 1] % spec['key_dims'][i]:
            raise ValueError(
                f'Stage {i}: the shrinking attention uses embed_dims[{i - 1}] // '
                f'key_dims[{i}] heads, so {spec["embed_dims"][i - 1]} must be divisible '
                f'by {spec["key_dims"][i]}.')
    if spec['stem_stride'] not in STEM_STRIDES:
        raise ValueError(f'stem_stride must be one of {list(STEM_STRIDES)} (stride-2 '
                         f'convolutions); got {spec["stem_stride"]!r}.')
    widths = stem_channels(spec['embed_dims'][0], spec['stem_stride'])
    if spec['embed_dims'][0] % (spec['stem_stride'] // 2):
        raise ValueError(f'embed_dims[0] must be divisible by {spec["stem_stride"] // 2} '
                         f'(the stem widths are {widths[1:]} for C = embed_dims[0]); got '
                         f'{spec["embed_dims"][0]}.')
    if not isinstance(spec['act'], str):
        raise ValueError(f'act must be an activation name such as {ARCH_DEFAULTS["act"]!r} '
                         f'or \'SiLU\'; got {spec["act"]!r}.')
    return spec


def same_tensors(spec: dict, other: dict) -> bool:
    """Whether two resolved archs hold the same tensors (they may differ in activation)."""
    return all(spec[k] == other[k] for k in ARCH_KEYS + ('stem_stride', ))


def arch_name(arch: Union[str, dict]) -> str:
    """The table's name for an arch (name or dict), or ``'custom'``."""
    if isinstance(arch, str):
        return arch.lower()
    spec = resolve_arch(arch)
    for name in ARCH_SETTINGS:
        if resolve_arch(name) == spec:
            return name
    return 'custom'


def stem_channels(embed_dim: int, stride: int) -> List[int]:
    """Channels along the stem, one stride-2 convolution per halving: 3 -> C/8 -> C/4 ->
    C/2 -> C for stride 16, 3 -> C/4 -> C/2 -> C for stride 8."""
    convs = stride.bit_length() - 1
    return [3] + [embed_dim >> (convs - 1 - i) for i in range(convs)]


def down_heads(spec: dict, stage: int) -> int:
    """Heads of the shrinking attention that starts ``stage`` (> 0)."""
    return spec['embed_dims'][stage - 1] // spec['key_dims'][stage]


def stage_grids(num_stages: int, img_size: Union[int, Sequence[int]],
                stem_stride: int) -> List[Size2]:
    """The token grid each stage's bias tables are trained for: the stem's stride, then
    halved (ceil) per stage."""
    grid = subsampled_size(to_2tuple(img_size), stem_stride)
    grids = []
    for i in range(num_stages):
        if i > 0:
            grid = subsampled_size(grid, DOWN_STRIDE)
        grids.append(grid)
    return grids


def trained_img_size(stage0_offsets: int, stem_stride: int) -> Tuple[bool, int]:
    """``(square, img_size)`` from the number of offsets in a stage-0 bias table (``R*R``
    for an ``R x R`` grid, ``R = img_size / stem_stride``)."""
    side = int(stage0_offsets**0.5 + 0.5)
    return side * side == stage0_offsets, side * stem_stride
