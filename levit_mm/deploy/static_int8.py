"""Static int8 for onnxruntime: activation scales calibrated once on real images, so no
activation is measured at run time (dynamic int8 scans every Linear's input for its range).

What is int8: every matmul with a weight (the Linears), weights per output channel,
activations uint8; optionally (``int8_convs``) the four stem convolutions too.  What stays
fp32, because int8 there costs more than it saves or loses accuracy: the attention matmuls
(q k^T, attn v: tiny K, both operands activations), softmax, the attention biases, residual
adds, hardswish and the classifier.

The graph is onnxruntime's QDQ form with two rewrites: fp32 ops get their fp32 inputs back
(:func:`unquantize_fp32_consumers`), and each weight matmul with the bias add after it
becomes one ``MatMulIntegerToFloat`` (int8 GEMM, scales and bias applied in its output
loop; :func:`fuse_matmul_bias`).  Int8 convolutions keep QDQ on both sides and become
``QLinearConv`` when the session loads.

Measured (README, *Deploy and speed*): the int8 stem is slower than onnxruntime's fp32 one,
which fuses conv + hardswish; in int8 the hardswish runs apart, between a dequantise and a
quantise, on the largest tensors of the network.  So ``int8_convs`` is off by default.
"""
import os
import os.path as osp
import tempfile
from typing import Dict, Iterable, List, Optional, Sequence

import torch

from .onnx import quiet_root_logger
from .precision import cpu_has_vnni

MS_DOMAIN = 'com.microsoft'


def int8_node_names(model, convs: bool = False) -> List[str]:
    """Names of the nodes to quantise: matmuls whose second input is a weight (an
    initializer), and with ``convs`` the convolutions.  Nodes without a name get one."""
    graph = model.graph
    weights = {init.name for init in graph.initializer}
    names = []
    for index, node in enumerate(graph.node):
        if not node.name:
            node.name = f'{node.op_type}_{index}'
        if (convs and node.op_type == 'Conv') or (node.op_type == 'MatMul'
                                                  and node.input[1] in weights):
            names.append(node.name)
    return names


class TensorCalibration:
    """onnxruntime's ``CalibrationDataReader`` protocol over batches of input tensors."""

    def __init__(self, batches: Iterable[torch.Tensor], input_name: str = 'input'):
        self.batches = [b.detach().cpu().float().numpy() for b in batches]
        if not self.batches:
            raise ValueError('No calibration images: static int8 needs at least one.')
        self.input_name = input_name
        self.index = 0

    def get_next(self):
        if self.index >= len(self.batches):
            return None
        self.index += 1
        return {self.input_name: self.batches[self.index - 1]}

    def rewind(self):
        self.index = 0


def _edges(graph):
    producer = {out: node for node in graph.node for out in node.output}
    consumers: Dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    return producer, consumers


def unquantize_fp32_consumers(model, int8_nodes: Sequence[str]) -> int:
    """Give every fp32 op back the fp32 tensor it read before quantisation, in place.

    onnxruntime's QDQ quantiser puts a tensor's Quantize/Dequantize pair in front of *all*
    its consumers, so a residual add or a softmax whose input also feeds an int8 matmul would
    read the rounded copy (the residual stream rounded to 8 bits in every block).  Only the
    int8 ops should.  A convolution's output stays rounded: that rounding is its int8 output
    (``QLinearConv``).  Returns how many inputs were restored."""
    graph = model.graph
    int8 = set(int8_nodes)
    producer, consumers = _edges(graph)
    restored = 0
    for dq in graph.node:
        if dq.op_type != 'DequantizeLinear':
            continue
        q = producer.get(dq.input[0])
        if q is None or q.op_type != 'QuantizeLinear':
            continue  # a weight's dequantisation
        source = producer.get(q.input[0])
        if source is not None and source.name in int8 and source.op_type == 'Conv':
            continue  # an int8 convolution's own output (QLinearConv writes it in int8)
        for node in consumers.get(dq.output[0], []):
            if node.name in int8:
                continue
            for i, name in enumerate(node.input):
                if name == dq.output[0]:
                    node.input[i] = q.input[0]
                    restored += 1
    _prune_dead_qdq(model)
    return restored


def _prune_dead_qdq(model) -> None:
    """Drop Quantize/Dequantize nodes whose outputs nothing reads."""
    graph = model.graph
    outputs = {o.name for o in graph.output}
    while True:
        _, consumers = _edges(graph)
        dead = [n for n in graph.node
                if n.op_type in ('QuantizeLinear', 'DequantizeLinear')
                and not any(consumers.get(o) or o in outputs for o in n.output)]
        if not dead:
            return
        for node in dead:
            graph.node.remove(node)


def _bias_add(matmul, consumers, weights):
    """The ``Add`` of a 1-D weight that is ``matmul``'s only reader, and that weight's
    name, or ``(None, '')``."""
    users = consumers.get(matmul.output[0], [])
    if len(users) != 1 or users[0].op_type != 'Add':
        return None, ''
    bias = [i for i in users[0].input if i != matmul.output[0]]
    if len(bias) != 1 or bias[0] not in weights or len(weights[bias[0]].dims) != 1:
        return None, ''
    return users[0], bias[0]


def fuse_matmul_bias(model) -> int:
    """``DQ(x_q), DQ(w_q) -> MatMul [-> Add(bias)]`` becomes
    ``MatMulIntegerToFloat(x_q, w_q, x_scale, w_scale, x_zp, w_zp[, bias])``, in place (after
    :func:`unquantize_fp32_consumers`, nothing else reads those dequantisations).  A matmul
    whose output goes elsewhere (e.g. added to the residual stream) keeps that add, in fp32;
    left as QDQ, onnxruntime would dequantise its weight on every run and multiply in fp32.
    Returns how many were fused."""
    from onnx import helper
    graph = model.graph
    weights = {init.name: init for init in graph.initializer}
    producer, consumers = _edges(graph)

    def dequantize(name):
        node = producer.get(name)
        return node if node is not None and node.op_type == 'DequantizeLinear' else None

    fused, dropped, added = 0, set(), {}
    for node in list(graph.node):
        dq_x, dq_w = ((dequantize(node.input[0]), dequantize(node.input[1]))
                      if node.op_type == 'MatMul' else (None, None))
        if dq_x is None or dq_w is None or dq_w.input[0] not in weights:
            continue
        add, bias = _bias_add(node, consumers, weights)
        zero_points = [dq.input[2] if len(dq.input) > 2 else '' for dq in (dq_x, dq_w)]
        inputs = [dq_x.input[0], dq_w.input[0], dq_x.input[1], dq_w.input[1]] + zero_points
        replaced = add if add is not None else node
        added[replaced.name] = helper.make_node(
            'MatMulIntegerToFloat', inputs + ([bias] if bias else []), [replaced.output[0]],
            name=node.name + ('_int8_bias' if bias else '_int8'), domain=MS_DOMAIN)
        dropped.add(node.name)  # the weight's dequantisation goes once nothing reads it
        fused += 1
    nodes = [added.get(node.name, node) for node in graph.node
             if node.name in added or node.name not in dropped]
    del graph.node[:]
    graph.node.extend(nodes)
    _prune_dead_qdq(model)  # an activation's dequantisation that only fused matmuls read
    if fused and not any(op.domain == MS_DOMAIN for op in model.opset_import):
        model.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))
    return fused


def inline_weight_identities(model) -> int:
    """Consumers of ``Identity(weight)`` read the weight itself, in place (the exporter
    writes one copy of equal weights, e.g. zero-initialised ones, and Identity nodes for
    the rest), so each such matmul is seen as a weight matmul.  Returns how many."""
    graph = model.graph
    weights = {init.name for init in graph.initializer}
    aliases = {n.output[0]: n.input[0] for n in graph.node
               if n.op_type == 'Identity' and n.input[0] in weights}
    outputs = {o.name for o in graph.output}
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in aliases:
                node.input[i] = aliases[name]
    kept = [n for n in graph.node if n.op_type != 'Identity' or n.output[0] not in aliases
            or n.output[0] in outputs]
    del graph.node[:]
    graph.node.extend(kept)
    return len(aliases)


def split_gemms(model) -> int:
    """Every ``Gemm`` with a weight (an initializer) and no scaling becomes ``MatMul``
    (+ ``Add`` of its ``C``), in place, except the one that writes a graph output (the
    classifier, kept fp32), so the weight matmuls quantise as above; onnxruntime fuses the
    fp32 ones that remain back into ``Gemm`` when it loads the graph.  Returns how many were
    split."""
    from onnx import helper, numpy_helper
    graph = model.graph
    weights = {init.name: init for init in graph.initializer}
    outputs = {o.name for o in graph.output}
    nodes, split = [], 0
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        has_c = len(node.input) > 2 and bool(node.input[2])
        if (node.op_type != 'Gemm' or node.input[1] not in weights or node.output[0] in outputs
                or attrs.get('alpha', 1.) != 1. or attrs.get('transA', 0)
                or has_c and attrs.get('beta', 1.) != 1.):
            nodes.append(node)
            continue
        weight = node.input[1]
        if attrs.get('transB', 0):
            transposed = numpy_helper.to_array(weights[weight]).T.copy()
            weight = f'{weight}_t_{split}'
            graph.initializer.append(numpy_helper.from_array(transposed, weight))
        name = node.name or f'Gemm_{split}'
        product = node.output[0] + '_matmul' if has_c else node.output[0]
        nodes.append(helper.make_node('MatMul', [node.input[0], weight], [product],
                                      name=name + '_matmul'))
        if has_c:
            nodes.append(helper.make_node('Add', [product, node.input[2]], [node.output[0]],
                                          name=name + '_add'))
        split += 1
    del graph.node[:]
    graph.node.extend(nodes)
    read = {name for node in graph.node for name in node.input}
    unread = [init for init in graph.initializer if init.name not in read]
    for init in unread:
        graph.initializer.remove(init)
    return split


def quantize_static_int8(src: str, dst: str, calibration: Iterable[torch.Tensor],
                         per_channel: bool = True, reduce_range: Optional[bool] = None,
                         int8_convs: bool = False, fuse_bias: bool = True) -> str:
    """Quantise the fp32 ONNX model ``src`` (input ``input``) to static int8 at ``dst``,
    written atomically.  ``calibration``: batches of preprocessed images (N, 3, H, W) whose
    activation ranges (min/max) set the scales.  ``reduce_range`` defaults to 7-bit weights
    on CPUs without int8 dot products (:func:`cpu_has_vnni`)."""
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    if reduce_range is None:
        reduce_range = not cpu_has_vnni()
    reader = TensorCalibration(calibration)
    model = onnx.load(src)
    inline_weight_identities(model)
    split_gemms(model)
    nodes = int8_node_names(model, convs=int8_convs)
    out_dir = osp.dirname(osp.abspath(dst))
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix='.static-int8-') as work:
        named = osp.join(work, 'named.onnx')
        onnx.save(model, named)
        quantized = osp.join(work, 'qdq.onnx')
        with quiet_root_logger():
            quantize_static(
                named, quantized, reader, quant_format=QuantFormat.QDQ,
                nodes_to_quantize=nodes, per_channel=per_channel, reduce_range=reduce_range,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                extra_options={'OpTypesToExcludeOutputQuantization': ['MatMul'],
                               'QDQOpTypePerChannelSupportToAxis': {'MatMul': 1}})
        model = onnx.load(quantized)
        unquantize_fp32_consumers(model, nodes)
        if fuse_bias:
            fuse_matmul_bias(model)
        onnx.checker.check_model(model)
        partial = osp.join(work, 'out.onnx')
        onnx.save(model, partial)
        os.replace(partial, dst)
    return dst
