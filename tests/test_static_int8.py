"""Static int8 (levit_mm.deploy.static_int8, tools/deployment/onnx_quantize_static.py):
the graph it writes, its errors, and its accuracy on real held-out digits."""
import os

import onnx
import pytest
import torch
from conftest import randomize_
from digits_model import DIGITS_CFG, build, digits_options, trained_digits
from tool_loading import load_tool, run_tool_cli

from levit_mm.deploy import switch_to_deploy
from levit_mm.deploy import LogitsWrapper
from levit_mm.deploy.onnx import (export_onnx, ort_runner, ort_session,
                                          quantize_onnx_int8)
from levit_tools.sample_images import sample_photo_crops
from levit_mm.deploy.static_int8 import quantize_static_int8


@pytest.fixture(scope='module')
def random_static(tmp_path_factory):
    """A random-weight LeViT-128S at 64 px, quantised with photo crops as calibration."""
    tmp = tmp_path_factory.mktemp('static')
    torch.manual_seed(0)
    model = switch_to_deploy(LogitsWrapper(randomize_(build(), seed=1)).eval())
    crops = torch.nn.functional.interpolate(sample_photo_crops(224), size=(64, 64),
                                            mode='bilinear')
    src = export_onnx(model, str(tmp / 'fp32.onnx'), (64, 64), dynamic_hw=False)
    # reduce_range as for users: 7-bit weights where the CPU has no int8 dot products
    dst = quantize_static_int8(src, str(tmp / 'int8.onnx'), [crops[:5], crops[5:]])
    return model, crops, src, dst


def check_int8_only_where_meant(src, dst, convs):
    fp32, int8 = onnx.load(src).graph, onnx.load(dst).graph
    weights = {i.name for i in fp32.initializer}
    linears = [n for n in fp32.node if n.op_type == 'MatMul' and n.input[1] in weights]
    ops = [n.op_type for n in int8.node]
    # every Linear (MatMul + bias Add) is one int8 GEMM with its bias inside
    assert ops.count('MatMulIntegerToFloat') == len(linears) > 0
    # attention matmuls (both operands activations) and softmax stay fp32
    assert ops.count('MatMul') == sum(n.op_type == 'MatMul' for n in fp32.node) - len(linears)
    assert ops.count('Softmax') == sum(n.op_type == 'Softmax' for n in fp32.node)
    # only int8 ops read dequantised tensors: residual adds, softmax etc. keep fp32 inputs;
    # the one exception is an int8 convolution's output, which is int8 (QLinearConv)
    producer = {o: n for n in int8.node for o in n.output}
    conv_inputs = 0
    for dq in (n for n in int8.node if n.op_type == 'DequantizeLinear'):
        q = producer.get(dq.input[0])
        if q is None:
            continue  # a weight
        source = producer.get(q.input[0])
        if source is not None and source.op_type == 'Conv':
            continue
        readers = {n.op_type for n in int8.node if dq.output[0] in n.input}
        assert readers == {'Conv'}, (dq.name, readers)
        conv_inputs += 1
    assert conv_inputs == (4 if convs else 0)  # the stem's four convolutions
    onnx.checker.check_model(onnx.load(dst))


def test_static_graph_int8_only_where_meant(random_static):
    _, _, src, dst = random_static
    check_int8_only_where_meant(src, dst, convs=False)


def test_static_graph_with_int8_convs(random_static, tmp_path):
    _, crops, src, _ = random_static
    dst = quantize_static_int8(src, str(tmp_path / 'int8.onnx'), [crops], int8_convs=True,
                               reduce_range=False)
    check_int8_only_where_meant(src, dst, convs=True)


def test_weights_fit_the_cpus_int8_gemm(random_static):
    """Without int8 dot products (VNNI/AMX) the weights are 7-bit, so onnxruntime's
    uint8 x int8 GEMM cannot saturate its 16-bit pair sums; with them, full 8-bit."""
    from onnx import numpy_helper

    from levit_mm.deploy.precision import cpu_has_vnni
    int8 = onnx.load(random_static[3]).graph
    weights = {n.input[1] for n in int8.node if n.op_type == 'MatMulIntegerToFloat'}
    peak = max(int(abs(numpy_helper.to_array(i).astype('int32')).max())
               for i in int8.initializer if i.name in weights)
    assert (peak > 64) == cpu_has_vnni(), peak


def test_static_int8_close_to_fp32(random_static):
    model, crops, src, dst = random_static
    with torch.no_grad():
        reference = model(crops)
    static = ort_runner(ort_session(dst))(crops)
    dynamic = ort_runner(ort_session(quantize_onnx_int8(src, src + '.dyn.onnx')))(crops)
    scale = reference.abs().max().item()
    static_err = (static - reference).abs().max().item() / scale
    dynamic_err = (dynamic - reference).abs().max().item() / scale
    assert static_err < 0.05, static_err
    assert static_err < 2 * dynamic_err + 1e-3, (static_err, dynamic_err)


def test_bad_calibration_input(tmp_path, random_static):
    _, _, src, _ = random_static
    with pytest.raises(ValueError, match='No calibration images'):
        quantize_static_int8(src, str(tmp_path / 'x.onnx'), [])
    assert not os.listdir(tmp_path)


@pytest.fixture
def tool():
    return load_tool('tools/deployment/onnx_quantize_static.py')


@pytest.mark.parametrize('case', ['no config', 'no checkpoint', 'zero calibration',
                                  'no data', 'wrong checkpoint'])
def test_tool_errors(tool, tmp_path, capsys, case):
    ckpt = tmp_path / 'model.pth'
    torch.save({'state_dict': build().state_dict()}, ckpt)
    out = tmp_path / 'out' / 'int8.onnx'
    args = {'no config': [str(tmp_path / 'missing.py'), str(ckpt)],
            'no checkpoint': [DIGITS_CFG, str(tmp_path / 'missing.pth')],
            'zero calibration': [DIGITS_CFG, str(ckpt), '--calib-images', '0'],
            'no data': [DIGITS_CFG, str(ckpt)] + digits_options(tmp_path / 'nowhere'),
            'wrong checkpoint': [DIGITS_CFG, str(ckpt), '--cfg-options',
                                 'model.head.num_classes=7']}
    expected = {'no config': 'No config at', 'no checkpoint': 'Checkpoint not found',
                'zero calibration': '--calib-images must be at least 1',
                'no data': 'data root', 'wrong checkpoint': ''}
    code, _, err = run_tool_cli(tool, args[case] + ['--output-file', str(out)], capsys)
    lines = [line for line in err.splitlines() if line.startswith('error:')]
    assert code == 2 and len(lines) == 1 and expected[case] in lines[0], err
    assert not (tmp_path / 'out').exists() or not os.listdir(tmp_path / 'out')


@pytest.mark.slow
def test_static_int8_accuracy_on_held_out_digits(tool, tmp_path, capsys):
    """A LeViT-128S trained briefly on the real digits (32 px scans, 4 epochs), quantised by
    the tool with 128 training images: held-out top-1 within 0.5 points of fp32."""
    from levit_tools.config_data import config_batches, load_config
    data, ckpt = trained_digits()
    options = {f'{s}_dataloader.dataset.data_root': str(data) for s in ('train', 'test')}
    cfg = load_config(DIGITS_CFG, options)
    model = build()

    out = tmp_path / 'digits-int8.onnx'
    code, stdout, err = run_tool_cli(
        tool, [DIGITS_CFG, str(ckpt), '--output-file', str(out), '--calib-images', '128',
               '--reduce-range', 'auto'] + digits_options(data), capsys)
    assert code == 0, err
    line = next(line for line in stdout.splitlines() if line.startswith('check on'))
    # "check on 359 test images: top-1 fp32 A%, int8 B%; agreement C%, max |dlogit| D"
    words = line.replace('%', '').replace(',', '').replace(';', '').split()
    fp32_top1, int8_top1 = float(words[7]), float(words[9])
    assert words[2] == '359'
    assert fp32_top1 > 80, line  # it learned something
    assert abs(int8_top1 - fp32_top1) <= 0.5, line
    assert out.is_file() and not [p for p in os.listdir(tmp_path) if p.startswith('.')]
    # the file is the model the check ran: recompute top-1 from it
    session = ort_runner(ort_session(str(out)))
    right = total = 0
    for x, y in config_batches(cfg, model, 'test', batch_size=128):
        right += (session(x).argmax(1) == y).sum().item()
        total += len(y)
    assert abs(100 * right / total - int8_top1) <= 0.005 + 1e-9  # printed with 2 decimals
