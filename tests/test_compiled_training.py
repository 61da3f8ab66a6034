"""A compiled training step is the eager one, faster: same losses, same gradients (fp32),
with and without a distillation teacher; the train-mode forward is one graph."""
import copy

import pytest
import torch
from conftest import randomize_
from mmengine.optim import OptimWrapper
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from levit_tools.models import build_classifier

#: a small LeViT, so that compiling forward and backward takes seconds on a CPU
TINY = dict(embed_dims=[32, 48], num_heads=[2, 3], depths=[1, 1], key_dims=[8, 8])
NUM_CLASSES = 5
LR = 0.5


def student(teacher=None):
    cfg = dict(type='LeViTClassifier',
               backbone=dict(type='LeViT', arch=TINY, img_size=32, out_indices=(1, )),
               neck=dict(type='GlobalAveragePooling'),
               head=dict(type='LeViTClsHead', num_classes=NUM_CLASSES, in_channels=48,
                         loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1)),
               data_preprocessor=dict(type='ClsDataPreprocessor', num_classes=NUM_CLASSES,
                                      mean=[128.] * 3, std=[64.] * 3),
               teacher=teacher)
    torch.manual_seed(0)
    return randomize_(MODELS.build(cfg), seed=1).train()


@pytest.fixture(scope='module')
def teacher_file(tmp_path_factory):
    teacher = dict(type='ImageClassifier',
                   backbone=dict(type='ResNet', depth=18, base_channels=8, out_indices=(3, )),
                   neck=dict(type='GlobalAveragePooling'),
                   head=dict(type='LinearClsHead', num_classes=NUM_CLASSES, in_channels=64))
    torch.manual_seed(3)
    path = tmp_path_factory.mktemp('teacher') / 'teacher.pth'
    torch.save({'state_dict': MODELS.build(teacher).state_dict()}, path)
    return dict(model=teacher, checkpoint=str(path))


def batch(n=4):
    g = torch.Generator().manual_seed(0)
    return dict(inputs=[torch.randint(0, 256, (3, 32, 32), generator=g, dtype=torch.uint8)
                        for _ in range(n)],
                data_samples=[DataSample().set_gt_label(i % NUM_CLASSES) for i in range(n)])


def step(model, train_step):
    """One mmengine training step (data preprocessor, forward, loss, backward, SGD);
    returns the logged losses and the gradient each parameter received."""
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    log_vars = train_step(batch(), OptimWrapper(torch.optim.SGD(model.parameters(), lr=LR)))
    grads = {n: (before[n] - p.detach()) / LR for n, p in model.named_parameters()}
    return {k: float(v) for k, v in log_vars.items()}, grads


@pytest.mark.slow
@pytest.mark.parametrize('with_teacher', [False, True])
def test_compiled_step_equals_eager(with_teacher, teacher_file):
    torch._dynamo.reset()
    eager = student(teacher_file if with_teacher else None)
    compiled = copy.deepcopy(eager)  # the teacher is shared (frozen), as with EMA copies
    eager_losses, eager_grads = step(eager, eager.train_step)
    compiled_losses, compiled_grads = step(compiled, torch.compile(compiled.train_step))
    assert set(eager_losses) == ({'loss', 'loss_cls', 'loss_dist'})
    for name, value in eager_losses.items():
        assert compiled_losses[name] == pytest.approx(value, rel=1e-5, abs=1e-6), name
    assert eager_grads.keys() == compiled_grads.keys()
    # Inductor fuses and reorders the reductions (BatchNorm in training mode most of all),
    # so the gradients agree to fp32 rounding amplified through the network: measured
    # 0.8e-5 to 5e-5 relative (L2 over all parameters) on this tiny model.  A wrong
    # gradient would be off by order 1.
    flat_eager = torch.cat([g.flatten() for g in eager_grads.values()])
    flat_compiled = torch.cat([compiled_grads[n].flatten() for n in eager_grads])
    assert (flat_compiled - flat_eager).norm() <= 1e-4 * flat_eager.norm()
    scale = flat_eager.abs().max().item()
    for name, grad in eager_grads.items():
        torch.testing.assert_close(compiled_grads[name], grad, atol=2e-4 * scale, rtol=1e-3,
                                   msg=name)
    if with_teacher:
        assert compiled.teacher.model is not None  # built, eagerly, on the first step


def test_train_mode_forward_is_one_graph():
    """backbone -> neck -> both heads in train mode, bias gathers and drop path included."""
    torch._dynamo.reset()
    model = build_classifier('128s', drop_path_rate=0.1).train()
    explained = torch._dynamo.explain(
        lambda x: model.head.head_logits(model.extract_feat(x)))(torch.randn(2, 3, 224, 224))
    assert explained.graph_break_count == 0, explained.break_reasons
    assert explained.graph_count == 1


def test_train_tool_compile_flag():
    from tool_loading import load_tool
    train = load_tool('tools/train.py')
    args = train.parse_args(['configs/levit/levit-128s_8xb256_in1k.py', '--compile'])
    from mmengine.config import Config
    cfg = train.merge_args(Config.fromfile('configs/levit/levit-128s_8xb256_in1k.py'), args)
    assert cfg.compile is True
