"""The conv form of LeViT's blocks (LeViT-C): ``(B, C, H, W)`` maps and 1x1 convolutions.

The same network as :mod:`.layers` with another tensor layout: every LinearBN becomes a
1x1 convolution + BatchNorm2d and the channel axis is 1.  Only what depends on the layout
is here: the pointwise layer, and the attention forwards' two reshapes (channels into heads,
heads back into channels).  Everything else is shared with the linear form: the blocks'
constructors (given this pointwise layer), the bias tables, their caches and the attention
itself (:meth:`.layers.BiasedAttentionBase.attend`, called with the same
``(B, heads, N, d)`` operands as the linear form, so the chunking of large grids and the
compile/CUDA-graph rules apply alike), MLP, residuals and the stem.

Parameter names equal the linear form's (the 1x1 convolution is called ``linear``), so one
checkpoint serves both forms: pointwise weights are ``(out, in, 1, 1)`` here and
``(out, in)`` there (:mod:`levit_mm.forms` reshapes on load).
"""
import torch
import torch.nn as nn

from .layers import Attention, AttentionSubsample, fuse_conv_bn


class PointwiseConvBN(nn.Module):
    """1x1 convolution followed by BatchNorm2d: :class:`.layers.LinearBN` for
    ``(B, C, H, W)`` maps.  Folds into one 1x1 convolution for deploy."""

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


def channels_to_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """``(B, heads * d, H, W)`` -> ``(B, heads, H * W, d)`` (a view): the channel order is
    the linear form's (head-major), so the same weights split into the same heads."""
    B, _, H, W = x.shape
    return x.reshape(B, num_heads, -1, H * W).transpose(-2, -1)


def heads_to_channels(x: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """``(B, heads, H * W, d)`` -> ``(B, heads * d, H, W)``."""
    B, heads, _, d = x.shape
    return x.transpose(-2, -1).reshape(B, heads * d, H, W)


class ConvAttention(Attention):
    """:class:`.layers.Attention` on ``(B, C, H, W)`` maps."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, pointwise=PointwiseConvBN, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, H, W = x.shape
        q, k, v = channels_to_heads(self.qkv(x), self.num_heads).split(
            [self.key_dim, self.key_dim, self.d], dim=3)
        x = self.attend(q, k, v, (H, W), (H, W))
        return self.proj(heads_to_channels(x, H, W))


class ConvAttentionSubsample(AttentionSubsample):
    """:class:`.layers.AttentionSubsample` on ``(B, C, H, W)`` maps."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, pointwise=PointwiseConvBN, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, H, W = x.shape
        k, v = channels_to_heads(self.kv(x), self.num_heads).split([self.key_dim, self.d],
                                                                    dim=3)
        q = self.q(x)
        Hq, Wq = q.shape[2:]
        x = self.attend(channels_to_heads(q, self.num_heads), k, v, (Hq, Wq), (H, W))
        return self.proj(heads_to_channels(x, Hq, Wq))
