"""Attention-bias tables as pure functions of the token grid.

LeViT replaces position embeddings with a learned bias per head and per *absolute* relative
offset ``(|dy|, |dx|)`` between a query and a key token.  Every public implementation stores
that table as ``(num_heads, R_h * R_w)`` (offset ``(dy, dx)`` at column ``dy * R_w + dx``) and
gathers it through an index buffer sized for one grid, which is why they only run at the
training resolution.  Here the table stays a function of the offset, and the bias for any
query/key grid is built on demand:

* offsets inside the trained range read the table directly, so at the training resolution
  (or any smaller one) the bias equals the original model's bit for bit;
* along an axis where the key grid is larger than the trained one, the table is resampled as a
  2-D map with bicubic interpolation (as ViT resizes position embeddings), with
  ``align_corners=True`` so the zero offset (a token attending to itself) and the farthest
  trained offset keep their learned values and map to the new grid's nearest and farthest
  offsets.  Axes that fit are left untouched.

Nothing here knows about modules, devices or checkpoints.
"""
from typing import Tuple

import torch
import torch.nn.functional as F

Size2 = Tuple[int, int]


def to_2tuple(value) -> Size2:
    """``14 -> (14, 14)``; pairs pass through as a tuple of ints."""
    if isinstance(value, int):
        return (value, value)
    h, w = value
    return (int(h), int(w))


def subsampled_size(size: Size2, stride: int) -> Size2:
    """Grid size after ``x[::stride, ::stride]`` (ceil division, any size)."""
    return ((size[0] - 1) // stride + 1, (size[1] - 1) // stride + 1)


def axis_offsets(num_q: int, num_k: int, stride: int = 1,
                 device=None) -> torch.Tensor:
    """``|q * stride - k|`` for queries on a strided grid, shape ``(num_q, num_k)``.

    The 2-D offset table is separable, so two of these (rows and columns) replace the
    ``N x N`` index buffer of the reference implementations.
    """
    q = torch.arange(num_q, device=device) * stride
    k = torch.arange(num_k, device=device)
    return (q[:, None] - k[None, :]).abs()


def official_bias_index(resolution, stride: int = 1) -> torch.Tensor:
    """The ``attention_bias_idxs`` buffer of the official/mmpretrain/timm layout.

    Shape ``(N_q, N_k)`` for a square or rectangular key grid; used to read and check
    checkpoints that carry the buffer.
    """
    res_h, res_w = to_2tuple(resolution)
    q_h, q_w = subsampled_size((res_h, res_w), stride)
    dy = axis_offsets(q_h, res_h, stride)
    dx = axis_offsets(q_w, res_w, stride)
    index = dy[:, None, :, None] * res_w + dx[None, :, None, :]
    return index.reshape(q_h * q_w, res_h * res_w)


def resize_bias_table(table: torch.Tensor, trained: Size2,
                      extent: Size2) -> torch.Tensor:
    """Resample a ``(heads, R_h * R_w)`` table so it covers ``extent`` offsets per axis.

    Returns a ``(heads, E_h, E_w)`` map with ``E = max(R, extent)`` per axis.  Axes that
    already cover the extent are not touched, so the trained values survive exactly.
    """
    num_heads = table.shape[0]
    res_h, res_w = trained
    grid = table.reshape(num_heads, res_h, res_w)
    out_h, out_w = max(res_h, extent[0]), max(res_w, extent[1])
    if (out_h, out_w) == (res_h, res_w):
        return grid
    dtype = grid.dtype
    resized = F.interpolate(
        grid[None].float(), size=(out_h, out_w), mode='bicubic',
        align_corners=True)[0]
    return resized.to(dtype)


def attention_bias(table: torch.Tensor, trained: Size2, q_size: Size2,
                   k_size: Size2, stride: int = 1) -> torch.Tensor:
    """The ``(heads, H_q * W_q, H_k * W_k)`` additive attention bias for one grid.

    Args:
        table: learned biases, ``(heads, R_h * R_w)`` in the official layout.
        trained: ``(R_h, R_w)``, the key grid the table was trained for.
        q_size: query grid ``(H_q, W_q)``; ``stride`` apart on the key grid.
        k_size: key grid ``(H_k, W_k)``.
        stride: 1 for attention, 2 for shrinking attention.
    """
    grid = resize_bias_table(table, trained, k_size)
    dy = axis_offsets(q_size[0], k_size[0], stride, device=table.device)
    dx = axis_offsets(q_size[1], k_size[1], stride, device=table.device)
    # Broadcast gather straight into (heads, Hq, Wq, Hk, Wk): no N x N index tensor.
    bias = grid[:, dy[:, None, :, None], dx[None, :, None, :]]
    num_q = q_size[0] * q_size[1]
    num_k = k_size[0] * k_size[1]
    return bias.reshape(table.shape[0], num_q, num_k)
