"""The fast deploy graph (levit_mm.deploy.fast) computes what the folded model it replaces
computes, eagerly, compiled and exported (onnxruntime with its fused attention node,
standard ONNX, OpenVINO); its int8 path stays within bounds on random weights; and every
reduced-precision path keeps held-out digits top-1 within 0.5 points of fp32."""
import copy

import onnx
import pytest
import torch
from conftest import randomize_
from tool_loading import load_tool

from levit_mm.deploy import LogitsWrapper, switch_to_deploy
from levit_mm.deploy.fast import FastLeViT, export_fast_onnx, to_fast_graph
from levit_mm.deploy.onnx import ort_runner, ort_session
from levit_mm.deploy.static_int8 import quantize_static_int8
from levit_tools.models import build_classifier
from levit_tools.sample_images import agreement, sample_photo_crops

#: fp32 rewrites (reordered sums, carried biases) against the folded model, relative to
#: the largest logit; int8 against fp32 as in tests/test_deploy.py
FP32_REL, INT8_REL = 1e-5, 0.05


def folded_model(arch='128s', form='linear'):
    """A deployed classifier with random BN statistics and attention biases, and logits
    spread enough to compare rankings."""
    model = randomize_(build_classifier(arch, form=form), seed=2, classifier_std=0.05)
    return switch_to_deploy(LogitsWrapper(model).eval())


@pytest.fixture(scope='module')
def folded():
    return folded_model()


def relative_error(reference, other):
    return ((other - reference).abs().max() / reference.abs().max()).item()


@pytest.mark.parametrize('arch,form,size', [('128s', 'linear', 224), ('128s', 'conv', 224),
                                            ('256', 'linear', 224), ('128s', 'linear', 160)])
def test_fast_graph_equals_folded(arch, form, size):
    """Same logits as the folded model, either form, at the trained size and another one
    (whose biases the fast graph builds itself)."""
    model = folded_model(arch, form)
    fast = to_fast_graph(model)
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        assert relative_error(model(x), fast(x)) < FP32_REL


def test_fast_graph_needs_a_deployed_classifier():
    with pytest.raises(ValueError, match='switch_to_deploy'):
        FastLeViT(LogitsWrapper(build_classifier('128s')))


def test_fast_graph_exports(folded, tmp_path):
    """onnxruntime runs one fused attention node per block and no transposes between
    heads and tokens; the standard-ops export runs in onnxruntime and OpenVINO; all give
    the folded model's logits."""
    fast = to_fast_graph(folded)
    x = sample_photo_crops(224)[:4]
    with torch.inference_mode():
        expected = folded(x)
    fused = export_fast_onnx(fast, str(tmp_path / 'fused.onnx'))
    plain = export_fast_onnx(fast, str(tmp_path / 'plain.onnx'), fused_attention=False)
    ops = [n.op_type for n in onnx.load(fused).graph.node]
    blocks = sum(isinstance(b, torch.nn.Module) and hasattr(b, 'num_heads')
                 for b in fast.blocks)
    assert ops.count('MultiHeadAttention') == blocks == 11
    assert ops.count('Transpose') == 1 and 'Softmax' not in ops  # stem map -> tokens only
    outputs = {'fused': ort_runner(ort_session(fused))(x),
               'plain': ort_runner(ort_session(plain))(x)}
    try:
        from levit_mm.deploy.openvino import ov_runner
        outputs['openvino'] = ov_runner(plain)(x)
    except ImportError:
        pass
    for name, out in outputs.items():
        assert relative_error(expected, out) < FP32_REL, name


def test_fast_graph_static_int8(folded, tmp_path):
    """levit_mm's static pass on the fast graph: every Linear but the classifier is one
    int8 GEMM (no weight dequantised at run time), within the int8 bound of fp32."""
    crops = sample_photo_crops(224)
    src = export_fast_onnx(to_fast_graph(folded), str(tmp_path / 'fast.onnx'))
    dst = quantize_static_int8(src, str(tmp_path / 'int8.onnx'), [crops])
    ops = [n.op_type for n in onnx.load(dst).graph.node]
    linears = sum(n.op_type == 'Gemm' for n in onnx.load(src).graph.node)
    assert ops.count('MatMulIntegerToFloat') == linears - 1 and ops.count('Gemm') == 1
    assert 'DequantizeLinear' not in ops
    with torch.inference_mode():
        reference = folded(crops)
    assert relative_error(reference, ort_runner(ort_session(dst))(crops)) < INT8_REL


@pytest.mark.slow
def test_compiled_fast_graph_matches_eager(folded):
    from levit_mm.deploy import compile_for_inference
    fast = to_fast_graph(copy.deepcopy(folded))
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected = fast(x)
        got = compile_for_inference(fast)(x)
    assert relative_error(expected, got) < FP32_REL


def test_bf16_fast_graph_agrees(folded):
    from levit_mm.deploy import bf16_autocast
    fast = to_fast_graph(folded)
    crops = sample_photo_crops(224)
    with torch.inference_mode():
        reference = folded(crops)
        with bf16_autocast():
            bf16 = fast(crops).float()
    assert agreement(reference, bf16)[2] < INT8_REL


@pytest.mark.slow
def test_every_path_keeps_held_out_digits_top1():
    """The precision report on a LeViT-128S trained briefly on the digits: every path
    (folded and fast graph; fp32, bf16 and int8) within 0.5 points of fp32 top-1."""
    from digits_model import DIGITS_CFG, digits_options, trained_digits
    data, ckpt = trained_digits()
    report = load_tool('tools/analysis_tools/precision_report.py')
    paths = [p for p in report.default_paths() if 'compiled' not in p]  # compiling: minutes
    rows = report.main([DIGITS_CFG, str(ckpt), '--calib-images', '128', '--paths'] + paths
                       + digits_options(data))
    top1 = {name: value for name, value, _, _ in rows}
    assert top1['fp32 eager'] > 80, top1  # it learned something
    assert set(top1) >= {'fast', 'fast ort fp32', 'fast ort int8 static', 'ort int8 static',
                         'bf16', 'fast bf16'}
    for name, value in top1.items():
        assert abs(value - top1['fp32 eager']) <= 0.5, (name, top1)
