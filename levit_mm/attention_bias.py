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
  2-D map with bicubic interpolation (as ViT resizes position embeddings), stretched so that
  the new grid's offsets ``0 .. K-1`` cover the trained ``0 .. R-1``: new offset ``d`` reads
  the table at ``d * (R-1) / (K-1)`` (``align_corners=True``).  The zero offset (a token
  attending to itself) and the farthest trained offset keep their learned values.  Axes that
  fit are left untouched.  Why stretch rather than keep small offsets and extrapolate the
  rest: a detector sees objects several times larger than the 224 crops, so relative
  positions scale with the image, as ViT/Swin assume when they resize their tables;
* the table is a function of ``|offset|``, i.e. an even function of the signed offset, so it
  is mirrored to signed offsets ``-(R-1) .. R-1`` before resampling and folded back after.
  Bicubic taps that fall left of offset 0 then read ``f(1), f(2)`` (the true even extension)
  instead of PyTorch's edge replication ``f(0), f(0)``, which would flatten the peak at 0.

Building a bias is a gather of ``heads x N_q x N_k`` values (the size SDPA needs anyway).  The
offsets are separable, so the gather works from two small ``(queries, keys)`` offset tables
per axis, never an ``N_q x N_k`` index tensor, and writes the output once in its final layout.

Nothing here knows about modules, devices or checkpoints.
"""
from typing import Optional, Tuple

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


def axis_offsets(num_q: int, num_k: int, stride: int = 1, device=None,
                 first_q: int = 0) -> torch.Tensor:
    """``|q * stride - k|`` for queries ``first_q .. first_q + num_q - 1`` on a strided
    grid, shape ``(num_q, num_k)``.

    The 2-D offset table is separable, so two of these (rows and columns) replace the
    ``N x N`` index buffer of the reference implementations.
    """
    q = torch.arange(first_q, first_q + num_q, device=device) * stride
    k = torch.arange(num_k, device=device)
    return (q[:, None] - k[None, :]).abs()


def table_index(k_size: Size2, stride: int = 1) -> torch.Tensor:
    """``(N_q, N_k)`` column of the bias table for each query/key pair of a key grid that
    the table covers as it is (the trained grid, or a smaller one, ``row_width`` being the
    table's): the reference implementations' ``attention_bias_idxs`` buffer.  Gathering
    with it is one op, which is what training at the trained size does every step."""
    q_h, q_w = subsampled_size(k_size, stride)
    dy = axis_offsets(q_h, k_size[0], stride)
    dx = axis_offsets(q_w, k_size[1], stride)
    index = dy[:, None, :, None] * k_size[1] + dx[None, :, None, :]
    return index.reshape(q_h * q_w, k_size[0] * k_size[1])


def mirror_offsets(grid: torch.Tensor, dim: int) -> torch.Tensor:
    """``f(0..R-1)`` -> ``f(-(R-1)..R-1)`` along ``dim``: the even extension of the table."""
    return torch.cat([grid.flip(dim).narrow(dim, 0, grid.shape[dim] - 1), grid], dim)


def resize_bias_table(table: torch.Tensor, trained: Size2,
                      extent: Size2) -> torch.Tensor:
    """Resample a ``(heads, R_h * R_w)`` table so it covers ``extent`` offsets per axis.

    Returns a ``(heads, E_h, E_w)`` map with ``E = max(R, extent)`` per axis.  When both axes
    already cover the extent the table is returned as is (the trained values, exactly).
    Otherwise the mirrored ``(2R-1)`` map is resized bicubically (``align_corners=True``) to
    ``(2E-1)`` and its non-negative half kept; an axis whose size does not change maps onto
    integer positions, where the bicubic kernel's weights are exactly ``(0, 1, 0, 0)``.
    """
    num_heads = table.shape[0]
    res_h, res_w = trained
    if table.shape[-1] != res_h * res_w:
        raise ValueError(f'A bias table for a {res_h}x{res_w} grid needs {res_h * res_w} '
                         f'offsets per head; got shape {tuple(table.shape)}.')
    grid = table.reshape(num_heads, res_h, res_w)
    out_h, out_w = max(res_h, extent[0]), max(res_w, extent[1])
    if (out_h, out_w) == (res_h, res_w):
        return grid
    signed = mirror_offsets(mirror_offsets(grid, 1), 2)
    resized = F.interpolate(
        signed[None].float(), size=(2 * out_h - 1, 2 * out_w - 1), mode='bicubic',
        align_corners=True)[0]
    return resized[:, out_h - 1:, out_w - 1:].to(grid.dtype)


def attention_bias(table: torch.Tensor, trained: Size2, q_size: Size2,
                   k_size: Size2, stride: int = 1,
                   q_rows: Optional[Tuple[int, int]] = None) -> torch.Tensor:
    """The ``(heads, H_q * W_q, H_k * W_k)`` additive attention bias for one grid.

    Args:
        table: learned biases, ``(heads, R_h * R_w)`` in the official layout.
        trained: ``(R_h, R_w)``, the key grid the table was trained for.
        q_size: query grid ``(H_q, W_q)``; ``stride`` apart on the key grid.
        k_size: key grid ``(H_k, W_k)``.
        stride: 1 for attention, 2 for shrinking attention.
        q_rows: ``(first, end)``: only the queries of these rows of the query grid, i.e.
            bias rows ``first * W_q .. end * W_q`` (chunked attention).
    """
    grid = resize_bias_table(table, trained, k_size)
    first, end = q_rows if q_rows is not None else (0, q_size[0])
    dy = axis_offsets(end - first, k_size[0], stride, device=table.device, first_q=first)
    dx = axis_offsets(q_size[1], k_size[1], stride, device=table.device)
    # Columns first (small): by_col[h, qx, oy, kx] = grid[h, oy, dx[qx, kx]].
    by_col = grid[:, :, dx].permute(0, 2, 1, 3)
    # Then rows, straight into (heads, Hq, Wq, Hk, Wk): each output row of Wk values is one
    # contiguous row of by_col, and nothing N_q x N_k sized is built besides the result.
    q_cols = torch.arange(q_size[1], device=table.device)
    bias = by_col[:, q_cols[None, :, None], dy[:, None, :]]
    num_q = (end - first) * q_size[1]
    num_k = k_size[0] * k_size[1]
    return bias.reshape(table.shape[0], num_q, num_k)
