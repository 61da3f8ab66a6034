"""LeViT-C, the conv form (``form='conv'``): timm's ``levit_conv_*`` logits for the five
published variants, one set of weights with the linear form (checkpoints of either form,
levit_mm's, timm's and the official LeViT-C layout, load into either), any input size,
deploy folding, ONNX, the measured choice of form, and clear errors."""
import copy
import json
import os.path as osp

import pytest
import torch
from conftest import ARCHS, randomize_
from mmengine.runner import load_checkpoint
from levit_tools.testing import random_timm

import levit_mm
from levit_mm.backbones.layers import PointwiseConvBN
from levit_mm.convert import CheckpointFormatError, convert_state_dict
from levit_mm.convert.model_loading import CheckpointMismatchError, load_checkpoint_strict
from levit_mm.deploy import fold_state_dict, switch_to_deploy, time_forms, use_fastest_form
from levit_mm.deploy import LogitsWrapper
from levit_tools import parity
from levit_tools.models import build_classifier

PARITY_TOL = parity.TIMM_CONV  # timm's levit_conv_* (fp32)
DEPLOY_TOL = parity.FUSED
OFFICIAL_LAYOUT = osp.join(osp.dirname(__file__), 'data', 'official_levit_layout.json')
#: (variant, source) -> max |logit diff|, printed at the end of the module (-s)
DIFFS = {}


def images(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def logits(model, x):
    return model(x, mode='tensor')


def loaded_classifier(arch, state, form, **kwargs):
    """A levit_mm classifier in ``form`` holding ``state`` (any layout, either form), loaded
    by ``load_state_dict``; built on the meta device, as every tensor comes from ``state``."""
    with torch.device('meta'):
        model = build_classifier(arch, form=form, **kwargs)
    model.to_empty(device='cpu')
    model.load_state_dict(state, strict=True)
    return model.eval()


def record(arch, source, out, ref, tol):
    assert ref.std() > 0.1, 'reference logits too flat for a meaningful comparison'
    diff = (out - ref).abs().max().item()
    DIFFS[(arch, source)] = diff
    assert diff <= tol, f'{source} LeViT-{arch}: max |logit diff| {diff:.2e} > {tol}'


# ------------------------------------------------------------------------------ layouts
@pytest.mark.parametrize('arch', ARCHS)
def test_conv_layout_tables_are_the_implementations_own(arch):
    """The converter's conv-form key/shape tables equal what timm's ``levit_conv_*`` and
    levit_mm's conv form save (training and deploy forms)."""
    import timm
    from levit_mm.arch import resolve_arch
    from levit_mm.convert import FORMATS, expected_tensors
    spec = resolve_arch(arch)

    def table(fmt, fused=False, distilled=True):
        return [(k, list(s)) for k, (_, _, s) in expected_tensors(
            FORMATS[fmt], spec, fused, 1000, distilled, conv=True).items()]

    def saved(state_dict):
        return [(k, list(v.shape)) for k, v in state_dict.items()
                if not k.endswith(('num_batches_tracked', 'attention_bias_idxs'))]

    with torch.device('meta'):
        assert table('timm') == saved(timm.create_model(f'levit_conv_{arch}').state_dict())
        assert table('mmpretrain') == saved(build_classifier(arch, form='conv').state_dict())
        deployed = build_classifier(arch, form='conv', deploy=True).state_dict()
        assert table('mmpretrain', fused=True, distilled=False) == saved(deployed)


# ------------------------------------------------------------------------------ parity
@pytest.mark.parametrize('arch', [  # the two largest are slow on 2 shared cores
    a if a in ('128s', '128', '192') else pytest.param(a, marks=pytest.mark.slow)
    for a in ARCHS])
def test_timm_levit_conv_parity_both_forms(arch):
    """timm's ``levit_conv_<arch>`` state dict, as it is, into both levit_mm forms."""
    theirs = random_timm(f'levit_conv_{arch}', seed=3)
    x = images(1, 3, 224, 224)
    with torch.no_grad():
        ref = theirs(x)
    for form in ('conv', 'linear'):
        ours = loaded_classifier(arch, theirs.state_dict(), form)
        record(arch, f'timm levit_conv -> {form}', logits(ours, x), ref, PARITY_TOL)


@pytest.mark.parametrize('arch', ['128s', '256'])
def test_timm_linear_and_fused_conv_into_conv_form(arch):
    """timm's linear ``levit_<arch>`` into the conv form, and timm's ``fuse()``d
    ``levit_conv_<arch>`` into the deployed conv form."""
    from levit_mm.backbones.layers import fuse_modules
    x = images(1, 3, 224, 224, seed=1)
    linear = random_timm(f'levit_{arch}', seed=4)
    with torch.no_grad():
        ref = linear(x)
    record(arch, 'timm levit -> conv', logits(loaded_classifier(arch, linear.state_dict(),
                                                                'conv'), x), ref, PARITY_TOL)
    conv = random_timm(f'levit_conv_{arch}', seed=5)
    with torch.no_grad():
        ref = conv(x)
    fused = fuse_modules(conv).state_dict()
    ours = loaded_classifier(arch, fused, 'conv', deploy=True)
    record(arch, 'timm levit_conv fused -> conv deploy', logits(ours, x), ref, DEPLOY_TOL)


def official_c_from_timm(timm_model, arch):
    """An official LeViT-C (``levit_c.py``) state dict holding a timm ``levit_conv_*``
    model's weights: the official key names and order (``official_levit_layout.json``,
    dumped from facebookresearch/LeViT; ``levit_c.py`` names its modules as ``levit.py``
    does), tensors paired by position, pointwise kernels kept 1x1 as LeViT-C saves them."""
    with open(OFFICIAL_LAYOUT) as f:
        names = json.load(f)[arch]['plain']
    values = iter(timm_model.state_dict().values())
    official = {}
    for key, shape in names:
        if key.endswith('attention_bias_idxs'):
            continue  # derived
        value = next(values)
        assert list(value.shape) in (shape, shape + [1, 1]), key
        official[key] = value.clone()
    assert next(values, None) is None
    return official


@pytest.mark.parametrize('arch', ['128s', '192'])
def test_official_levit_c_layout_loads_into_both_forms(arch):
    theirs = random_timm(f'levit_conv_{arch}', seed=6)
    x = images(1, 3, 224, 224, seed=2)
    with torch.no_grad():
        ref = theirs(x)
    official = {'model': official_c_from_timm(theirs, arch)}
    _, info = convert_state_dict(official)
    assert (info.format, info.conv, info.arch) == ('official', True, arch)
    assert 'LeViT-C: 1x1 convolutions' in info.describe()
    for form in ('conv', 'linear'):
        ours = loaded_classifier(arch, official['model'], form)
        record(arch, f'official LeViT-C -> {form}', logits(ours, x), ref,
               parity.OFFICIAL_C)


# ------------------------------------------------------------------------------ one set of weights
@pytest.fixture(scope='module')
def pair_128s():
    """A randomised linear-form LeViT-128S classifier and the same weights in the conv form."""
    linear = randomize_(build_classifier('128s'), seed=7, classifier_std=0.3).eval()
    conv = build_classifier('128s', form='conv').eval()
    conv.load_state_dict(linear.state_dict(), strict=True)
    return linear, conv


def test_forms_hold_one_set_of_weights(pair_128s, tmp_path):
    linear, conv = pair_128s
    lin_sd, conv_sd = linear.state_dict(), conv.state_dict()
    assert list(lin_sd) == list(conv_sd)
    pointwise = [k for k in lin_sd if lin_sd[k].shape != conv_sd[k].shape]
    assert pointwise and all(conv_sd[k].shape == lin_sd[k].shape + (1, 1) for k in pointwise)
    assert all(torch.equal(lin_sd[k], conv_sd[k].reshape(lin_sd[k].shape)) for k in lin_sd)
    x = images(2, 3, 224, 224, seed=3)
    torch.testing.assert_close(logits(conv, x), logits(linear, x), atol=PARITY_TOL, rtol=0)
    # conv-form files back into the linear form, through mmengine's loader and the tools'
    path = tmp_path / 'conv.pth'
    torch.save({'state_dict': conv_sd, 'meta': {}}, path)
    again = build_classifier('128s').eval()
    load_checkpoint(again, str(path), strict=True, logger='silent')
    load_checkpoint_strict(build_classifier('128s'), str(path))
    assert all(torch.equal(again.state_dict()[k], v) for k, v in lin_sd.items())
    # the backbone alone, Pretrained with a prefix (dense configs), in the conv form
    backbone = levit_mm.LeViT('128s', form='conv', out_indices=(0, 1, 2), init_cfg=dict(
        type='Pretrained', checkpoint=str(path), prefix='backbone.'))
    backbone.init_weights()
    with torch.no_grad():
        torch.testing.assert_close(backbone.eval()(x)[-1], linear.backbone(x)[-1],
                                   atol=1e-5, rtol=0)


def test_to_form_switches_in_place(pair_128s):
    linear, _ = pair_128s
    model = copy.deepcopy(linear)
    x = images(1, 3, 160, 224, seed=4)
    expected = logits(linear, x)
    model.backbone.to_form('conv')
    assert model.backbone.form == 'conv'
    assert isinstance(model.backbone.stages[0][0].block.qkv, PointwiseConvBN)
    torch.testing.assert_close(logits(model, x), expected, atol=1e-5, rtol=0)
    switch_to_deploy(model)
    model.backbone.to_form('linear')
    assert model.backbone.deploy and type(model.backbone.stages[0][0].block.qkv) is \
        torch.nn.Linear
    torch.testing.assert_close(logits(model, x), expected, atol=DEPLOY_TOL, rtol=0)


# ------------------------------------------------------------------------------ any size
def halve(n, times):
    for _ in range(times):
        n = (n + 1) // 2
    return n


@pytest.mark.parametrize('size', [(224, 320), (333, 500), (100, 37), pytest.param(
    (800, 1333), marks=pytest.mark.slow)])
def test_conv_form_any_size_matches_linear(pair_128s, size):
    linear, conv = pair_128s
    kwargs = dict(out_indices=('stem', 0, 1, 2))
    lin = levit_mm.LeViT('128s', **kwargs).eval()
    lin.load_state_dict(linear.backbone.state_dict())
    cnv = levit_mm.LeViT('128s', form='conv', **kwargs).eval()
    cnv.load_state_dict(conv.backbone.state_dict())
    x = images(1, 3, *size, seed=5)
    with torch.no_grad():
        outs, ref = cnv(x), lin(x)
    expected = [(1, 64, halve(size[0], 3), halve(size[1], 3))] + [
        (1, c, halve(size[0], 4 + i), halve(size[1], 4 + i))
        for i, c in enumerate((128, 256, 384))]
    assert [tuple(o.shape) for o in outs] == expected
    assert all(o.is_contiguous() for o in outs[1:])  # the stages: NCHW, as the linear form
    for a, b in zip(outs, ref):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


# ------------------------------------------------------------------------------ deploy
def test_conv_deploy_and_folded_checkpoint(pair_128s):
    linear, conv = pair_128s
    x = images(1, 3, 224, 224, seed=6)
    expected = logits(conv, x)
    deployed = switch_to_deploy(copy.deepcopy(conv))
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                   for m in deployed.modules())
    assert isinstance(deployed.backbone.stages[0][0].block.qkv, torch.nn.Conv2d)
    assert (logits(deployed, x) - expected).abs().max() <= DEPLOY_TOL
    # a folded checkpoint of either form loads into a conv deploy model
    for state in (conv.state_dict(), linear.state_dict()):
        model = build_classifier('128s', form='conv', deploy=True).eval()
        model.load_state_dict(fold_state_dict(state), strict=True)
        assert (logits(model, x) - expected).abs().max() <= DEPLOY_TOL


def test_conv_form_onnx_dynamic_size(pair_128s, tmp_path):
    pytest.importorskip('onnxruntime')
    import onnx
    from levit_mm.deploy.onnx import export_onnx, ort_runner, ort_session
    _, conv = pair_128s
    model = LogitsWrapper(switch_to_deploy(copy.deepcopy(conv))).eval()
    path = export_onnx(model, str(tmp_path / 'levit_c.onnx'), dynamic_hw=True)
    ops = {n.op_type for n in onnx.load(path).graph.node}
    assert 'Conv' in ops and 'Gemm' in ops  # 1x1 convolutions; the head stays a Linear
    run = ort_runner(ort_session(path))
    for shape in [(1, 3, 224, 224), (3, 3, 224, 224), (2, 3, 168, 112)]:
        x = images(*shape, seed=7)
        with torch.no_grad():
            expected = model(x)
        diff = (run(x) - expected).abs().max().item()
        DIFFS[('128s', f'onnx conv {shape[0]}x{shape[2]}x{shape[3]}')] = diff
        assert diff <= DEPLOY_TOL


def test_fastest_form_is_the_measured_one(pair_128s):
    linear, _ = pair_128s
    model = switch_to_deploy(copy.deepcopy(linear))
    x = images(1, 3, 112, 112, seed=8)
    expected = logits(model, x)
    timings = time_forms(model, x, iters=1, warmup=0)
    assert set(timings) == {'linear', 'conv'} and all(t > 0 for t in timings.values())
    assert model.backbone.form == 'linear'  # left as it was
    form, measured = use_fastest_form(model, x, iters=2)
    assert form == min(measured, key=measured.get) == model.backbone.form
    assert (logits(model, x) - expected).abs().max() <= DEPLOY_TOL
    again, remembered = use_fastest_form(model, x)  # measured once per process and key
    assert (again, remembered) == (form, measured)


@pytest.mark.slow
def test_compiled_conv_form_matches_eager(pair_128s):
    """``compile_for_inference`` (Inductor, frozen weights, one graph) takes the conv form."""
    from levit_mm.deploy import compile_for_inference
    _, conv = pair_128s
    eager = LogitsWrapper(switch_to_deploy(copy.deepcopy(conv))).eval()
    compiled = compile_for_inference(copy.deepcopy(eager))
    x = images(2, 3, 224, 224, seed=9)
    with torch.inference_mode():
        assert (compiled(x) - eager(x)).abs().max().item() <= DEPLOY_TOL


# ------------------------------------------------------------------------------ bad input
def test_conv_checkpoint_of_another_arch_is_refused_by_name(tmp_path):
    timm_conv = random_timm('levit_conv_128s', seed=9)
    with pytest.raises(CheckpointFormatError) as err:
        build_classifier('256', form='conv').load_state_dict(timm_conv.state_dict())
    message = str(err.value)
    assert message.startswith('Variant mismatch: expected LeViT-256 (timm levit_* layout, '
                              'training, conv form), but the checkpoint is LeViT-128S in '
                              'the timm levit_* layout (LeViT-C: 1x1 convolutions;'), message
    # levit_mm's own conv-form checkpoint, through the tools' strict loader and mmengine's
    own = build_classifier('128s', form='conv').state_dict()
    path = tmp_path / 'levit-c-128s.pth'
    torch.save({'state_dict': own}, path)
    with pytest.raises(CheckpointMismatchError, match='It holds a LeViT-128S backbone: use '
                       'configs/levit/levit-128s_8xb256_in1k.py'):
        load_checkpoint_strict(build_classifier('192', form='conv'), str(path))
    with pytest.raises(CheckpointFormatError, match=r'expected LeViT-192 \(mmpretrain 1.2.0 '
                       r'/ levit_mm layout, training, conv form\), but the checkpoint is '
                       r'LeViT-128S .*\(LeViT-C: 1x1 convolutions'):
        build_classifier('192', form='conv').load_state_dict(own)


@pytest.mark.parametrize('kwargs, message', [
    (dict(arch='128c'), "Unknown LeViT arch '128c'; choose one of ['128s', '128', '192', "
                        "'256', '384', '384_s8', '512_s8', '512', '256d', '512d']"),
    (dict(arch='128s', form='convolution'), "LeViT form must be one of ['linear', 'conv'] "
                                            "(linear layers on (B, H, W, C) tokens, or "
                                            "LeViT-C's 1x1 convolutions on (B, C, H, W) "
                                            "maps); got 'convolution'."),
])
def test_bad_arch_or_form_is_named(kwargs, message):
    with pytest.raises(ValueError) as err:
        levit_mm.LeViT(**kwargs)
    assert str(err.value).startswith(message), str(err.value)


@pytest.fixture(scope='module', autouse=True)
def report_diffs():
    """The parity table when the module is done (visible with -s)."""
    yield
    sources = sorted({s for _, s in DIFFS})
    for source in sources:
        row = ', '.join(f'{a.upper()} {DIFFS[(a, s)]:.1e}' for a in ARCHS for s in [source]
                        if (a, s) in DIFFS)
        print(f'\n{source}: {row}', end='')
    print()
