"""LeViT building blocks, in both forms.

Module and attribute names follow mmpretrain 1.2.0's LeViT, so its checkpoints (and the
official ones, through the converter) load key for key.  In the linear form tokens travel
between blocks as ``(B, H, W, C)`` and linear layers act on the last axis; in the conv form
(LeViT-C) they are ``(B, C, H, W)`` maps and 1x1 convolutions act on axis 1.  The blocks
take the pointwise layer (:class:`LinearBN` or :class:`PointwiseConvBN`) as an argument and
read the channel axis from it; nothing else differs.  Every block reads the grid size from
the tensor itself, which is what lets the model run at any input size.
"""
import contextlib
import contextvars
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import build_activation_layer
from torch.utils.checkpoint import checkpoint

from ..arch import stem_channels
from ..attention_bias import Size2, attention_bias, subsampled_size, table_index, to_2tuple
from ..folding import bn_module_scale_shift, fold_bn_after

#: Query/key pairs per sample and head above which attention runs in query-row chunks
#: (16 MiB of fp32 scores: a 45x45 grid, stage 0 of a 720x720 input, still runs whole).
ATTENTION_CHUNK_PAIRS = 2**22
#: Scores (all samples and heads) held at once by one chunk: 32 MiB in fp32.
ATTENTION_CHUNK_ELEMENTS = 2**23

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


class PointwiseConvBN(nn.Module):
    """:class:`LinearBN` for ``(B, C, H, W)`` maps (the conv form): a 1x1 convolution,
    called ``linear`` so both forms share parameter names (weights ``(out, in, 1, 1)``
    here, ``(out, in)`` there), followed by BatchNorm2d.  Folds into one 1x1 convolution."""

    #: the channel axis is 1
    channels_last = False

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.linear = nn.Conv2d(in_features, out_features, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.linear(x))

    def fuse(self) -> nn.Conv2d:
        return fuse_conv_bn(self.linear, self.bn)


def grid_size(x: torch.Tensor, channels_last: bool) -> Size2:
    """``(H, W)`` of ``(B, H, W, C)`` tokens or of a ``(B, C, H, W)`` map."""
    return (x.shape[1], x.shape[2]) if channels_last else (x.shape[2], x.shape[3])


def split_heads(x: torch.Tensor, num_heads: int, channels_last: bool) -> torch.Tensor:
    """``(B, H, W, heads * d)`` or ``(B, heads * d, H, W)`` -> ``(B, heads, H * W, d)``, a
    view; channels are head-major in both forms, so one set of weights splits alike."""
    if channels_last:
        B, H, W, _ = x.shape
        return x.reshape(B, H * W, num_heads, -1).transpose(1, 2)
    B, _, H, W = x.shape
    return x.reshape(B, num_heads, -1, H * W).transpose(-2, -1)


def merge_heads(x: torch.Tensor, size: Size2, channels_last: bool) -> torch.Tensor:
    """``(B, heads, H * W, d)`` -> ``(B, H, W, heads * d)`` or ``(B, heads * d, H, W)``."""
    B, heads, _, d = x.shape
    if channels_last:
        return x.transpose(1, 2).reshape(B, size[0], size[1], heads * d)
    return x.transpose(-2, -1).reshape(B, heads * d, size[0], size[1])


def fuse_modules(module: nn.Module) -> nn.Module:
    """Replace every child that has ``fuse()`` by its folded equivalent, recursively."""
    for name, child in module.named_children():
        if hasattr(child, 'fuse'):
            setattr(module, name, child.fuse())
        else:
            fuse_modules(child)
    return module


class Residual(nn.Module):
    """``x + drop_path(block(x))``.

    Stochastic depth is written into the residual add: one ``addcmul`` with a per-sample
    keep mask scaled by ``1 / keep``, rather than a separate drop-path module's
    rand/floor/div/mul and then the add (fewer ops per block in a training step).
    """

    def __init__(self, block: nn.Module, drop_path_rate: float = 0.):
        super().__init__()
        self.block = block
        self.drop_path_rate = drop_path_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        if self.training and self.drop_path_rate > 0:
            keep = 1 - self.drop_path_rate
            mask = out.new_empty((out.shape[0], ) + (1, ) * (out.dim() - 1)).bernoulli_(keep)
            return torch.addcmul(x, out, mask, value=1 / keep)
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


def residual_branch_norms(module: nn.Module) -> List[nn.Module]:
    """The BatchNorms that close a residual branch, which the official initialisation
    (``Linear_BN(..., bn_weight_init=0)``) starts at weight 0 so each block starts as the
    identity: the output projection of every :class:`Attention` and the second layer of
    every :class:`MLP`.  Not the shrinking attention's projection: no residual adds it.
    Folded (deploy-form) layers have none."""
    ends = [m.proj[-1] for m in module.modules() if isinstance(m, Attention)]
    ends += [m.linear2 for m in module.modules() if isinstance(m, MLP)]
    return [end.bn for end in ends if hasattr(end, 'bn')]


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
    (``isneginf``/``all``/``where``), about a third of the attention's time.

    Inference scales ``q`` (N x d, cheaper than the N x N scores) and adds the bias in
    place, allocating nothing N x N but the scores; with autograd on, the scale and the
    bias go into one ``add`` (one op fewer to record and to differentiate).  Either way
    the bias is added in the scores' dtype, without a cast of its own.
    """
    if torch.is_grad_enabled():
        scores = torch.add(bias, torch.matmul(q, k.transpose(-2, -1)), alpha=scale)
    else:
        scores = torch.matmul(q * scale, k.transpose(-2, -1))
        scores += bias
    return torch.matmul(scores.softmax(dim=-1), v)


def chunk_rows(q_size: Size2, num_keys: int, batch_heads: int = 1) -> Optional[int]:
    """Query-grid rows per chunk, or ``None`` to attend over the whole grid at once.

    A grid is chunked when one sample-head's scores exceed ``ATTENTION_CHUNK_PAIRS``
    query/key pairs (every 224 classification grid stays whole: chunking is for dense
    inputs); then each chunk holds at most ``ATTENTION_CHUNK_ELEMENTS`` scores over all
    ``batch_heads`` (batch x heads) maps.
    """
    if q_size[0] * q_size[1] * num_keys <= ATTENTION_CHUNK_PAIRS:
        return None
    return max(1, ATTENTION_CHUNK_ELEMENTS // (batch_heads * q_size[1] * num_keys))


class BiasedAttentionBase(nn.Module):
    """Owns the learned bias table and the attention over a query/key grid pair.

    The table ``attention_biases`` (heads x trained offsets) is the only state.  The
    ``(heads, N_q, N_k)`` bias for a grid is derived from it on every call
    (:meth:`attention_bias`), so it follows the table whatever changes it (an optimizer
    step, a load, ``.to()``, an EMA swap through ``param.data``): at the trained grid it is
    one gather with ``bias_idxs`` (a non-saved buffer that moves with the module; a graph
    compiled with frozen weights folds the gather into a constant), at other grids it is
    built by :func:`~levit_mm.attention_bias.attention_bias`.  The one shortcut is eager
    CPU inference, which reuses the previous call's bias while the table holds the same
    values (:meth:`_reused_bias`).

    Large grids (dense inputs) are attended in chunks of query rows
    (:func:`chunk_rows`), so no ``N x N`` score map is ever whole in memory; with autograd
    on, each chunk is recomputed in backward (``torch.utils.checkpoint``) instead of kept.
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
        trained = self.trained_resolution
        self.trained_grids = (subsampled_size(trained, stride), trained)
        self.attention_biases = nn.Parameter(torch.zeros(num_heads, trained[0] * trained[1]))
        self.register_buffer('bias_idxs', table_index(trained, stride), persistent=False)
        # (grid, copy of the table, bias made from that copy) of the last CPU inference call
        self._last_bias: Optional[Tuple[tuple, torch.Tensor, torch.Tensor]] = None

    def attention_bias(self, q_size: Size2, k_size: Size2,
                       dtype: Optional[torch.dtype] = None,
                       q_rows: Optional[Tuple[int, int]] = None) -> torch.Tensor:
        """``(heads, N_q, N_k)`` bias for a query/key grid, in ``dtype`` (default: the
        table's); ``q_rows`` keeps the queries of those query-grid rows."""
        table = self.attention_biases
        tracing = torch.jit.is_tracing()
        if tracing and not _CONSTANT_BIAS_WHEN_TRACING.get():
            # Dynamic-shape export: the graph builds the bias from the traced sizes.
            bias = attention_bias(table, self.trained_resolution, q_size, k_size,
                                  self.stride, q_rows)
        elif q_rows is None and _reuse_allowed(table):
            bias = self._reused_bias(q_size, k_size)
        else:
            if tracing:  # fixed-shape export: plain sizes, so the graph holds a constant
                q_size, k_size = to_2tuple(q_size), to_2tuple(k_size)
            bias = self._build_bias(q_size, k_size, q_rows)
        return bias if dtype is None else bias.to(dtype)

    def _build_bias(self, q_size: Size2, k_size: Size2, q_rows=None) -> torch.Tensor:
        """The bias from the table: one gather at the trained grid, else the general
        build (resampled where the grid is larger than the trained one)."""
        table = self.attention_biases
        if q_rows is None and (q_size, k_size) == self.trained_grids:
            return table[:, self.bias_idxs]
        return attention_bias(table, self.trained_resolution, q_size, k_size, self.stride,
                              q_rows)

    def _reused_bias(self, q_size: Size2, k_size: Size2) -> torch.Tensor:
        """The last call's bias if it was made for this grid from a table with the same
        values as now (compared exactly: ~2 us per block at 224, where a 128S gather
        costs 0.03 to 1 ms per block on one CPU core), else a new one, remembered."""
        table = self.attention_biases
        last = self._last_bias
        if (last is not None and last[0] == (q_size, k_size)
                and last[1].dtype == table.dtype and torch.equal(last[1], table)):
            return last[2]
        bias = self._build_bias(q_size, k_size)
        self._last_bias = ((q_size, k_size), table.detach().clone(), bias)
        return bias

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, q_size: Size2,
               k_size: Size2) -> torch.Tensor:
        """``softmax(scale * q k^T + bias) v`` over the grids, in query-row chunks where
        the score maps would be large."""
        rows = chunk_rows(q_size, k_size[0] * k_size[1], q.shape[0] * q.shape[1])
        if rows is None:
            return biased_attention(q, k, v, self.attention_bias(q_size, k_size),
                                    self.scale)
        recompute = torch.is_grad_enabled() and (
            q.requires_grad or self.attention_biases.requires_grad)
        outs = []
        for first in range(0, q_size[0], rows):
            end = min(first + rows, q_size[0])
            q_chunk = q[:, :, first * q_size[1]:end * q_size[1]]
            if recompute:
                outs.append(checkpoint(self._attend_rows, q_chunk, k, v, q_size, k_size,
                                       (first, end), use_reentrant=False))
            else:
                outs.append(self._attend_rows(q_chunk, k, v, q_size, k_size, (first, end)))
        return torch.cat(outs, dim=2)

    def _attend_rows(self, q, k, v, q_size, k_size, q_rows):
        bias = self.attention_bias(q_size, k_size, q_rows=q_rows)
        return biased_attention(q, k, v, bias, self.scale)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # The official/mmpretrain/timm layouts save the index buffer that gathers the table
        # for one fixed grid.  It is derived data here (any grid works), so it is consumed.
        state_dict.pop(prefix + 'attention_bias_idxs', None)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        # Our index is not saved either: derive it again, for a module that was built on
        # the meta device and emptied (``to_empty``) to receive these weights.
        with torch.no_grad():
            self.bias_idxs.copy_(table_index(self.trained_resolution, self.stride))


def _reuse_allowed(table: torch.Tensor) -> bool:
    """Whether a bias may come from the previous call: eager CPU inference only.  With
    autograd on it must be part of the graph; compiled and traced graphs read the table
    themselves; on an accelerator the value check would wait for the device, and the
    gather it saves is one kernel there."""
    return (table.is_cpu and not (torch.is_grad_enabled() and table.requires_grad)
            and not torch.jit.is_tracing() and not torch.compiler.is_compiling())


class Attention(BiasedAttentionBase):
    """Multi-head self-attention with a learned relative-position bias, on tokens or maps
    (``pointwise``: :class:`LinearBN` or :class:`PointwiseConvBN`)."""

    def __init__(self, dim: int, key_dim: int, num_heads: int = 8, attn_ratio: float = 4,
                 act_cfg: dict = dict(type='HSwish'), resolution=14,
                 pointwise: type = LinearBN):
        super().__init__()
        self._init_heads(num_heads, key_dim, attn_ratio, resolution, stride=1)
        self.channels_last = pointwise.channels_last
        self.qkv = pointwise(dim, self.dh + 2 * key_dim * num_heads)
        self.proj = nn.Sequential(build_activation_layer(act_cfg), pointwise(self.dh, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = grid_size(x, self.channels_last)
        q, k, v = split_heads(self.qkv(x), self.num_heads, self.channels_last).split(
            [self.key_dim, self.key_dim, self.d], dim=3)
        x = self.attend(q, k, v, size, size)
        return self.proj(merge_heads(x, size, self.channels_last))


class AttentionSubsample(BiasedAttentionBase):
    """Shrinking attention: queries on a ``stride``-subsampled grid, keys on the full grid."""

    def __init__(self, in_dim: int, out_dim: int, key_dim: int, num_heads: int = 8,
                 attn_ratio: float = 2, act_cfg: dict = dict(type='HSwish'),
                 stride: int = 2, resolution=14, pointwise: type = LinearBN):
        super().__init__()
        self._init_heads(num_heads, key_dim, attn_ratio, resolution, stride=stride)
        self.channels_last = pointwise.channels_last
        self.kv = pointwise(in_dim, self.dh + key_dim * num_heads)
        self.q = nn.Sequential(Subsample(stride, pointwise.channels_last),
                               pointwise(in_dim, key_dim * num_heads))
        self.proj = nn.Sequential(build_activation_layer(act_cfg),
                                  pointwise(self.dh, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels_last = self.channels_last
        k_size = grid_size(x, channels_last)
        k, v = split_heads(self.kv(x), self.num_heads, channels_last).split(
            [self.key_dim, self.d], dim=3)
        q = self.q(x)
        q_size = grid_size(q, channels_last)
        x = self.attend(split_heads(q, self.num_heads, channels_last), k, v, q_size, k_size)
        return self.proj(merge_heads(x, q_size, channels_last))


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
