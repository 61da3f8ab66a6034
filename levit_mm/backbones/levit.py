"""The LeViT backbone (Graham et al., ICCV 2021), at any input size.

The architectures are data (:mod:`levit_mm.arch`); one builder turns any of them, or a
user's dict, into modules.  Parameter names match mmpretrain 1.2.0's ``LeViT`` so its
released checkpoints load with every key used.
"""
from typing import Sequence, Union

import torch
import torch.nn as nn
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from torch.nn.modules.batchnorm import _BatchNorm

from ..arch import (ATTN_RATIO, DOWN_ATTN_RATIO, DOWN_STRIDE, MLP_RATIO, PATCH_SIZE,
                    down_heads, resolve_arch, stage_grids)
from ..attention_bias import subsampled_size, to_2tuple
from ..finite import check_finite
from ..folding import fold_on_load
from .layers import (MLP, Attention, AttentionSubsample, BiasedAttentionBase,
                     Residual, Stem, fuse_modules)

STEM_INDEX = 'stem'


def build_levit_stages(spec: dict, img_size, attn_ratio: float, mlp_ratio: float,
                       act_cfg: dict, drop_path_rate: float):
    """The stage modules and the trained token grid of each stage.

    Stage ``i > 0`` starts with a shrinking attention (heads ``embed_dims[i-1] //
    key_dims[i]``, value ratio 4, stride 2) and its MLP, as in the official code.
    """
    stages = nn.ModuleList()
    grids = stage_grids(len(spec['embed_dims']), img_size)
    for i, (dim, key_dim, depth, heads) in enumerate(
            zip(spec['embed_dims'], spec['key_dims'], spec['depths'],
                spec['num_heads'])):
        blocks = []
        if i > 0:
            prev = spec['embed_dims'][i - 1]
            blocks.append(AttentionSubsample(prev, dim, key_dim, down_heads(spec, i),
                                             attn_ratio=DOWN_ATTN_RATIO, act_cfg=act_cfg,
                                             stride=DOWN_STRIDE, resolution=grids[i - 1]))
            if mlp_ratio > 0:
                blocks.append(Residual(MLP(dim, mlp_ratio, act_cfg), drop_path_rate))
        for _ in range(depth):
            blocks.append(Residual(
                Attention(dim, key_dim, heads, attn_ratio, act_cfg, grids[i]),
                drop_path_rate))
            if mlp_ratio > 0:
                blocks.append(Residual(MLP(dim, mlp_ratio, act_cfg), drop_path_rate))
        stages.append(nn.Sequential(*blocks))
    return stages, grids


class LeViT(BaseBackbone):
    """LeViT backbone for classification and dense prediction, at any input size.

    Args:
        arch (str | dict): ``'128s'``, ``'128'``, ``'192'``, ``'256'``, ``'384'`` or a dict
            with ``embed_dims``, ``num_heads``, ``depths`` and ``key_dims`` (one per stage).
        img_size (int | tuple): the resolution the attention-bias tables are trained for
            (224 -> 14x14, 7x7, 4x4 grids).  Inputs may have any other size: the bias for
            the actual grid is built from the table (see :mod:`levit_mm.attention_bias`).
        patch_size (int): must be 16 (four stride-2 convolutions); kept for mmpretrain
            config compatibility.
        attn_ratio (float): value dim / key dim in the attention blocks. Defaults to 2.
        mlp_ratio (float): hidden dim / embed dim in the MLPs. Defaults to 2.
        act_cfg (dict): activation config. Defaults to Hardswish.
        hybrid_backbone (callable): builds the stem from ``embed_dims[0]``.
        out_indices (int | Sequence): stages to return (0, 1, 2 at strides 16, 32, 64;
            negative counts from the end) and ``'stem'`` for the stride-8 stem map.  Each
            output is NCHW.  Defaults to -1.
        frozen_stages (int): freeze the stem and the first ``frozen_stages`` stages
            (parameters and BN statistics); 0 freezes only the stem, -1 nothing.
        norm_eval (bool): keep every BatchNorm in eval mode while training (dense heads
            with small batches).
        drop_path_rate (float): stochastic depth on every residual block.
        deploy (bool): build directly in the folded (deploy) form.
        init_cfg (dict, optional): e.g. ``dict(type='Pretrained', checkpoint=...,
            prefix='backbone.')``.

    Cost at large inputs: stage ``i`` attends over all ``N_i = ceil(H/2^(4+i)) *
    ceil(W/2^(4+i))`` tokens, so time and memory grow with ``N_i^2``.  For LeViT-256 at
    800x1333 (token grids 50x84, 25x42, 13x21):

    * stage 0 has ``N = 4200`` tokens; each of its 4 attention blocks holds a
      ``4 x 4200^2`` score map (282 MB in fp32) and a bias of the same size, and costs
      6.8 GMAC (``Q K^T`` + ``A V``); the stride-2 shrinking attention into stage 1
      (8 heads, 1050 queries x 4200 keys) adds a 141 MB map and 5.6 GMAC;
    * attention totals 36 of the backbone's 58 GMAC at this size (at 224 the whole model
      is 1.1 GMAC), most of it in stage 0; stages 1 and 2 are cheap (26 MB and 2 MB maps
      per block);
    * maps are built block by block and freed: measured peak memory grows by about 1.1 GB
      over the model for one image in eval mode (``tools/analysis_tools/benchmark_dense.py``).
      Bias tensors are cached per block only up to 128 MiB (``MAX_CACHED_BIAS_BYTES``), so
      the 282 MB stage-0 biases are rebuilt per call (a one-pass separable gather, no
      ``N^2`` index table) and never pile up across image sizes.

    Training at such sizes also keeps the score maps for backward: budget several GB per
    800x1333 image, or train at smaller crops.
    """

    def __init__(self,
                 arch: Union[str, dict] = '128s',
                 img_size=224,
                 patch_size: int = 16,
                 attn_ratio: float = ATTN_RATIO,
                 mlp_ratio: float = MLP_RATIO,
                 act_cfg: dict = dict(type='HSwish'),
                 hybrid_backbone=Stem,
                 out_indices: Union[int, str, Sequence] = -1,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 drop_path_rate: float = 0.,
                 deploy: bool = False,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if patch_size != PATCH_SIZE:
            raise ValueError(f'LeViT\'s stem has a fixed stride of 16; got patch_size='
                             f'{patch_size}.')
        self.arch = resolve_arch(arch)
        self.embed_dims = self.arch['embed_dims']
        self.num_heads = self.arch['num_heads']
        self.key_dims = self.arch['key_dims']
        self.depths = self.arch['depths']
        self.num_stages = len(self.embed_dims)
        self.img_size = to_2tuple(img_size)

        self.patch_embed = hybrid_backbone(self.embed_dims[0], act_cfg=act_cfg)
        self.stages, self.resolutions = build_levit_stages(
            self.arch, self.img_size, attn_ratio, mlp_ratio, act_cfg, drop_path_rate)

        self.out_indices = self._parse_out_indices(out_indices)
        self.with_stem_out = STEM_INDEX in self.out_indices
        if not -1 <= frozen_stages <= self.num_stages:
            raise ValueError(f'frozen_stages must be in [-1, {self.num_stages}], got '
                             f'{frozen_stages}.')
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self._freeze_stages()

        self.deploy = False
        if deploy:
            self.switch_to_deploy()
        # a training-form checkpoint folds as it loads into the deployed form
        self.register_load_state_dict_pre_hook(fold_on_load)

    def _parse_out_indices(self, out_indices) -> list:
        if isinstance(out_indices, (int, str)):
            out_indices = [out_indices]
        if not isinstance(out_indices, Sequence):
            raise TypeError('out_indices must be an int, "stem" or a sequence of them; '
                            f'got {type(out_indices).__name__}.')
        parsed = []
        for index in out_indices:
            if index == STEM_INDEX:
                parsed.append(STEM_INDEX)
                continue
            if not isinstance(index, int) or not -self.num_stages <= index < self.num_stages:
                raise ValueError(f'Invalid out_indices entry {index!r}: use "stem" or an '
                                 f'int in [{-self.num_stages}, {self.num_stages - 1}].')
            parsed.append(index % self.num_stages)
        return parsed

    def forward(self, x: torch.Tensor):
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError('LeViT expects a batch of RGB images shaped (B, 3, H, W); got '
                             f'{tuple(x.shape)}.')
        if not (self.training or torch.jit.is_tracing() or torch.jit.is_scripting()
                or torch.compiler.is_compiling()):
            # Inference only: the check reads one reduction back to the host, a device
            # sync that a training step should not pay (a NaN input shows in its loss).
            check_finite(x, 'LeViT input')
        x, stride8 = self.patch_embed(x, with_stride8=self.with_stem_out)
        outs = {STEM_INDEX: stride8}
        x = x.permute(0, 2, 3, 1)  # tokens as (B, H, W, C)
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.out_indices:
                outs[i] = x.permute(0, 3, 1, 2).contiguous()
        return tuple(outs[i] for i in self.out_indices)

    def _freeze_stages(self):
        if self.frozen_stages < 0:
            return
        frozen = [self.patch_embed] + list(self.stages[:self.frozen_stages])
        for module in frozen:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self

    def switch_to_deploy(self):
        """Fold every Conv+BN and Linear+BN into one layer and materialise the bias
        tensors for the trained grid; eval-mode outputs are unchanged."""
        if self.deploy:
            return
        fuse_modules(self)
        for module in self.modules():
            # Every activation here reads a fresh Linear/Conv/attention output, which
            # nothing else uses: overwrite it rather than allocate.
            if isinstance(module, nn.Hardswish):
                module.inplace = True
        self.deploy = True
        self.materialise_biases()

    @torch.no_grad()
    def materialise_biases(self):
        """Fill every block's bias cache for its trained grid (done lazily otherwise)."""
        for module in self.modules():
            if isinstance(module, BiasedAttentionBase):
                keys = module.trained_resolution
                module.attention_bias(subsampled_size(keys, module.stride), keys)

    def clear_bias_caches(self):
        for module in self.modules():
            if isinstance(module, BiasedAttentionBase):
                module.clear_bias_cache()
