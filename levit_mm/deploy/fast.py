"""The fast deploy graph: a folded LeViT classifier rewritten as a flat chain of matrix
products on ``(B * N, C)`` token matrices, for CPU inference (eager, compiled, ONNX).

What it changes against the folded model (same function, same weights; the tests check
they agree):

* tokens stay one 2-D ``(B * N, C)`` matrix, so every Linear is one GEMM (``Gemm`` in
  ONNX, where the folded model's ``MatMul`` on 4-D tokens plus a separate bias ``Add`` is
  what onnxruntime runs);
* the residual add is the GEMM's accumulate: ``x + act(a) W^T`` is one ``addmm`` (one
  ``Gemm`` with ``C = x``).  For that the residual branches' output biases are *carried*
  rather than added: the stream is held as ``x - s`` for a per-channel shift ``s`` known
  at build time, and every layer that reads the stream absorbs ``W s`` into its own bias
  (a shift commutes with subsampling and mean pooling);
* the query/key/value projection is three GEMMs whose outputs are the heads' ``q``, ``k``
  and ``v`` side by side (no split copy), with the attention scale folded into the query
  weights;
* the attention bias is a constant per grid (:mod:`levit_mm.attention_bias`, built once);
* in ONNX for onnxruntime (:func:`export_fast_onnx`), each attention is one
  ``com.microsoft.MultiHeadAttention`` node reading the token matrices as they are
  (``softmax(q k^T + bias) v`` per head, no transposes between heads and tokens).

Built from a *deployed* classifier (:func:`levit_mm.deploy.switch_to_deploy`), either
form, by reading the blocks' public attributes (``qkv``/``kv``/``q``/``proj`` layers,
``num_heads``, ``key_dim``, ``d``, ``scale``, ``attention_biases``,
``trained_resolution``, ``stride``).  Inference only, at one input size per graph (the
bias of other grids is built on first use).
"""
import contextlib
import contextvars
import copy
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..attention_bias import attention_bias, subsampled_size
from ..backbones import LeViT
from ..backbones.layers import Attention, AttentionSubsample, Residual

#: while exporting for onnxruntime: each attention as one MultiHeadAttention node
_MHA_EXPORT = contextvars.ContextVar('fused_attention_export', default=False)


def _pointwise(layer: nn.Module) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(weight (out, in), bias)`` of a folded Linear or 1x1 convolution, in float64."""
    weight = layer.weight.detach().double()
    return weight.reshape(weight.shape[0], -1), layer.bias.detach().double()


def _head_rows(num_heads: int, widths: Sequence[int]) -> List[torch.Tensor]:
    """Row indices of each part of a head-major ``[h0: p0 p1 .., h1: ..]`` projection,
    as one index per part (all heads' rows of that part, in head order)."""
    per_head = sum(widths)
    starts = [sum(widths[:i]) for i in range(len(widths))]
    return [torch.cat([torch.arange(h * per_head + s, h * per_head + s + w)
                       for h in range(num_heads)]) for s, w in zip(starts, widths)]


def _parameter(tensor: torch.Tensor, dtype: torch.dtype) -> nn.Parameter:
    return nn.Parameter(tensor.to(dtype).contiguous(), requires_grad=False)


class _MultiHeadAttention(torch.autograd.Function):
    """``softmax(q k^T + bias) v`` over ``(B, N, heads * d)`` token matrices; exported
    as onnxruntime's ``MultiHeadAttention`` (``com.microsoft``), which takes this layout
    directly."""

    @staticmethod
    def forward(ctx, q, k, v, bias, num_heads: int):
        return _attention(q, k, v, bias, num_heads)

    @staticmethod
    def symbolic(g, q, k, v, bias, num_heads: int):
        from torch.onnx import symbolic_helper
        none = g.op('prim::Constant').setType(torch._C.NoneType.get())
        out = g.op('com.microsoft::MultiHeadAttention', q, k, v, none, none,
                   g.op('Unsqueeze', bias, g.op('Constant', value_t=torch.tensor([0]))),
                   num_heads_i=num_heads, scale_f=1.0)
        q_sizes = symbolic_helper._get_tensor_sizes(q)
        v_sizes = symbolic_helper._get_tensor_sizes(v)
        return out.setType(q.type().with_sizes(q_sizes[:2] + v_sizes[2:]))


def _attention(q, k, v, bias, num_heads: int):
    """The eager computation: ``(B, Nq, h*dk), (B, Nk, h*dk), (B, Nk, h*dv)`` ->
    ``(B, Nq, h*dv)``; the scale is already in ``q``."""
    q = q.unflatten(-1, (num_heads, -1)).transpose(1, 2)
    k = k.unflatten(-1, (num_heads, -1)).permute(0, 2, 3, 1)
    v = v.unflatten(-1, (num_heads, -1)).transpose(1, 2)
    scores = torch.matmul(q, k)
    scores += bias
    out = torch.matmul(scores.softmax(dim=-1), v)
    return out.transpose(1, 2).flatten(2)


class FastAttention(nn.Module):
    """An attention block (plain, inside a residual, or shrinking) on token matrices."""

    def __init__(self, block: nn.Module, shift: torch.Tensor, residual: bool,
                 dtype: torch.dtype):
        super().__init__()
        h, kd, d = block.num_heads, block.key_dim, block.d
        self.num_heads, self.stride, self.residual = h, block.stride, residual
        if isinstance(block, AttentionSubsample):
            (w_kv, b_kv), (w_q, b_q) = _pointwise(block.kv), _pointwise(block.q[1])
            k_rows, v_rows = _head_rows(h, (kd, d))
        else:
            w_kv, b_kv = w_q, b_q = _pointwise(block.qkv)
            q_rows, k_rows, v_rows = _head_rows(h, (kd, kd, d))
            w_q, b_q = w_q[q_rows], b_q[q_rows]
        b_q, b_kv = b_q + w_q @ shift, b_kv + w_kv @ shift  # the stream is x - shift
        scale = block.scale
        self.w_q, self.b_q = _parameter(w_q * scale, dtype), _parameter(b_q * scale, dtype)
        self.w_k, self.b_k = _parameter(w_kv[k_rows], dtype), _parameter(b_kv[k_rows], dtype)
        self.w_v, self.b_v = _parameter(w_kv[v_rows], dtype), _parameter(b_kv[v_rows], dtype)
        self.act = copy.deepcopy(block.proj[0])
        w_p, self.out_bias = _pointwise(block.proj[1])
        self.w_p = _parameter(w_p.t(), dtype)  # (in, out): addmm's second operand
        self.register_buffer('table', block.attention_biases.detach().clone(),
                             persistent=False)
        self.trained = block.trained_resolution
        self.trained_grids = (subsampled_size(self.trained, self.stride), self.trained)
        # the trained grid's bias, a constant of compiled and exported graphs
        self.register_buffer('trained_bias', self._build_bias(*self.trained_grids, dtype),
                             persistent=False)
        self._biases: Dict[tuple, torch.Tensor] = {}

    def _build_bias(self, q_size, k_size, dtype) -> torch.Tensor:
        return attention_bias(self.table.double(), self.trained, q_size, k_size,
                              self.stride).to(dtype)

    def bias(self, q_size, k_size, dtype) -> torch.Tensor:
        """``(heads, N_q, N_k)``: the stored one for the trained grid, else built once."""
        if (q_size, k_size) == self.trained_grids and self.trained_bias.dtype == dtype:
            return self.trained_bias
        key = (q_size, k_size, dtype)
        if key not in self._biases:
            self._biases[key] = self._build_bias(q_size, k_size, dtype)
        return self._biases[key]

    def _apply(self, fn, *args, **kwargs):
        self._biases.clear()  # built for the old device or dtype
        return super()._apply(fn, *args, **kwargs)

    def forward(self, x: torch.Tensor, size: Tuple[int, int]):
        """``x``: ``(B * H * W, C)`` tokens of an ``(H, W)`` grid; returns the new tokens
        (``x - shift`` carried on) and their grid."""
        # batch sizes as -1 and grids as ints: an exported graph computes no shapes
        n_k, channels = size[0] * size[1], self.w_k.shape[1]
        q_in, q_size = x, size
        if self.stride > 1:
            q_size = subsampled_size(size, self.stride)
            q_in = x.view(-1, size[0], size[1], channels)[:, ::self.stride, ::self.stride]
            q_in = q_in.reshape(-1, channels)
        n_q = q_size[0] * q_size[1]
        q = F.linear(q_in, self.w_q, self.b_q).view(-1, n_q, self.w_q.shape[0])
        k = F.linear(x, self.w_k, self.b_k).view(-1, n_k, self.w_k.shape[0])
        v = F.linear(x, self.w_v, self.b_v).view(-1, n_k, self.w_v.shape[0])
        bias = self.bias(tuple(q_size), tuple(size), q.dtype)
        if torch.jit.is_tracing() and _MHA_EXPORT.get():  # (read only by the exporter)
            out = _MultiHeadAttention.apply(q, k, v, bias, self.num_heads)
        else:
            out = _attention(q, k, v, bias, self.num_heads)
        out = self.act(out.reshape(-1, self.w_v.shape[0]))
        if self.residual:
            return torch.addmm(x, out, self.w_p), q_size
        return torch.mm(out, self.w_p), q_size


class FastMLP(nn.Module):
    """A residual MLP block on token matrices: ``x + act(x W1^T + b1) W2^T``."""

    def __init__(self, mlp: nn.Module, shift: torch.Tensor, dtype: torch.dtype):
        super().__init__()
        w1, b1 = _pointwise(mlp.linear1)
        w2, self.out_bias = _pointwise(mlp.linear2)
        self.w1, self.b1 = _parameter(w1, dtype), _parameter(b1 + w1 @ shift, dtype)
        self.act = copy.deepcopy(mlp.activation)
        self.w2 = _parameter(w2.t(), dtype)

    def forward(self, x: torch.Tensor, size):
        hidden = self.act(F.linear(x, self.w1, self.b1))
        return torch.addmm(x, hidden, self.w2), size


def _fast_blocks(backbone: LeViT, dtype: torch.dtype) -> Tuple[nn.ModuleList, torch.Tensor]:
    """The blocks of every stage in order, and the shift the last one leaves."""
    shift = torch.zeros(backbone.embed_dims[0], dtype=torch.float64)
    blocks = []
    for stage in backbone.stages:
        for module in stage:
            inner = module.block if isinstance(module, Residual) else module
            if isinstance(inner, (Attention, AttentionSubsample)):
                fast = FastAttention(inner, shift, isinstance(module, Residual), dtype)
                shift = fast.out_bias + (shift if fast.residual else 0)
            else:
                fast = FastMLP(inner, shift, dtype)
                shift = shift + fast.out_bias
            blocks.append(fast)
    return nn.ModuleList(blocks), shift


class FastLeViT(nn.Module):
    """A deployed LeViT classifier (``LogitsWrapper`` or classifier with ``backbone``
    and ``head``) as the fast deploy graph; ``forward(x) -> logits``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        classifier = getattr(model, 'model', model)
        backbone, head = classifier.backbone, classifier.head
        if not isinstance(backbone, LeViT) or not backbone.deploy or not head.deploy:
            raise ValueError('FastLeViT needs a deployed LeViT classifier: call '
                             'levit_mm.deploy.switch_to_deploy on it first.')
        if backbone.with_stem_out or backbone.out_indices != [backbone.num_stages - 1]:
            raise ValueError('FastLeViT computes logits from the last stage only; got '
                             f'out_indices={backbone.out_indices}.')
        dtype = next(backbone.parameters()).dtype
        self.stem = copy.deepcopy(backbone.patch_embed)  # the folded model stays its own
        self.blocks, shift = _fast_blocks(backbone, dtype)
        w, b = _pointwise(head.head)
        self.head_w, self.head_b = _parameter(w, dtype), _parameter(b + w @ shift, dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, _ = self.stem(x)
        channels, size = int(x.shape[1]), (int(x.shape[2]), int(x.shape[3]))
        x = x.permute(0, 2, 3, 1).reshape(-1, channels)  # constants of an exported graph
        for block in self.blocks:
            x, size = block(x, size)
        pooled = x.view(-1, size[0] * size[1], self.head_w.shape[1]).mean(dim=1)
        return F.linear(pooled, self.head_w, self.head_b)


@contextlib.contextmanager
def multi_head_attention_nodes():
    """While exporting: each attention of a :class:`FastLeViT` becomes one onnxruntime
    ``MultiHeadAttention`` node."""
    token = _MHA_EXPORT.set(True)
    try:
        yield
    finally:
        _MHA_EXPORT.reset(token)


def export_fast_onnx(model: FastLeViT, path: str, shape: Sequence[int] = (224, 224),
                     fused_attention: bool = True, opset: int = 17) -> str:
    """Export a :class:`FastLeViT` at one input size (batch dynamic), with each attention
    as one onnxruntime ``MultiHeadAttention`` node (``fused_attention=False``: standard
    ONNX ops only, for other runtimes)."""
    from .onnx import export_onnx
    context = multi_head_attention_nodes() if fused_attention else contextlib.nullcontext()
    with context:
        return export_onnx(model, path, shape, dynamic_hw=False, opset=opset,
                           custom_opsets={'com.microsoft': 1} if fused_attention else None)


def to_fast_graph(model: nn.Module, dtype: Optional[torch.dtype] = None) -> FastLeViT:
    """:class:`FastLeViT` of a deployed classifier, eval mode."""
    fast = FastLeViT(model).eval()
    return fast if dtype is None else fast.to(dtype)
