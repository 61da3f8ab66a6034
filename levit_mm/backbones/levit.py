"""The LeViT backbone (Graham et al., ICCV 2021), at any input size, in either form.

The architectures are data (:mod:`levit_mm.arch`); one builder turns any of them, or a
user's dict, into modules, in the linear form (``(B, H, W, C)`` tokens) or the conv form,
LeViT-C (``(B, C, H, W)`` maps, 1x1 convolutions): the same blocks (:mod:`.layers`) given
another pointwise layer.
Parameter names match mmpretrain 1.2.0's ``LeViT`` in both forms, so its released
checkpoints load with every key used.
"""
import contextlib
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from torch.nn.modules.batchnorm import _BatchNorm

from ..arch import (ATTN_RATIO, DOWN_ATTN_RATIO, DOWN_STRIDE, MLP_RATIO, arch_name,
                    down_heads, resolve_arch, stage_grids)
from ..attention_bias import to_2tuple
from ..finite import check_finite, refuse_non_finite_on_load
from ..folding import fold_on_load
from ..forms import check_form, match_form_on_load
from .layers import (MLP, Attention, AttentionSubsample, LinearBN, PointwiseConvBN, Residual,
                     Stem, fuse_modules, residual_branch_norms)

STEM_INDEX = 'stem'
#: form -> its pointwise Linear/Conv+BN (which also says where the channel axis is)
FORM_POINTWISE = {'linear': LinearBN, 'conv': PointwiseConvBN}


class Layer:
    """Some consecutive modules of a stage, called in turn (not a Module: it owns no
    parameters, the stage does)."""

    def __init__(self, modules: List[nn.Module]):
        self.modules = modules

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for module in self.modules:
            x = module(x)
        return x


@contextlib.contextmanager
def _batchnorm_stats_frozen(modules: List[nn.Module]):
    """BatchNorms normalise with batch statistics (training) but leave their running
    statistics and counters as they are: the recomputation of a checkpointed layer must not
    update them a second time.  (Momentum 0 keeps the running averages exactly; dropping
    them instead would change what the recomputation saves for backward.)"""
    norms = [m for module in modules for m in module.modules()
             if isinstance(m, _BatchNorm) and m.training and m.track_running_stats]
    saved = [(norm.momentum, None if norm.num_batches_tracked is None
              else norm.num_batches_tracked.clone()) for norm in norms]
    for norm in norms:
        norm.momentum = 0.
    try:
        yield
    finally:
        for norm, (momentum, count) in zip(norms, saved):
            norm.momentum = momentum
            if count is not None:
                norm.num_batches_tracked.copy_(count)


def checkpoint_call(function, *args):
    """``function(*args)`` keeping only its inputs for backward, which recomputes it: the
    first forward runs as usual, the recomputation with BatchNorm statistics frozen."""
    modules = function.modules if isinstance(function, Layer) else [function]
    return cp.checkpoint(function, *args, use_reentrant=False, context_fn=lambda: (
        contextlib.nullcontext(), _batchnorm_stats_frozen(modules)))


def _pretrained(init_cfg) -> bool:
    cfgs = init_cfg if isinstance(init_cfg, list) else [init_cfg]
    return any(isinstance(cfg, dict) and cfg.get('type') == 'Pretrained' for cfg in cfgs)


def build_levit_stages(spec: dict, img_size, attn_ratio: float, mlp_ratio: float,
                       act_cfg: dict, drop_path_rate: float, form: str = 'linear'):
    """The stage modules and the trained token grid of each stage.

    Stage ``i > 0`` starts with a shrinking attention (heads ``embed_dims[i-1] //
    key_dims[i]``, value ratio 4, stride 2) and its MLP, as in the official code.
    """
    pointwise = FORM_POINTWISE[check_form(form)]
    stages = nn.ModuleList()
    grids = stage_grids(len(spec['embed_dims']), img_size, spec['stem_stride'])
    for i, (dim, key_dim, depth, heads) in enumerate(
            zip(spec['embed_dims'], spec['key_dims'], spec['depths'],
                spec['num_heads'])):
        blocks = []
        if i > 0:
            prev = spec['embed_dims'][i - 1]
            blocks.append(AttentionSubsample(prev, dim, key_dim, down_heads(spec, i),
                                             attn_ratio=DOWN_ATTN_RATIO, act_cfg=act_cfg,
                                             stride=DOWN_STRIDE, resolution=grids[i - 1],
                                             pointwise=pointwise))
            if mlp_ratio > 0:
                blocks.append(Residual(MLP(dim, mlp_ratio, act_cfg, pointwise),
                                       drop_path_rate))
        for _ in range(depth):
            blocks.append(Residual(
                Attention(dim, key_dim, heads, attn_ratio, act_cfg, grids[i], pointwise),
                drop_path_rate))
            if mlp_ratio > 0:
                blocks.append(Residual(MLP(dim, mlp_ratio, act_cfg, pointwise),
                                       drop_path_rate))
        stages.append(nn.Sequential(*blocks))
    return stages, grids


class LeViT(BaseBackbone):
    """LeViT backbone for classification and dense prediction, at any input size.

    Args:
        arch (str | dict): a name of :data:`levit_mm.arch.ARCH_SETTINGS` (the published
            ``'128s'``, ``'128'``, ``'192'``, ``'256'``, ``'384'``; timm's larger
            ``'384_s8'``, ``'512_s8'``, ``'512'``, ``'256d'``, ``'512d'``) or a dict with
            ``embed_dims``, ``num_heads``, ``depths`` and ``key_dims`` (one per stage) and
            optionally ``stem_stride`` (16 or 8) and ``act``.
        img_size (int | tuple): the resolution the attention-bias tables are trained for
            (224 -> 14x14, 7x7, 4x4 grids with the stride-16 stem).  Inputs may have any
            other size: the bias for the actual grid is built from the table (see
            :mod:`levit_mm.attention_bias`).
        patch_size (int, optional): the stem's stride; it comes from the arch, and a given
            value must equal it (kept for mmpretrain config compatibility).
        attn_ratio (float): value dim / key dim in the attention blocks. Defaults to 2.
        mlp_ratio (float): hidden dim / embed dim in the MLPs. Defaults to 2.
        act_cfg (dict, optional): activation config; defaults to the arch's (Hardswish
            for the published variants, SiLU for timm's larger ones).
        hybrid_backbone (callable): builds the stem from ``embed_dims[0]``, ``act_cfg``
            and ``stride``.
        out_indices (int | Sequence): stages to return (0, 1, 2 at strides 16, 32, 64 for
            the stride-16 stem, 8, 16, 32 for stride 8; negative counts from the end) and
            ``'stem'`` for the stem's map before its last convolution (half the stage-0
            stride, ``embed_dims[0] // 2`` channels).  Each output is NCHW.  Defaults to -1.
        frozen_stages (int): freeze the stem and the first ``frozen_stages`` stages
            (parameters and BN statistics); 0 freezes only the stem, -1 nothing.
        norm_eval (bool): keep every BatchNorm in eval mode while training (dense heads
            with small batches).
        drop_path_rate (float): stochastic depth on every residual block.
        form (str): ``'linear'`` (Linear layers on ``(B, H, W, C)`` tokens, the published
            code's form) or ``'conv'`` (LeViT-C: 1x1 convolutions on ``(B, C, H, W)``
            maps, the official ``levit_c.py`` and timm's ``levit_conv_*``).  Same
            parameters and outputs; either form's checkpoints load into either (pointwise
            weights are reshaped), and :meth:`to_form` switches a built model.
        with_cp (bool): gradient checkpointing: in training, keep only the inputs of the
            stem and of each layer (an attention and its MLP) and recompute them in
            backward; slower, less activation memory.  BatchNorm statistics are updated
            once.
        deploy (bool): build directly in the folded (deploy) form.
        init_cfg (dict, optional): e.g. ``dict(type='Pretrained', checkpoint=...,
            prefix='backbone.')``; without one, :meth:`init_weights` gives the official
            initialisation.

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
      Grids this large are attended in chunks of query rows, and each chunk's bias rows
      are built per call (a one-pass separable gather, no ``N^2`` index table), so the
      282 MB stage-0 biases are never held whole.

    Training at such sizes also keeps the score maps for backward: budget several GB per
    800x1333 image, or train at smaller crops.
    """

    def __init__(self,
                 arch: Union[str, dict] = '128s',
                 img_size=224,
                 patch_size: Optional[int] = None,
                 attn_ratio: float = ATTN_RATIO,
                 mlp_ratio: float = MLP_RATIO,
                 act_cfg: Optional[dict] = None,
                 hybrid_backbone=Stem,
                 out_indices: Union[int, str, Sequence] = -1,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 drop_path_rate: float = 0.,
                 form: str = 'linear',
                 with_cp: bool = False,
                 deploy: bool = False,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.form = check_form(form)
        self.arch = resolve_arch(arch)
        stem_stride = self.arch['stem_stride']
        if patch_size is not None and patch_size != stem_stride:
            raise ValueError(f'LeViT-{arch_name(arch).upper()}\'s stem has a stride of '
                             f'{stem_stride}; got patch_size={patch_size}.')
        if act_cfg is None:
            act_cfg = dict(type=self.arch['act'])
        self.embed_dims = self.arch['embed_dims']
        self.num_heads = self.arch['num_heads']
        self.key_dims = self.arch['key_dims']
        self.depths = self.arch['depths']
        self.num_stages = len(self.embed_dims)
        self.img_size = to_2tuple(img_size)

        self.patch_embed = hybrid_backbone(self.embed_dims[0], act_cfg=act_cfg,
                                           stride=stem_stride)
        # what to_form() needs to build the stages again
        self._stage_args = (attn_ratio, mlp_ratio, act_cfg, drop_path_rate)
        self.stages, self.resolutions = build_levit_stages(
            self.arch, self.img_size, *self._stage_args, form=self.form)
        # a layer is an attention (plain or shrinking) and its MLP: the unit of gradient
        # checkpointing and of layer-wise learning-rate decay
        self.modules_per_layer = 2 if mlp_ratio > 0 else 1
        self.stage_layers = [len(stage) // self.modules_per_layer for stage in self.stages]
        self.num_layers = sum(self.stage_layers)
        self.with_cp = with_cp
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
        # NaN/Inf weights are refused, a training-form checkpoint folds as it loads into the
        # deployed form, and the other form's pointwise weights take this form's shape
        for hook in (refuse_non_finite_on_load, fold_on_load, match_form_on_load):
            self.register_load_state_dict_pre_hook(hook)

    def init_weights(self):
        """The official initialisation: every BatchNorm that closes a residual branch at
        weight 0 (:func:`~.layers.residual_branch_norms`), the rest as PyTorch builds it;
        once, and not under a ``Pretrained`` init_cfg, whose weights load over it (as
        mmpretrain's ResNet does with ``zero_init_residual``).  A ``Pretrained`` file is
        read by levit_mm's own init (any LeViT layout, NaN/Inf refused), named rather than
        imported: :mod:`levit_mm.convert.load_hooks` registers it, above the backbone."""
        first_time = not self.is_init
        pretrained = _pretrained(self.init_cfg)
        if isinstance(self.init_cfg, dict) and self.init_cfg.get('type') == 'Pretrained':
            self.init_cfg = dict(self.init_cfg, type='LeViTPretrained')
        super().init_weights()
        if first_time and not pretrained:
            for norm in residual_branch_norms(self):
                nn.init.zeros_(norm.weight)

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
        use_cp = self.with_cp and self.training and torch.is_grad_enabled()
        if use_cp:  # its full-resolution maps are the largest activations of all
            x, inner = checkpoint_call(self.patch_embed, x, self.with_stem_out)
        else:
            x, inner = self.patch_embed(x, with_inner=self.with_stem_out)
        outs = {STEM_INDEX: inner}
        linear = self.form == 'linear'
        # tokens as (B, H, W, C), or maps as contiguous (B, C, H, W) (the stem's output is
        # channels-last in memory, which the conv form's head reshapes cannot view)
        x = x.permute(0, 2, 3, 1) if linear else x.contiguous()
        for i, stage in enumerate(self.stages):
            x = self._run_checkpointed(stage, x) if use_cp else stage(x)
            if i in self.out_indices:
                outs[i] = x.permute(0, 3, 1, 2).contiguous() if linear else x
        return tuple(outs[i] for i in self.out_indices)

    def _run_checkpointed(self, stage: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
        """``stage(x)``, one checkpoint per layer: its activations are recomputed in
        backward, with BatchNorm running statistics left alone the second time."""
        modules = list(stage)
        step = self.modules_per_layer
        for start in range(0, len(modules), step):
            x = checkpoint_call(Layer(modules[start:start + step]), x)
        return x

    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """``(layer depth, number of depths)`` of a parameter, for mmpretrain's
        ``LearningRateDecayOptimWrapperConstructor`` (layer-wise lr decay).

        Depth 0 is the stem; each layer (an attention, plain or shrinking, and its MLP)
        is one depth, in order; the last depth, ``num_layers + 1``, is whatever follows the
        backbone (neck, head: any name without ``prefix``).
        """
        num_depths = self.num_layers + 2
        if not param_name.startswith(prefix):
            return num_depths - 1, num_depths
        name = param_name[len(prefix):]
        if name.startswith('patch_embed.'):
            return 0, num_depths
        if name.startswith('stages.'):
            stage, index = (int(part) for part in name.split('.')[1:3])
            depth = 1 + sum(self.stage_layers[:stage]) + index // self.modules_per_layer
            return depth, num_depths
        return num_depths - 1, num_depths

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

    @torch.no_grad()
    def to_form(self, form: str) -> 'LeViT':
        """Switch this model to the other form in place, weights, mode, device and deploy
        state kept (its pointwise weights are reshaped); returns ``self``."""
        if check_form(form) == self.form:
            return self
        state = self.state_dict()
        reference = next(self.parameters())
        stages, _ = build_levit_stages(self.arch, self.img_size, *self._stage_args,
                                       form=form)
        if self.deploy:
            fuse_modules(stages)
        self.stages = stages.to(device=reference.device, dtype=reference.dtype)
        self.form = form
        self.load_state_dict(state)
        self.train(self.training)  # frozen stages and norm_eval apply to the new modules
        if self.deploy:
            self._inplace_activations()
        return self

    def switch_to_deploy(self):
        """Fold every Conv+BN and Linear+BN into one layer; eval-mode outputs are
        unchanged."""
        if self.deploy:
            return
        fuse_modules(self)
        self._inplace_activations()
        self.deploy = True

    def _inplace_activations(self):
        for module in self.modules():
            # Every activation here reads a fresh Linear/Conv/attention output, which
            # nothing else uses: overwrite it rather than allocate.
            if isinstance(module, (nn.Hardswish, nn.SiLU)):
                module.inplace = True
