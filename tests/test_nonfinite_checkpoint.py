"""A checkpoint from a diverged run (NaN or Inf in some weights) is refused by every path
that loads weights, with one line that says how many tensors and which, and nothing is
written.  One check (``levit_mm.finite.check_finite_weights``) serves them all."""
import pytest
import torch
from conftest import REPO, randomize_, run_py
from mmengine.runner import load_checkpoint
from tool_loading import load_tool, run_tool_cli

from levit_mm.finite import NonFiniteWeightsError, check_finite_weights
from levit_tools.models import build_classifier, build_timm

CONFIG = 'configs/levit/levit-128s_8xb256_in1k.py'
BAD_KEYS = ('backbone.stages.0.0.block.qkv.linear.weight', 'head.head.linear.bias')


def expected_message(path, total):
    return (f"Checkpoint '{path}' holds non-finite values (NaN/Inf) in 2 of {total} tensors: "
            f'{BAD_KEYS[0]} (2 NaN, 0 Inf), {BAD_KEYS[1]} (0 NaN, 1 Inf). The run that '
            'wrote it probably diverged; use an earlier checkpoint.')


@pytest.fixture(scope='module')
def diverged(tmp_path_factory):
    """A LeViT-128S training checkpoint with two NaNs in one tensor and an Inf in another."""
    root = tmp_path_factory.mktemp('diverged')
    state = randomize_(build_classifier('128s'), seed=4).state_dict()
    state[BAD_KEYS[0]][3, :2] = float('nan')
    state[BAD_KEYS[1]][7] = float('inf')
    path = root / 'epoch_9.pth'
    torch.save({'state_dict': state, 'meta': {}}, path)
    return path, len(state)


def assert_refused(code, stderr, path, total):
    assert code == 2, stderr
    errors = [line for line in stderr.splitlines() if line.startswith('error:')]
    assert errors == [f'error: {expected_message(path, total)}'], stderr
    assert 'Traceback' not in stderr


def test_the_check_itself():
    good = {'a': torch.ones(3), 'b': torch.arange(4), 'c': torch.full((2, ), 3e38)}
    check_finite_weights(good, 'x')  # integers and sums that overflow are fine
    bad = dict(good, d=torch.tensor([0., float('-inf')]), e=torch.tensor([float('nan')]))
    with pytest.raises(NonFiniteWeightsError, match=r"x holds non-finite values \(NaN/Inf\) "
                       r'in 2 of 5 tensors: d \(0 NaN, 1 Inf\), e \(1 NaN, 0 Inf\)\.'):
        check_finite_weights(bad, 'x')
    many = {f't{i}': torch.tensor([float('nan')]) for i in range(5)}
    with pytest.raises(NonFiniteWeightsError, match=r't2 \(1 NaN, 0 Inf\) and 2 more\.'):
        check_finite_weights(many, 'y')


def test_demo(diverged, capsys, tmp_path):
    path, total = diverged
    code, stdout, stderr = run_tool_cli(
        load_tool('demo/image_demo.py'),
        [f'{REPO}/demo/chelsea.jpg', CONFIG, '--checkpoint', str(path), '--show-dir',
         str(tmp_path / 'shown')], capsys)
    assert_refused(code, stderr, path, total)
    assert 'nan' not in stdout and not list(tmp_path.rglob('*.png'))


def test_demo_in_a_subprocess(diverged):
    path, total = diverged
    proc = run_py(['demo/image_demo.py', 'demo/chelsea.jpg', CONFIG, '--checkpoint',
                   str(path)])
    assert_refused(proc.returncode, proc.stderr, path, total)


def test_get_model_and_inference_model(diverged):
    from mmpretrain import get_model, inference_model
    path, total = diverged
    with pytest.raises(NonFiniteWeightsError) as info:
        get_model('levit-128s_3rdparty_in1k', pretrained=str(path))
    assert str(info.value) == expected_message(path, total)
    with pytest.raises(NonFiniteWeightsError):
        inference_model('levit-128s_3rdparty_in1k', f'{REPO}/demo/chelsea.jpg',
                        pretrained=str(path))
    with pytest.raises(NonFiniteWeightsError):
        load_checkpoint(build_classifier('128s'), str(path))


def test_test_tool(diverged, capsys, tmp_path):
    path, total = diverged
    code, _, stderr = run_tool_cli(load_tool('tools/test.py'),
                                   [CONFIG, str(path), '--work-dir', str(tmp_path / 'work'),
                                    '--out', str(tmp_path / 'metrics.json')], capsys)
    assert_refused(code, stderr, path, total)
    assert not (tmp_path / 'metrics.json').exists()


@pytest.mark.parametrize('tool', ['tools/model_converters/levit2mmpretrain.py',
                                  'tools/model_converters/levit_reparameterize.py'])
def test_converters(diverged, capsys, tmp_path, tool):
    path, total = diverged
    out = tmp_path / 'out.pth'
    code, _, stderr = run_tool_cli(load_tool(tool), [str(path), str(out)], capsys)
    assert_refused(code, stderr, path, total)
    assert list(tmp_path.iterdir()) == []


def test_converter_on_a_foreign_layout(capsys, tmp_path):
    """A timm file: the names in the message are the file's own."""
    state = build_timm('128s', fused=False).state_dict()
    state['stem.conv1.linear.weight'][0, 0, 0, 0] = float('nan')
    path = tmp_path / 'timm.pth'
    torch.save(state, path)
    code, _, stderr = run_tool_cli(load_tool('tools/model_converters/levit2mmpretrain.py'),
                                   [str(path), str(tmp_path / 'out.pth')], capsys)
    assert code == 2
    assert (f"error: Checkpoint '{path}' holds non-finite values (NaN/Inf) in 1 of "
            f'{len(state)} tensors: stem.conv1.linear.weight (1 NaN, 0 Inf).') in stderr
    assert not (tmp_path / 'out.pth').exists()


def test_pretrained_init_of_a_dense_backbone(diverged):
    from mmpretrain.registry import MODELS
    path, total = diverged
    backbone = MODELS.build(dict(type='LeViT', arch='128s', out_indices=(0, 1, 2),
                                 init_cfg=dict(type='Pretrained', checkpoint=str(path),
                                               prefix='backbone.')))
    with pytest.raises(NonFiniteWeightsError) as info:
        backbone.init_weights()
    assert str(info.value) == expected_message(path, total)


def test_teacher(tmp_path):
    from mmpretrain.registry import MODELS
    teacher = dict(type='ImageClassifier',
                   backbone=dict(type='ResNet', depth=18, base_channels=8, out_indices=(3, )),
                   neck=dict(type='GlobalAveragePooling'),
                   head=dict(type='LinearClsHead', num_classes=4, in_channels=64))
    state = MODELS.build(teacher).state_dict()
    state['head.fc.weight'][0, 0] = float('nan')
    path = tmp_path / 'teacher.pth'
    torch.save({'state_dict': state}, path)
    student = MODELS.build(dict(
        type='LeViTClassifier',
        backbone=dict(type='LeViT', arch='128s', img_size=32, out_indices=(2, )),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LeViTClsHead', num_classes=4, in_channels=384),
        teacher=dict(model=teacher, checkpoint=str(path))))
    with pytest.raises(NonFiniteWeightsError,
                       match=r"holds non-finite values \(NaN/Inf\) in 1 of \d+ tensors: "
                             r'head.fc.weight \(1 NaN, 0 Inf\)'):
        student.teacher.build()
