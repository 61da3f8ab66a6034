"""Checkpoint conversion: official, timm, Hugging Face and mmpretrain layouts give the logits
of the implementation they came from (random weights with non-trivial BN statistics)."""
import copy
import importlib.util
import json
import os
import os.path as osp
import pickle

import pytest
import timm
import torch
from conftest import ARCHS, REPO, randomize_, run_py
from mmengine.runner import load_checkpoint
from mmpretrain.models.backbones.levit import LeViT as MMPretrainLeViT
from mmpretrain.models.heads.levit_head import LeViTClsHead as MMPretrainLeViTHead
from mmpretrain.registry import MODELS
from safetensors.torch import save_file
from timm.models.levit import checkpoint_filter_fn
from transformers import (LevitConfig, LevitForImageClassification,
                          LevitForImageClassificationWithTeacher)

from levit_mm.arch import resolve_arch
from levit_mm.backbones.layers import fuse_modules
from levit_mm.convert import (FORMATS, CheckpointFormatError, convert_state_dict,
                              expected_tensors, load_checkpoint_file)
from levit_tools import parity

OFFICIAL_LAYOUT = osp.join(osp.dirname(__file__), 'data', 'official_levit_layout.json')
TOOL = osp.join(REPO, 'tools', 'model_converters', 'levit2mmpretrain.py')
#: max |logit diff| per (variant, format), printed at the end of the module (-s)
MAX_DIFFS = {}


# ----------------------------------------------------------------------------- helpers
def build_levit_mm(arch, deploy=False, distillation=True, num_classes=1000, **kwargs):
    spec = resolve_arch(arch)
    return MODELS.build(dict(
        type='LeViTClassifier',
        backbone=dict(type='LeViT', arch=arch, deploy=deploy),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LeViTClsHead', in_channels=spec['embed_dims'][-1],
                  num_classes=num_classes, distillation=distillation, deploy=deploy),
        **kwargs)).eval()


def hf_config(arch):
    spec = resolve_arch(arch)
    return LevitConfig(hidden_sizes=spec['embed_dims'], num_attention_heads=spec['num_heads'],
                       depths=spec['depths'], key_dim=spec['key_dims'], num_labels=1000)


#: (arch, deploy) -> [(backbone state dict, pooled features)]: conversions that load the very
#: same backbone tensors share one backbone forward (the expensive part on 2 CPU cores)
_FEATURES = {}


@torch.no_grad()
def levit_mm_logits(state_dict, arch, x, deploy=False, **kwargs):
    """Convert, load strictly into a fresh levit_mm classifier, return its logits."""
    converted, info = convert_state_dict(state_dict)
    assert info.arch == arch
    model = build_levit_mm(arch, deploy=deploy, **kwargs)
    model.load_state_dict(converted, strict=True)
    backbone = model.backbone.state_dict()
    for seen, feats in _FEATURES.setdefault((arch, deploy), []):
        if seen.keys() == backbone.keys() and all(
                torch.equal(seen[k], v) for k, v in backbone.items()):
            break
    else:
        feats = model.neck(model.backbone(x))
        _FEATURES[(arch, deploy)].append((backbone, feats))
    return model.head(feats), info


def bound(fmt):
    """The bound (``levit_tools.parity``) a format's figure is held to."""
    if 'fused' in fmt or 'deploy' in fmt:
        return parity.FUSED
    return {'official': parity.OFFICIAL, 'hf': parity.HF, 'mmpretrain': parity.MMPRETRAIN,
            'timm conv mode': parity.TIMM_CONV}.get(fmt.replace(' single head', ''),
                                                     parity.TIMM)


def check(arch, fmt, out, ref):
    assert out.shape == ref.shape == (1, 1000)
    assert ref.std() > 0.1, 'reference logits too flat for a meaningful comparison'
    diff = (out - ref).abs().max().item()
    MAX_DIFFS[(arch, fmt)] = diff
    tol = bound(fmt)
    assert diff <= tol, f'{fmt} LeViT-{arch}: max |logit diff| {diff:.2e} > {tol}'


def official_layout(arch, fused=False):
    with open(OFFICIAL_LAYOUT) as f:
        return json.load(f)[arch]['fused' if fused else 'plain']


def official_from_timm(timm_model, arch, fused=False):
    """An official-layout state dict holding ``timm_model``'s weights.

    Key names, order and shapes are the official code's own (``official_levit_layout.json``,
    dumped from facebookresearch/LeViT); tensors are paired with timm's by position, the rule
    timm itself used to import the official files, with every pair's shape checked.
    """
    timm_sd = timm_model.state_dict()
    idx_buffers = [b for n, b in timm_model.named_buffers() if n.endswith('attention_bias_idxs')]
    names = official_layout(arch, fused)
    values, buffers = iter(timm_sd.values()), iter(idx_buffers)
    official = {}
    for key, shape in names:
        value = next(buffers) if key.endswith('attention_bias_idxs') else next(values)
        assert list(value.shape) == shape, f'{key}: official {shape} vs timm {list(value.shape)}'
        official[key] = value.clone()
    assert next(values, None) is None and next(buffers, None) is None
    return official


def timm_from_official(official, timm_model):
    """The official file as timm reads it: its ``checkpoint_filter_fn`` (unwraps ``model``,
    drops the index buffers) and, as timm 1.0.31 ships that step disabled, its former
    position-wise key mapping."""
    filtered = checkpoint_filter_fn({'model': official}, timm_model)
    target = timm_model.state_dict()
    if set(filtered) == set(target):
        return filtered
    assert len(filtered) == len(target)
    mapped = {}
    for (key, ref), value in zip(target.items(), filtered.values()):
        assert value.shape == ref.shape, key
        mapped[key] = value
    return mapped


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope='module')
def x():
    return torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope='module', params=ARCHS)
def timm_case(request, x):
    """A random distilled timm model, its logits, the single-head state dict and logits
    (timm's ``Levit``: the class head alone on the same pooled features), and the model
    with every Conv/Linear+BN folded by timm's own ``fuse()``."""
    _FEATURES.clear()
    arch = request.param
    model = randomize_(timm.create_model(f'levit_{arch}', pretrained=False), seed=1).eval()
    torch.nn.init.normal_(model.head.linear.weight, std=0.3)
    torch.nn.init.normal_(model.head_dist.linear.weight, std=0.3)
    single_sd = {k: v for k, v in model.state_dict().items() if not k.startswith('head_dist.')}
    with torch.no_grad():
        pooled = model.forward_head(model.forward_features(x), pre_logits=True)
        logits = (model.head(pooled) + model.head_dist(pooled)) / 2
        assert torch.equal(logits, model.forward_head(model.forward_features(x)))
        single_logits = model.head(pooled)
    fused = fuse_modules(copy.deepcopy(model)).eval()
    return arch, model, logits, single_sd, single_logits, fused


# ----------------------------------------------------------------------------- layouts
@pytest.mark.parametrize('arch', ARCHS)
def test_expected_layout_is_each_implementations_own(arch):
    """The converter's key/shape tables equal what each implementation saves."""
    spec = resolve_arch(arch)

    def table(fmt, fused=False, distilled=True, num_classes=1000):
        return [(k, list(s)) for k, (_, _, s) in expected_tensors(
            FORMATS[fmt], spec, fused, num_classes, distilled).items()]

    def saved(state_dict):
        return [(k, list(v.shape)) for k, v in state_dict.items()
                if not k.endswith(('num_batches_tracked', 'attention_bias_idxs'))]

    with torch.device('meta'):  # shapes only
        levit_mm = build_levit_mm(arch).state_dict()
        deploy = build_levit_mm(arch, deploy=True).state_dict()
        timm_sd = timm.create_model(f'levit_{arch}').state_dict()
        hf = LevitForImageClassificationWithTeacher(hf_config(arch)).state_dict()
    assert table('mmpretrain') == saved(levit_mm)
    assert table('mmpretrain', fused=True, distilled=False) == saved(deploy)
    assert table('timm') == saved(timm_sd)
    assert table('hf') == saved(hf)
    for fused in (False, True):
        official = [(k, s) for k, s in official_layout(arch, fused)
                    if not k.endswith(('num_batches_tracked', 'attention_bias_idxs'))]
        assert table('official', fused=fused) == official


# ----------------------------------------------------------------------------- parity
def test_timm_parity(timm_case, x):
    arch, model, logits, single_sd, single_logits, _ = timm_case
    out, info = levit_mm_logits(model.state_dict(), arch, x)
    assert (info.format, info.distilled, info.fused) == ('timm', True, False)
    check(arch, 'timm', out, logits)
    out, info = levit_mm_logits(single_sd, arch, x, distillation=False)
    assert not info.distilled
    check(arch, 'timm single head', out, single_logits)


def test_timm_conv_mode_parity(x):
    """timm's ``levit_conv_*`` (Linear layers as 1x1 convolutions, same published weights)."""
    model = randomize_(timm.create_model('levit_conv_128s'), seed=8).eval()
    torch.nn.init.normal_(model.head.linear.weight, std=0.3)
    torch.nn.init.normal_(model.head_dist.linear.weight, std=0.3)
    with torch.no_grad():
        ref = model(x)
    out, info = levit_mm_logits(model.state_dict(), '128s', x)
    assert info.format == 'timm'
    check('128s', 'timm conv mode', out, ref)


def test_timm_fused_parity(timm_case, x):
    """timm's own ``fuse()`` of every Conv/Linear+BN pair -> levit_mm's deploy form."""
    arch, _, logits, _, _, fused = timm_case
    out, info = levit_mm_logits(fused.state_dict(), arch, x, deploy=True)
    assert info.fused and info.distilled
    check(arch, 'timm fused', out, logits)


def test_official_parity(timm_case, x):
    """Official layout (names from the official code), checked through timm's reading of it;
    training and fused (``utils.replace_batchnorm``) forms, two heads and one."""
    arch, model, logits, _, single_logits, fused_model = timm_case
    official = official_from_timm(model, arch)
    as_timm = timm_from_official(official, model)
    for key, value in model.state_dict().items():
        assert torch.equal(as_timm[key], value), key
    out, info = levit_mm_logits({'model': official}, arch, x)
    assert info.format == 'official'
    check(arch, 'official', out, logits)

    single = {k: v for k, v in official.items() if not k.startswith('head_dist.')}
    out, _ = levit_mm_logits({'model': single}, arch, x, distillation=False)
    check(arch, 'official single head', out, single_logits)

    fused = official_from_timm(fused_model, arch, fused=True)
    out, info = levit_mm_logits({'model': fused}, arch, x, deploy=True)
    assert (info.format, info.fused) == ('official', True)
    check(arch, 'official fused', out, logits)


@pytest.mark.parametrize('arch', ARCHS)
def test_hf_parity(arch, x):
    teacher = randomize_(LevitForImageClassificationWithTeacher(hf_config(arch)), seed=2).eval()
    for head in (teacher.classifier, teacher.classifier_distill):
        torch.nn.init.normal_(head.linear.weight, std=0.3)
    with torch.no_grad():
        output = teacher(x, output_hidden_states=True)
        ref = output.logits
        # what LevitForImageClassification computes: its classifier on the mean token
        single_ref = teacher.classifier(output.hidden_states[-1].mean(1))
    out, info = levit_mm_logits(teacher.state_dict(), arch, x)
    assert (info.format, info.distilled) == ('hf', True)
    check(arch, 'hf', out, ref)

    single = {k: v for k, v in teacher.state_dict().items()
              if not k.startswith('classifier_distill.')}
    with torch.device('meta'):
        assert single.keys() == LevitForImageClassification(hf_config(arch)).state_dict().keys()
    out, info = levit_mm_logits(single, arch, x, distillation=False)
    assert not info.distilled
    check(arch, 'hf single head', out, single_ref)


@pytest.mark.parametrize('arch', [  # beyond the timm/HF matrix: the middle three slow
    a if a in ('128s', '384') else pytest.param(a, marks=pytest.mark.slow) for a in ARCHS])
def test_mmpretrain_parity(arch, x):
    """mmpretrain 1.2.0's own LeViT classes -> levit_mm, training and deploy forms."""
    spec = resolve_arch(arch)
    backbone = MMPretrainLeViT(arch=arch, out_indices=(2, ))
    head = MMPretrainLeViTHead(in_channels=spec['embed_dims'][-1], num_classes=1000)
    source = randomize_(torch.nn.ModuleDict(dict(backbone=backbone, head=head)), 3).eval()
    for module in (head.head, head.head_dist):
        torch.nn.init.normal_(module.linear.weight, std=0.3)

    @torch.no_grad()
    def logits():
        return head(tuple(f.mean(dim=(2, 3)) for f in backbone(x)))

    ref = logits()
    out, info = levit_mm_logits(source.state_dict(), arch, x)
    assert info.format == 'mmpretrain'
    check(arch, 'mmpretrain', out, ref)

    backbone.switch_to_deploy()
    head.switch_to_deploy()  # folds the two heads separately
    out, info = levit_mm_logits(source.state_dict(), arch, x, deploy=True)
    assert info.fused and info.head_fused and info.distilled
    check(arch, 'mmpretrain deploy', out, ref)


def test_levit_mm_round_trip_is_identity():
    model = randomize_(build_levit_mm('128s'), seed=4)
    state = model.state_dict()
    converted, info = convert_state_dict({'state_dict': state, 'meta': {}})
    assert info.format == 'mmpretrain' and list(converted) == list(state)
    assert all(torch.equal(converted[k], v) for k, v in state.items())
    deploy = randomize_(build_levit_mm('128s', deploy=True), seed=4).state_dict()
    converted, info = convert_state_dict(deploy)
    assert info.fused and not info.distilled  # merged head
    assert list(converted) == list(deploy)


# ----------------------------------------------------------------------------- loading
@pytest.fixture(scope='module')
def hf_file(tmp_path_factory, x):
    """An HF LeViT-128S state dict file and its logits."""
    model = randomize_(LevitForImageClassificationWithTeacher(hf_config('128s')), seed=5)
    model.eval()
    with torch.no_grad():
        ref = model(x).logits
    path = tmp_path_factory.mktemp('hf') / 'pytorch_model.bin'
    torch.save(model.state_dict(), path)
    save_file(model.state_dict(), path.with_name('model.safetensors'))
    return str(path), ref


def test_init_cfg_and_load_checkpoint_take_foreign_files(hf_file, x):
    path, ref = hf_file
    model = build_levit_mm('128s', init_cfg=dict(type='Pretrained', checkpoint=path))
    model.init_weights()
    with torch.no_grad():
        diff = (model.eval()(x, mode='tensor') - ref).abs().max().item()
    assert diff <= parity.HF

    model = build_levit_mm('128s')
    load_checkpoint(model, path, strict=True)
    with torch.no_grad():
        assert (model(x, mode='tensor') - ref).abs().max().item() <= parity.HF

    with pytest.raises(CheckpointFormatError, match='expected LeViT-256.*LeViT-128S'):
        load_checkpoint(build_levit_mm('256'), path)


def test_safetensors_files_convert(hf_file):
    """HF and timm hub weights ship as safetensors."""
    path, _ = hf_file
    from_pickle = convert_state_dict(load_checkpoint_file(path))[0]
    safetensors = osp.join(osp.dirname(path), 'model.safetensors')
    converted, info = convert_state_dict(load_checkpoint_file(safetensors))
    assert info.format == 'hf' and converted.keys() == from_pickle.keys()
    assert all(torch.equal(converted[k], v) for k, v in from_pickle.items())


def test_backbone_pretrained_prefix_takes_foreign_files(hf_file):
    """Dense prediction: the backbone alone, ``prefix='backbone.'``, an HF file."""
    path, _ = hf_file
    backbone = MODELS.build(dict(type='LeViT', arch='128s', out_indices=(0, 1, 2),
                                 init_cfg=dict(type='Pretrained', checkpoint=path,
                                               prefix='backbone.')))
    backbone.init_weights()
    expected = convert_state_dict(torch.load(path, weights_only=True))[0]
    loaded = backbone.state_dict()
    for key, value in expected.items():
        if key.startswith('backbone.'):
            assert torch.equal(loaded[key[len('backbone.'):]], value), key


# ----------------------------------------------------------------------------- the tool
def load_tool():
    spec = importlib.util.spec_from_file_location('levit2mmpretrain', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_tool_inprocess(capsys, *argv):
    """The CLI's ``run_cli`` entry point in-process (fast); returns (exit code, stderr)."""
    from levit_tools.cli import run_cli
    tool = load_tool()
    with pytest.raises(SystemExit) as exc:
        run_cli(tool.main, list(argv))
    return exc.value.code, capsys.readouterr().err


def test_cli_converts_and_detects(tmp_path, x):
    model = randomize_(timm.create_model('levit_128s'), seed=6).eval()
    with torch.no_grad():
        logits = model(x)
    src, dst = tmp_path / 'timm.pth', tmp_path / 'out' / 'levit.pth'
    torch.save(model.state_dict(), src)
    result = run_py([TOOL, str(src), str(dst), '--arch', '128s'])
    assert result.returncode == 0, result.stderr
    assert 'LeViT-128S in the timm' in result.stdout
    ckpt = torch.load(dst, weights_only=True)
    assert ckpt['meta']['levit_mm_conversion']['format'] == 'timm'
    levit = build_levit_mm('128s')
    levit.load_state_dict(ckpt['state_dict'], strict=True)
    with torch.no_grad():
        assert (levit(x, mode='tensor') - logits).abs().max().item() <= parity.TIMM
    assert os.listdir(dst.parent) == ['levit.pth']  # no temporary file left


class _RunsCode:
    def __reduce__(self):
        return (os.system, ('echo owned',))


def _bad_inputs(tmp_path):
    """name -> (file, extra args, expected message pattern)."""
    good = tmp_path / 'levit128s.pth'
    torch.save(randomize_(timm.create_model('levit_128s')).state_dict(), good)
    text = tmp_path / 'notes.pth'
    text.write_text('these are not weights\n')
    other = tmp_path / 'resnet.pth'
    torch.save(timm.create_model('resnet18').state_dict(), other)
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(good.read_bytes()[:good.stat().st_size // 2])
    evil = tmp_path / 'evil.pth'
    torch.save({'model': {'x': torch.zeros(1)}, 'payload': _RunsCode()}, evil)
    legacy_evil = tmp_path / 'evil_legacy.pth'
    legacy_evil.write_bytes(pickle.dumps({'payload': _RunsCode()}, protocol=2))
    return {
        'not a checkpoint': (text, [], r'is not a PyTorch checkpoint: expected a torch.save '
                             r'zip archive or a pickle'),
        'other model': (other, [], r'Not a LeViT checkpoint in a known layout: expected a '
                        r'stem key such as .*found keys \[\'conv1.weight\''),
        'truncated': (truncated, [], r'is truncated or corrupt'),
        'variant mismatch': (good, ['--arch', '256'], r'Variant mismatch: expected LeViT-256 '
                             r'.*but the checkpoint is LeViT-128S in the timm'),
        'pickle with code': (evil, [], r'Refused to load .*references the Python object '
                             r'(posix|nt|os)\.system, which could run code'),
        'legacy pickle with code': (legacy_evil, [], r'Refused to load .*could run code'),
        'missing file': (tmp_path / 'absent.pth', [], r'Checkpoint file not found'),
    }


def test_official_training_checkpoint_with_args_loads(tmp_path):
    """The official training script saves ``args`` (a Namespace) beside the weights."""
    import argparse
    path = tmp_path / 'checkpoint.pth'
    torch.save({'model': {'w': torch.ones(2)}, 'epoch': 3,
                'args': argparse.Namespace(model='LeViT_128S', lr=1e-3)}, path)
    loaded = load_checkpoint_file(str(path))
    assert loaded['args'].model == 'LeViT_128S' and torch.equal(loaded['model']['w'],
                                                                torch.ones(2))


def test_backbone_only_files_convert(hf_file):
    """HF ``LevitModel`` and an mmpretrain backbone state dict carry no head or prefix."""
    path, _ = hf_file
    full = convert_state_dict(load_checkpoint_file(path))[0]
    backbone = {k: v for k, v in full.items() if k.startswith('backbone.')}
    hf_levit_model = {k[len('levit.'):]: v for k, v in load_checkpoint_file(path).items()
                      if k.startswith('levit.')}
    mm_backbone = {k[len('backbone.'):]: v for k, v in backbone.items()}
    for source in (hf_levit_model, mm_backbone):
        converted, info = convert_state_dict(source)
        assert info.num_classes is None and info.arch == '128s'
        assert converted.keys() == backbone.keys()
        assert all(torch.equal(converted[k], v) for k, v in backbone.items())


def test_cli_bad_inputs_fail_clearly_and_write_nothing(tmp_path, capsys):
    import re
    cases = _bad_inputs(tmp_path)
    out_dir = tmp_path / 'out'
    for name, (src, extra, pattern) in cases.items():
        dst = out_dir / f'{name}.pth'
        code, err = run_tool_inprocess(capsys, str(src), str(dst), *extra)
        assert code == 2, name
        assert err.startswith('error: ') and re.search(pattern, err), (name, err)
        assert not dst.exists(), name
    assert not out_dir.exists() or os.listdir(out_dir) == []


@pytest.fixture(scope='module', autouse=True)
def report_max_diffs():
    """Prints the max |diff| table when the module is done (visible with -s)."""
    yield
    if not MAX_DIFFS:
        return
    formats = sorted({f for _, f in MAX_DIFFS}, key=lambda f: (f.split()[0], f))
    print('\n| variant | ' + ' | '.join(formats) + ' |')
    print('|---|' + '---|' * len(formats))
    for arch in ARCHS:
        row = [f'{MAX_DIFFS[(arch, f)]:.1e}' if (arch, f) in MAX_DIFFS else '-'
               for f in formats]
        print(f'| {arch.upper()} | ' + ' | '.join(row) + ' |')
