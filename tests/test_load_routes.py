"""Where LeViT weights load, and where they do not.

``import levit_mm`` leaves mmengine's checkpoint loaders as they are: a ResNet checkpoint
loads through mmengine's own code (a NaN in it is mmengine's business), while a LeViT
refuses NaN/Inf by every route.  A checkpoint whose head has another number of classes is
refused in one line by the routes that predict, and left out, in one log line, by the routes
that fine-tune.  A converted checkpoint loads without missing-key noise.
"""
import copy
import logging

import pytest
import torch
from conftest import REPO, randomize_
from mmengine.logging import MMLogger
from mmengine.runner.checkpoint import (CheckpointLoader, load_checkpoint, load_from_http,
                                        load_from_local)
from tool_loading import load_tool, run_tool_cli

from levit_mm.convert import CheckpointMismatchError
from levit_mm.finite import NonFiniteWeightsError
from levit_mm.model_zoo import WEIGHTS_URL_PREFIX
from levit_tools.models import build_classifier, classifier_cfg

CONFIG = 'configs/levit/levit-128s_8xb256_in1k.py'
RESNET = dict(type='ImageClassifier',
              backbone=dict(type='ResNet', depth=18, base_channels=8, out_indices=(3, )),
              neck=dict(type='GlobalAveragePooling'),
              head=dict(type='LinearClsHead', num_classes=4, in_channels=64))


def build(cfg):
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(copy.deepcopy(cfg))


class Records(logging.Handler):
    """The messages mmengine's current logger emits while attached."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines, self.levels = [], []

    def shown(self, line):
        """How often ``line`` was logged at INFO level or above."""
        return sum(x == line and level >= logging.INFO
                   for x, level in zip(self.lines, self.levels))

    def emit(self, record):
        self.lines.append(record.getMessage())
        self.levels.append(record.levelno)

    def __enter__(self):
        MMLogger.get_current_instance().addHandler(self)
        return self

    def __exit__(self, *exc):
        MMLogger.get_current_instance().removeHandler(self)


@pytest.fixture(scope='module')
def ten_classes(tmp_path_factory):
    """A LeViT-128S checkpoint with a 10-class head (the model zoo's has 1000)."""
    model = randomize_(build_classifier('128s', num_classes=10), seed=2)
    path = tmp_path_factory.mktemp('ten') / 'levit-128s_10cls.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return str(path), model.state_dict()


def one_line_refusal(path):
    return (f"Checkpoint '{path}' has a 10-class head but the model has 1000 classes. To "
            'predict with it, use the config it was trained with (model.head.num_classes=10); '
            "to fine-tune its backbone on 1000 classes, load it with load_from or "
            "init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.').")


# ------------------------------------------------------------------ other models: mmengine's
def test_mmengine_loaders_stay_mmengines():
    schemes = CheckpointLoader._schemes
    assert schemes[''] is load_from_local
    assert schemes['http://'] is load_from_http and schemes['https://'] is load_from_http
    ours = [p for p, f in schemes.items() if not f.__module__.startswith('mmengine.')]
    assert ours == [WEIGHTS_URL_PREFIX]  # the LeViT zoo's URLs, nothing else


def test_a_resnet_checkpoint_loads_as_mmengine_loads_it(tmp_path):
    """A NaN in a ResNet file is not levit_mm's to refuse: it loads, NaN included, by the
    function call and by a ``Pretrained`` init with a prefix."""
    state = build(RESNET).state_dict()
    state['head.fc.weight'][0, 0] = float('nan')
    path = tmp_path / 'resnet.pth'
    torch.save({'state_dict': state}, path)
    model = build(RESNET)
    load_checkpoint(model, str(path), logger='silent')
    assert torch.isnan(model.head.fc.weight[0, 0])
    backbone_cfg = dict(RESNET['backbone'], init_cfg=dict(type='Pretrained',
                                                          checkpoint=str(path),
                                                          prefix='backbone.'))
    backbone = build(backbone_cfg)
    backbone.init_weights()
    assert torch.equal(backbone.conv1.weight, state['backbone.conv1.weight'])


# ------------------------------------------------------------------ LeViT: NaN, every route
def test_levit_nan_refused_by_the_routes_not_covered_elsewhere(tmp_path):
    """``load_state_dict``, a Runner's ``load_checkpoint`` (``load_from``, ``--resume``),
    a classifier-level ``Pretrained`` init, and a LeViT backbone inside another model."""
    from mmengine.runner import Runner
    state = randomize_(build_classifier('128s'), seed=1).state_dict()
    state['backbone.patch_embed.patch_embed.0.conv.weight'][0, 0, 0, 0] = float('nan')
    path = tmp_path / 'nan.pth'
    torch.save({'state_dict': state, 'meta': {}}, path)
    named = f"Checkpoint '{path}' holds non-finite values"
    with pytest.raises(NonFiniteWeightsError, match='The state dict being loaded holds'):
        build_classifier('128s').load_state_dict(state)
    runner = Runner(model=classifier_cfg('128s'), work_dir=str(tmp_path / 'work'),
                    default_scope='mmpretrain')
    with pytest.raises(NonFiniteWeightsError, match=named):
        runner.load_checkpoint(str(path))
    pretrained = build(dict(classifier_cfg('128s'),
                            init_cfg=dict(type='Pretrained', checkpoint=str(path))))
    with pytest.raises(NonFiniteWeightsError, match=named):
        pretrained.init_weights()
    other = build(dict(RESNET, backbone=dict(type='LeViT', arch='128s', out_indices=(2, )),
                       head=dict(RESNET['head'], in_channels=384)))
    with pytest.raises(NonFiniteWeightsError, match=named + r'.* in 1 of \d+ tensors: '
                       r'backbone\.patch_embed\.patch_embed\.0\.conv\.weight'):
        load_checkpoint(other, str(path), logger='silent')


# ------------------------------------------------------------------ a head of another size
def test_get_model_and_inference_model_refuse_another_head(ten_classes):
    from mmpretrain import get_model, inference_model
    path, _ = ten_classes
    with pytest.raises(CheckpointMismatchError) as info:
        get_model('levit-128s_3rdparty_in1k', pretrained=path)
    assert str(info.value) == one_line_refusal(path)
    with pytest.raises(CheckpointMismatchError, match='has a 10-class head but the model '
                       'has 1000 classes'):
        inference_model('levit-128s_3rdparty_in1k', f'{REPO}/demo/chelsea.jpg',
                        pretrained=path)
    # with the head it was trained with, the same file loads
    model = get_model('levit-128s_3rdparty_in1k', pretrained=path, head=dict(num_classes=10))
    assert model.head.head.linear.weight.shape == (10, 384)


@pytest.mark.parametrize('tool', ['demo/image_demo.py', 'tools/test.py'])
def test_tools_refuse_another_head_in_one_line(ten_classes, capsys, tmp_path, tool):
    path, _ = ten_classes
    if tool == 'tools/test.py':
        argv = [CONFIG, path, '--work-dir', str(tmp_path / 'work')]
    else:
        argv = [f'{REPO}/demo/chelsea.jpg', CONFIG, '--checkpoint', path]
    code, _, stderr = run_tool_cli(load_tool(tool), argv, capsys)
    assert code == 2, stderr
    assert [line for line in stderr.splitlines() if line.startswith('error:')] == [
        f'error: {one_line_refusal(path)}'], stderr
    assert 'Traceback' not in stderr and 'configs/levit/' not in stderr


def _assert_backbone_is_the_files(model, state):
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(value, state['backbone.' + key]), key


def test_fine_tuning_routes_keep_the_backbone_and_say_the_head_was_left_out(ten_classes,
                                                                           tmp_path):
    """Runner ``load_from`` (the model initialised first, as ``Runner.train`` does, and the
    EMA copy made before that), a classifier-level ``Pretrained`` init, and the backbone's
    ``Pretrained`` init with a prefix (the fine-tune configs)."""
    from mmengine.model import ExponentialMovingAverage
    from mmengine.runner import Runner
    path, state = ten_classes
    runner = Runner(model=classifier_cfg('128s'), work_dir=str(tmp_path / 'work'),
                    default_scope='mmpretrain')
    ema = ExponentialMovingAverage(runner.model)  # mmengine's EMAHook, in before_run
    runner.model.init_weights()
    fresh_head = copy.deepcopy(runner.model.head.state_dict())
    line = (f"Checkpoint '{path}': its 10-class head does not fit the model's 1000 classes, "
            'so only the rest is loaded; the head keeps its initialisation (fine-tuning).')
    with Records() as log:
        load_checkpoint(ema.module, path, logger='silent')  # the EMA hook's load, first
        runner.load_checkpoint(path)
    assert log.shown(line) == 1  # the EMA copy says it at DEBUG level only
    assert not [x for x in log.lines if 'missing keys' in x or 'size mismatch' in x], log.lines
    for model in (runner.model, ema.module):
        _assert_backbone_is_the_files(model, state)
    assert all(torch.equal(v, fresh_head[k])
               for k, v in runner.model.head.state_dict().items())

    classifier = build(dict(classifier_cfg('128s'),
                            init_cfg=dict(type='Pretrained', checkpoint=path)))
    with Records() as log:
        classifier.init_weights()
    assert log.shown(line) == 1
    _assert_backbone_is_the_files(classifier, state)

    backbone = build(dict(type='LeViT', arch='128s', out_indices=(2, ), init_cfg=dict(
        type='Pretrained', checkpoint=path, prefix='backbone.')))
    with Records() as log:
        backbone.init_weights()
    assert (f'load backbone. in model from: {path}; its 10-class head is left out (the '
            'prefix selects the rest)') in log.lines
    for key, value in backbone.state_dict().items():
        assert torch.equal(value, state['backbone.' + key]), key


# ------------------------------------------------------------------ derived buffers
def test_a_converted_checkpoint_loads_without_missing_key_noise(tmp_path, capsys):
    """levit_mm derives its bias indices (nothing to store, nothing to miss); mmpretrain's
    own LeViT persists them, so the converter writes them, equal to mmpretrain's."""
    from mmpretrain import get_model
    from mmpretrain.models.backbones.levit import LeViT as MMPretrainLeViT
    from mmpretrain.models.heads.levit_head import LeViTClsHead as MMPretrainHead

    from levit_tools.models import build_timm
    src, dst = tmp_path / 'timm.pth', tmp_path / 'converted.pth'
    torch.save(randomize_(build_timm('128s', fused=False), seed=3).state_dict(), src)
    code, _, stderr = run_tool_cli(load_tool('tools/model_converters/levit2mmpretrain.py'),
                                   [str(src), str(dst)], capsys)
    assert code == 0, stderr
    with Records() as log:
        get_model('levit-128s_3rdparty_in1k', pretrained=str(dst))
        load_checkpoint(build_classifier('128s', deploy=True), str(dst))
        build(dict(type='LeViT', arch='128s', init_cfg=dict(
            type='Pretrained', checkpoint=str(dst), prefix='backbone.'))).init_weights()
    theirs = torch.nn.Module()
    theirs.backbone = MMPretrainLeViT('128s', out_indices=(2, ))
    theirs.head = MMPretrainHead(num_classes=1000, in_channels=384)
    load_checkpoint(theirs, str(dst))
    printed = capsys.readouterr().out + '\n'.join(log.lines)
    assert 'Loads checkpoint' in printed and 'missing keys' not in printed, printed
    assert 'unexpected key' not in printed, printed
    saved = torch.load(dst, weights_only=True)['state_dict']
    idxs = {k: v for k, v in theirs.state_dict().items() if k.endswith('attention_bias_idxs')}
    assert idxs and all(torch.equal(saved[k], v) for k, v in idxs.items())


def test_load_from_a_bare_timm_state_dict_with_the_ema_hook_on(tmp_path):
    """mmengine's EMA hook reads ``checkpoint['state_dict']`` before the model loads; the
    default runtime's PlainCheckpointHook gives a bare (timm-layout) file that key, so the
    model and its EMA copy both get the file's weights, converted as they load."""
    from mmengine.runner import Runner

    from levit_mm.convert import convert_checkpoint
    from levit_tools.models import build_timm
    timm_state = randomize_(build_timm('128s', fused=False), seed=2).state_dict()
    path = str(tmp_path / 'timm.pth')
    torch.save(timm_state, path)  # flat, as timm saves it: no 'state_dict' key
    runner = Runner(model=classifier_cfg('128s'), work_dir=str(tmp_path / 'work'),
                    default_scope='mmpretrain',
                    custom_hooks=[dict(type='EMAHook'), dict(type='PlainCheckpointHook')])
    runner.call_hook('before_run')  # the EMA hook makes its copy here
    runner.load_checkpoint(path)
    expected = convert_checkpoint(timm_state)
    ema = next(h for h in runner.hooks if type(h).__name__ == 'EMAHook').ema_model.module
    for model in (runner.model, ema):
        for key, value in model.backbone.state_dict().items():
            assert torch.equal(value, expected['backbone.' + key]), key
