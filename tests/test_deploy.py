"""Deploy form (folded BN, merged heads, explicit attention) equals the training form in eval,
by both routes (in-place ``switch_to_deploy`` and the state-dict fold behind the converter),
and its exports (ONNX) and reduced-precision paths (bf16, int8) stay within stated bounds."""
import copy
import glob
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from conftest import ARCHS, EMBED_OUT, randomize_, run_py
from mmengine.runner import load_checkpoint
from mmpretrain.registry import MODELS

import levit_mm
from levit_mm.backbones.layers import biased_attention
from levit_mm.deploy import DeployConversionError, fold_state_dict, switch_to_deploy
from levit_mm.heads import LeViTClsHead
from levit_mm.deploy.precision import bf16_autocast, quantize_int8
from levit_tools.sample_images import agreement, sample_photo_crops

DEPLOY_ATOL = 1e-4
#: bounds for reduced precision, relative to the fp32 logits' max magnitude.
BF16_REL, INT8_REL = 0.05, 0.05


def classifier_cfg(arch, deploy=False):
    return dict(type='LeViTClassifier',
                backbone=dict(type='LeViT', arch=arch, out_indices=(2, ), deploy=deploy),
                neck=dict(type='GlobalAveragePooling'),
                head=dict(type='LeViTClsHead', num_classes=1000, in_channels=EMBED_OUT[arch],
                          deploy=deploy))


def logits(model, x):
    with torch.no_grad():
        return model(x, mode='tensor')


def images(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope='module')
def trained_models():
    """Training-form classifiers (eval) with random weights and BN statistics, per arch."""
    return {arch: randomize_(MODELS.build(classifier_cfg(arch)), seed=3).eval()
            for arch in ARCHS}


@pytest.mark.parametrize('arch', ARCHS)
@pytest.mark.parametrize('size', [(224, 224), (256, 320)])
def test_switch_to_deploy_matches_training_form(trained_models, arch, size):
    model = trained_models[arch]
    deployed = switch_to_deploy(copy.deepcopy(model))
    assert deployed.backbone.deploy and deployed.head.deploy
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                   for m in deployed.modules())
    assert not hasattr(deployed.head, 'head_dist')
    x = images(2, 3, *size)
    expected, got = logits(model, x), logits(deployed, x)
    diff = (got - expected).abs().max().item()
    print(f'levit-{arch} {size}: deploy max |diff| {diff:.2e}, '
          f'logit scale {expected.abs().max():.2f}')
    assert expected.std() > 0.1, 'logits too small for the tolerance to mean anything'
    assert diff <= DEPLOY_ATOL


@pytest.mark.parametrize('arch', ARCHS)
def test_folded_state_dict_loads_into_deploy_config(trained_models, arch):
    model = trained_models[arch]
    folded = fold_state_dict(model.state_dict())
    deploy_model = MODELS.build(classifier_cfg(arch, deploy=True)).eval()
    result = deploy_model.load_state_dict(folded, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    x = images(2, 3, 224, 224, seed=1)
    switched = switch_to_deploy(copy.deepcopy(model))
    diff = (logits(deploy_model, x) - logits(model, x)).abs().max().item()
    assert diff <= DEPLOY_ATOL
    # Both routes produce the same parameters.
    for key, value in switched.state_dict().items():
        assert torch.allclose(folded[key], value, atol=1e-6), key


def test_training_form_checkpoints_fold_as_they_load_into_deploy_model(trained_models,
                                                                        tmp_path):
    """A deploy config takes a training-form checkpoint directly: levit_mm's own layout and
    timm's (converted, then folded on load) both give the training-form logits."""
    timm = pytest.importorskip('timm')
    x = images(2, 3, 224, 224, seed=7)
    timm_model = randomize_(timm.create_model('levit_128s', pretrained=False), seed=4).eval()
    ours = trained_models['128s']
    with torch.no_grad():
        timm_logits = timm_model(x)
    cases = [('levit_mm', ours.state_dict(), logits(ours, x)),
             ('timm', timm_model.state_dict(), timm_logits)]
    for name, state, expected in cases:
        path = tmp_path / f'{name}.pth'
        torch.save({'state_dict': state}, path)
        deploy_model = MODELS.build(classifier_cfg('128s', deploy=True)).eval()
        load_checkpoint(deploy_model, str(path), map_location='cpu', strict=True,
                        logger='silent')
        diff = (logits(deploy_model, x) - expected).abs().max().item()
        assert diff <= DEPLOY_ATOL, (name, diff)
    # The backbone alone, through a Pretrained init_cfg with a prefix (dense configs).
    from levit_mm.backbones import LeViT
    backbone = LeViT('128s', out_indices=(2, ), deploy=True, init_cfg=dict(
        type='Pretrained', checkpoint=str(tmp_path / 'levit_mm.pth'), prefix='backbone.'))
    backbone.init_weights()
    with torch.no_grad():
        expected = ours.backbone(x)[-1]
        diff = (backbone.eval()(x)[-1] - expected).abs().max().item()
    assert diff <= DEPLOY_ATOL, diff


def test_fold_state_dict_rejects_folded_input(trained_models):
    folded = fold_state_dict(trained_models['128s'].state_dict())
    with pytest.raises(DeployConversionError, match='already in the deploy layout'):
        fold_state_dict(folded)


@pytest.mark.parametrize('distillation', [True, False])
def test_head_merge(distillation):
    head = randomize_(LeViTClsHead(num_classes=10, in_channels=32,
                                   distillation=distillation), seed=5).eval()
    feats = (images(4, 32, 3, 3),)
    with torch.no_grad():
        pooled = feats[0].mean(dim=(2, 3))
        expected = head.head(pooled)
        if distillation:
            expected = (expected + head.head_dist(pooled)) / 2
        deployed = copy.deepcopy(head)
        deployed.switch_to_deploy()
        got = deployed(feats)
    assert isinstance(deployed.head, torch.nn.Linear)
    assert (got - expected).abs().max().item() <= 1e-5
    with pytest.raises(RuntimeError, match='cannot be trained'):
        deployed.loss(feats, [])


def test_explicit_attention_equals_sdpa():
    """The shared forward writes attention out (faster on CPU); it must equal PyTorch's."""
    q, k = images(2, 3, 10, 16, seed=1), images(2, 3, 12, 16, seed=2)
    v, bias = images(2, 3, 12, 64, seed=3), images(3, 10, 12, seed=4)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=0.25)
    assert (biased_attention(q, k, v, bias, 0.25) - expected).abs().max() <= 1e-6


def test_converter_tool_and_deploy_config(trained_models, tmp_path, repo):
    model = trained_models['128s']
    src, dst = tmp_path / 'train.pth', tmp_path / 'deploy.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, src)
    result = run_py(['tools/model_converters/levit_reparameterize.py', str(src), str(dst)])
    assert result.returncode == 0, result.stderr
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(repo, 'configs/levit/deploy/levit-128s_8xb256_in1k.py'))
    deploy_model = MODELS.build(cfg.model).eval()
    load_checkpoint(deploy_model, str(dst), map_location='cpu', strict=True,
                    logger='silent')
    x = images(2, 3, 224, 224, seed=2)
    assert (logits(deploy_model, x) - logits(model, x)).abs().max() <= DEPLOY_ATOL
    # A folded checkpoint is refused with a one-line error, and nothing is written.
    again = tmp_path / 'again.pth'
    result = run_py(['tools/model_converters/levit_reparameterize.py', str(dst), str(again)])
    assert result.returncode == 2 and 'already in the deploy layout' in result.stderr
    assert not again.exists() and not glob.glob(str(tmp_path / '*.tmp'))


def test_onnx_export_dynamic_batch_and_size(trained_models, tmp_path):
    pytest.importorskip('onnxruntime')
    result = run_py(['tools/deployment/pytorch2onnx.py',
                     'configs/levit/levit-128s_8xb256_in1k.py',
                     '--checkpoint', str(_save(trained_models['128s'], tmp_path)),
                     '--output-file', str(tmp_path / 'm.onnx'), '--time-iters', '1'])
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'OK' in result.stdout and (tmp_path / 'm.onnx').exists()
    # The tool checked these three inputs against PyTorch within 1e-4.
    for shape in ['(1, 3, 224, 224)', '(3, 3, 224, 224)', '(2, 3, 168, 112)']:
        assert f'input {shape}' in result.stdout


@pytest.mark.slow
def test_onnx_static_export_above_trained_size(trained_models, tmp_path):
    pytest.importorskip('onnxruntime')
    ckpt = str(_save(trained_models['128s'], tmp_path))
    args = ['tools/deployment/pytorch2onnx.py', 'configs/levit/levit-128s_8xb256_in1k.py',
            '--checkpoint', ckpt, '--output-file', str(tmp_path / 'big.onnx'),
            '--shape', '256', '320', '--time-iters', '0']
    result = run_py(args)
    assert result.returncode == 2 and 'trained size' in result.stderr
    result = run_py(args + ['--static-hw'])
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'input (3, 3, 256, 320)' in result.stdout


def _save(model, tmp_path):
    path = tmp_path / 'train.pth'
    if not path.exists():
        torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return path


@pytest.fixture(scope='module')
def deployed_128s(trained_models):
    return switch_to_deploy(copy.deepcopy(trained_models['128s']))


def test_bf16_and_int8_paths_agree_with_fp32(deployed_128s):
    x = sample_photo_crops()
    assert len(x) >= 6
    reference = logits(deployed_128s, x)
    with bf16_autocast():
        bf16 = logits(deployed_128s, x)
    int8 = logits(quantize_int8(deployed_128s), x)
    for name, out, bound in [('bf16', bf16, BF16_REL), ('int8', int8, INT8_REL)]:
        top1, diff, rel = agreement(reference, out)
        print(f'{name}: top-1 agreement {top1:.2f}, max |diff| {diff:.2e} '
              f'({rel:.3f} of max |logit|) '
              f'on {len(x)} real crops')
        assert rel <= bound


def test_static_onnx_export_holds_constant_biases(deployed_128s, tmp_path):
    """A fixed-shape export stores each finished bias; a dynamic one builds it from the
    input size.  Both match PyTorch, and neither leaves anything traced in the model."""
    pytest.importorskip('onnxruntime')
    import onnx
    from levit_mm.deploy import LogitsWrapper
    from levit_mm.deploy.onnx import export_onnx, ort_runner, ort_session
    model = LogitsWrapper(deployed_128s).eval()
    x = images(2, 3, 224, 224, seed=5)
    with torch.no_grad():
        expected = model(x)
    ops = {}
    for dynamic in (False, True):
        path = export_onnx(model, str(tmp_path / f'{dynamic}.onnx'), dynamic_hw=dynamic)
        ops[dynamic] = {n.op_type for n in onnx.load(path).graph.node}
        got = ort_runner(ort_session(path))(x)
        assert (got - expected).abs().max().item() <= DEPLOY_ATOL
    assert not ops[False] & {'Range', 'Abs'}, ops[False]
    assert {'Range', 'Abs'} <= ops[True]
    with torch.no_grad():  # the traces left nothing behind in the eager model
        assert torch.equal(model(x), expected)


@pytest.mark.slow
def test_compiled_inference_matches_eager(deployed_128s):
    """``compile_for_inference`` (Inductor, frozen weights) gives the eager logits."""
    from levit_mm.deploy import compile_for_inference
    from levit_mm.deploy import LogitsWrapper
    eager = LogitsWrapper(copy.deepcopy(deployed_128s)).eval()
    compiled = compile_for_inference(eager)
    x = images(2, 3, 224, 224, seed=6)
    with torch.inference_mode():
        expected, got = eager(x), compiled(x)
    assert (got - expected).abs().max().item() <= DEPLOY_ATOL


@pytest.mark.slow  # compiles
def test_compiled_inference_holds_weights_and_biases_as_constants():
    """The compiled graph reads frozen weights, each attention bias folded into one
    constant (no gather left in it), and gives the eager output."""
    from torch._inductor.utils import run_and_get_code

    from levit_mm.deploy import compile_for_inference
    torch._dynamo.reset()
    tiny = dict(embed_dims=[32, 48], num_heads=[2, 3], depths=[1, 1], key_dims=[8, 8])
    model = randomize_(levit_mm.LeViT(tiny, img_size=64, out_indices=(1, )), seed=1)
    model.eval().switch_to_deploy()
    x = images(2, 3, 64, 64, seed=2)
    with torch.inference_mode():
        expected = model(x)[0]
        (got, ), code = run_and_get_code(compile_for_inference(model), x)
    code = '\n'.join(code)
    assert '_frozen_param' in code
    kernels = [line.split('=')[0] for line in code.splitlines() if 'async_compile.' in line]
    assert kernels and not [k for k in kernels if 'index' in k]  # no bias gather left
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
