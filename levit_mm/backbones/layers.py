"""LeViT building blocks.

Module and attribute names follow mmpretrain 1.2.0's LeViT, so its checkpoints (and the
official ones, through the converter) load key for key.  Tokens travel between blocks as
``(B, H, W, C)``: linear layers act on the last axis, and every block reads the grid size
from the tensor itself, which is what lets the model run at any input size.
"""
import contextlib
import contextvars
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_activation_layer
from mmcv.cnn.bricks import DropPath

from ..arch import stem_channels
from ..attention_bias import Size2, attention_bias, to_2tuple
from ..folding import bn_module_scale_shift, fold_bn_after

#: Per-block budget for cached bias tensors.  A 224 model needs well under 1 MiB per block;
#: one 800x1333 grid of LeViT-256's first stage needs 282 MB, which is rebuilt per call
#: (one pass writing it, cheaper than the attention that reads it) rather than held.
MAX_CACHED_BIAS_BYTES = 128 * 2**20

_CONSTANT_BIAS_WHEN_TRACING = contextvars.ContextVar('constant_bias', default=False)


@contextlib.contextmanager
def constant_bias_when_tracing():
    """Trace each attention bias as a constant for the traced grid.

    For a fixed-shape export: the graph then holds the finished ``(heads, N_q, N_k)``
    tensors instead of the index arithmetic and gathers that build them (about 2% of an
    onnxruntime run).  Without it, a trace records those ops, so the graph follows the
    input size.
    """
    token = _CONSTANT_BIAS_WHEN_TRACING.set(True)
    try:
        yield
    finally:
        _CONSTANT_BIAS_WHEN_TRACING.reset(token)


class ConvBN(nn.Module):
    """3x3 convolution followed by BatchNorm; folds into one convolution for deploy."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 stride: int = 2, padding: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride,
                              padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))

    def fuse(self) -> nn.Conv2d:
        return fuse_conv_bn(self.conv, self.bn)


@torch.no_grad()
def fuse_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """One convolution computing ``bn(conv(x))`` in eval mode."""
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size,
                      conv.stride, conv.padding, bias=True,
                      device=conv.weight.device, dtype=conv.weight.dtype)
    weight, bias = fold_bn_after(conv.weight, *bn_module_scale_shift(bn))
    fused.weight.copy_(weight)
    fused.bias.copy_(bias)
    return fused


class LinearBN(nn.Module):
    """Linear layer followed by BatchNorm over the channel axis, for any leading shape."""

    #: the channel axis is the last one ((B, H, W, C) tokens)
    channels_last = True

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, bias=False)
        self.bn = nn.BatchNorm1d(out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.linear(x)
        return self.bn(x.flatten(0, -2)).view_as(x)

    @torch.no_grad()
    def fuse(self) -> nn.Linear:
        weight = self.linear.weight
        fused = nn.Linear(weight.shape[1], weight.shape[0], bias=True,
                          device=weight.device, dtype=weight.dtype)
        folded_weight, folded_bias = fold_bn_after(weight, *bn_module_scale_shift(self.bn))
        fused.weight.copy_(folded_weight)
        fused.bias.copy_(folded_bias)
        return fused


def fuse_modules(module: nn.Module) -> nn.Module:
    """Replace every child that has ``fuse()`` by its folded equivalent, recursively."""
    for name, child in module.named_children():
        if hasattr(child, 'fuse'):
            setattr(module, name, child.fuse())
        else:
            fuse_modules(child)
    return module


class Residual(nn.Module):
    """``x + drop_path(block(x))``."""

    def __init__(self, block: nn.Module, drop_path_rate: float = 0.):
        super().__init__()
        self.block = block
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.drop_path(self.block(x))
        if torch.is_grad_enabled():
            return x + out
        # Inference: the block's output is a fresh tensor; add into it, no new buffer.
        return out.add_(x)


class MLP(nn.Sequential):
    """LinearBN -> activation -> LinearBN (ratio 2 in LeViT); ``pointwise`` is the
    LinearBN of the form (linear or 1x1 convolution)."""

    def __init__(self, embed_dim: int, mlp_ratio: int, act_cfg: dict,
                 pointwise: type = LinearBN):
        super().__init__()
        hidden = int(embed_dim * mlp_ratio)
        self.linear1 = pointwise(embed_dim, hidden)
        self.activation = build_activation_layer(act_cfg)
        self.linear2 = pointwise(hidden, embed_dim)


class Subsample(nn.Module):
    """Keep every ``stride``-th token of a ``(B, H, W, C)`` grid (or, with
    ``channels_last=False``, a ``(B, C, H, W)`` map), in both directions."""

    def __init__(self, stride: int, channels_last: bool = True):
        super().__init__()
        self.stride = stride
        self.channels_last = channels_last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            return x[:, ::self.stride, ::self.stride]
        return x[:, :, ::self.stride, ::self.stride]


def biased_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                     bias: torch.Tensor, scale: float) -> torch.Tensor:
    """``softmax(scale * q k^T + bias) v`` for ``(B, heads, N, d)`` tensors.

    Written out rather than through ``F.scaled_dot_product_attention``: LeViT's value dim
    differs from its key dim, which rules out PyTorch's fused CPU kernel, and the
    fallback it then takes re-checks the float mask for ``-inf`` rows on every call
    (``isneginf``/``all``/``where``), about a third of the attention's time.  Scaling
    ``q`` (N x d) is cheaper than scaling the N x N scores, and the bias is added in place.
    """
    scores = torch.matmul(q * scale, k.transpose(-2, -1))
    scores += bias
    return torch.matmul(scores.softmax(dim=-1), v)


class BiasedAttentionBase(nn.Module):
    """Owns the learned bias table and its derived, per-grid bias tensors.

    The table ``attention_biases`` (heads x trained offsets) is the only saved state.  Bias
    tensors for a grid are derived: in training with autograd on they are rebuilt every call
    (so the table gets gradients); otherwise they are cached per grid and dtype, and the cache
    is emptied whenever the table's identity, device, storage or version counter changes, so
    ``.to()``, ``.half()``, loading a checkpoint or an optimizer step never leave a stale
    tensor behind.
    """

    def _init_heads(self, num_heads: int, key_dim: int, attn_ratio: float, resolution,
                    stride: int):
        """Head sizes shared by both attention kinds, and the bias table for their grid."""
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.scale = key_dim**-0.5
        self.d = int(attn_ratio * key_dim)
        self.dh = self.d * num_heads
        self.trained_resolution: Size2 = to_2tuple(resolution)
        self.stride = stride
        num_offsets = self.trained_resolution[0] * self.trained_resolution[1]
        self.attention_biases = nn.Parameter(torch.zeros(num_heads, num_offsets))
        self._bias_cache: Dict[tuple, torch.Tensor] = {}

    def attention_bias(self, q_size: Size2, k_size: Size2,
                       dtype: Optional[torch.dtype] = None) -> torch.Tensor:
        """``(heads, N_q, N_k)`` bias for a query/key grid, in ``dtype``."""
        table = self.attention_biases
        dtype = dtype or table.dtype
        if torch.jit.is_tracing():
            if not _CONSTANT_BIAS_WHEN_TRACING.get():
                # Dynamic-shape export: the graph builds the bias from the traced sizes;
                # traced sizes must not become cache keys.
                return attention_bias(table, self.trained_resolution, q_size, k_size,
                                      self.stride).to(dtype)
            q_size = tuple(int(s) for s in q_size)
            k_size = tuple(int(s) for s in k_size)
        if torch.compiler.is_compiling() and not self.training:
            # A compiled inference graph reads the finished bias (the table-state check
            # below would break the graph); like the compiler's frozen weights it is
            # fixed at compile time, so recompile after changing the table.
            cached = self._bias_cache.get((q_size, k_size, dtype))
            if cached is not None:
                return cached
        if self.training and torch.is_grad_enabled() or torch.compiler.is_compiling():
            bias = attention_bias(table, self.trained_resolution, q_size, k_size,
                                  self.stride)
            return bias.to(dtype)
        # Entries made from an older table (optimizer step, load, new device) are dropped
        # as soon as the table changes, so they never pile up.
        table_state = (id(table), table.device, table.data_ptr(), table._version)
        if getattr(self, '_bias_cache_state', None) != table_state:
            self._bias_cache.clear()
            self._bias_cache_state = table_state
        key = (q_size, k_size, dtype)
        bias = self._bias_cache.get(key)
        if bias is None:
            bias = attention_bias(table.detach(), self.trained_resolution, q_size,
                                  k_size, self.stride).to(dtype)
            self._remember_bias(key, bias)
        return bias

    def _remember_bias(self, key: tuple, bias: torch.Tensor):
        """Keep ``bias`` within the byte budget, evicting the oldest entries first."""
        size = bias.numel() * bias.element_size()
        if size > MAX_CACHED_BIAS_BYTES:
            return
        cache = self._bias_cache
        while cache and size + sum(b.numel() * b.element_size()
                                   for b in cache.values()) > MAX_CACHED_BIAS_BYTES:
            cache.pop(next(iter(cache)))
        cache[key] = bias

    def clear_bias_cache(self):
        self._bias_cache.clear()

    def _apply(self, fn, *args, **kwargs):
        self.clear_bias_cache()
        return super()._apply(fn, *args, **kwargs)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # The official/mmpretrain/timm layouts save the index buffer that gathers the table
        # for one fixed grid.  It is derived data here (any grid works), so it is consumed.
        state_dict.pop(prefix + 'attention_bias_idxs', None)
        self.clear_bias_cache()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class Attention(BiasedAttentionBase):
    """Multi-head self-attention with a learned relative-position bias."""

    def __init__(self, dim: int, key_dim: int, num_heads: int = 8, attn_ratio: float = 4,
                 act_cfg: dict = dict(type='HSwish'), resolution=14,
                 pointwise: type = LinearBN):
        super().__init__()
        self._init_heads(num_heads, key_dim, attn_ratio, resolution, stride=1)
        self.qkv = pointwise(dim, self.dh + 2 * key_dim * num_heads)
        self.proj = nn.Sequential(build_activation_layer(act_cfg), pointwise(self.dh, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, _ = x.shape
        qkv = self.qkv(x).view(B, H * W, self.num_heads, -1)
        q, k, v = qkv.transpose(1, 2).split([self.key_dim, self.key_dim, self.d], dim=3)
        bias = self.attention_bias((H, W), (H, W), q.dtype)
        x = biased_attention(q, k, v, bias, self.scale)
        return self.proj(x.transpose(1, 2).reshape(B, H, W, self.dh))


class AttentionSubsample(BiasedAttentionBase):
    """Shrinking attention: queries on a ``stride``-subsampled grid, keys on the full grid."""

    def __init__(self, in_dim: int, out_dim: int, key_dim: int, num_heads: int = 8,
                 attn_ratio: float = 2, act_cfg: dict = dict(type='HSwish'),
                 stride: int = 2, resolution=14, pointwise: type = LinearBN):
        super().__init__()
        self._init_heads(num_heads, key_dim, attn_ratio, resolution, stride=stride)
        self.kv = pointwise(in_dim, self.dh + key_dim * num_heads)
        self.q = nn.Sequential(Subsample(stride, pointwise.channels_last),
                               pointwise(in_dim, key_dim * num_heads))
        self.proj = nn.Sequential(build_activation_layer(act_cfg),
                                  pointwise(self.dh, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, _ = x.shape
        kv = self.kv(x).view(B, H * W, self.num_heads, -1)
        k, v = kv.transpose(1, 2).split([self.key_dim, self.d], dim=3)
        q = self.q(x)
        Hq, Wq = q.shape[1:3]
        q = q.reshape(B, Hq * Wq, self.num_heads, self.key_dim).transpose(1, 2)
        bias = self.attention_bias((Hq, Wq), (H, W), q.dtype)
        x = biased_attention(q, k, v, bias, self.scale)
        return self.proj(x.transpose(1, 2).reshape(B, Hq, Wq, self.dh))


class Stem(nn.Module):
    """Stride-2 3x3 ConvBN layers with the activation between: four for stride 16 (3 -> C/8
    -> C/4 -> C/2 -> C), three for stride 8 (3 -> C/4 -> C/2 -> C).

    ``forward`` returns the stem's map, plus, when asked (dense heads), the map before its
    last convolution (half the stride, C/2 channels).
    """

    def __init__(self, embed_dim: int, act_cfg: dict = dict(type='HSwish'),
                 stride: int = 16):
        super().__init__()
        channels = stem_channels(embed_dim, stride)
        layers = []
        for i in range(len(channels) - 1):
            if i > 0:
                layers.append(build_activation_layer(act_cfg))
            layers.append(ConvBN(channels[i], channels[i + 1]))
        self.patch_embed = nn.Sequential(*layers)
        self.stride = stride

    def forward(self, x: torch.Tensor,
                with_inner: bool = False) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        # Channels-last: oneDNN's direct convolution is several times faster for the
        # 3-channel input layer, and the last map then permutes to the (B, H, W, C)
        # token layout without a copy.
        x = x.contiguous(memory_format=torch.channels_last)
        if not with_inner:
            return self.patch_embed(x), None
        inner = self.patch_embed[:-1](x)
        return self.patch_embed[-1](inner), inner
