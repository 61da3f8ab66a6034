"""DeiT distillation: loss values by hand, the frozen teacher outside the student, heads."""
import copy

import numpy as np
import pytest
import torch
from mmengine.optim import OptimWrapper
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from levit_mm.heads import hard_distillation_loss, soft_distillation_loss

STUDENT_LOGITS = np.array([[2.0, -1.0, 0.5, 0.0],
                           [0.1, 0.2, 3.0, -2.0],
                           [-0.5, 1.5, 1.0, 0.3]])
TEACHER_LOGITS = np.array([[0.3, 2.5, -1.0, 0.0],
                           [1.0, 0.0, 4.0, 0.5],
                           [0.0, 0.2, -0.3, 1.1]])
NUM_CLASSES = 10
MEAN = [123.675, 116.28, 103.53]
STD = [58.395, 57.12, 57.375]


def np_log_softmax(x):
    """log softmax written out: x - log(sum(exp(x))) per row."""
    out = np.empty_like(x)
    for i, row in enumerate(x):
        out[i] = row - np.log(sum(np.exp(v) for v in row))
    return out


def test_hard_loss_by_hand():
    log_p = np_log_softmax(STUDENT_LOGITS)
    teacher_top1 = [int(np.argmax(row)) for row in TEACHER_LOGITS]  # [1, 2, 3]
    expected = -sum(log_p[i, t] for i, t in enumerate(teacher_top1)) / len(teacher_top1)
    got = hard_distillation_loss(torch.tensor(STUDENT_LOGITS), torch.tensor(TEACHER_LOGITS))
    assert got.item() == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize('tau', [1.0, 3.0, 0.5])
def test_soft_loss_by_hand(tau):
    """DeiT's ``losses.py``: the KL summed over the batch and the classes, times tau^2,
    divided by batch x classes (``outputs_kd.numel()``)."""
    log_p_s = np_log_softmax(STUDENT_LOGITS / tau)
    log_p_t = np_log_softmax(TEACHER_LOGITS / tau)
    kl = 0.0
    for i in range(len(STUDENT_LOGITS)):
        for c in range(STUDENT_LOGITS.shape[1]):
            p_t = np.exp(log_p_t[i, c])
            kl += p_t * (log_p_t[i, c] - log_p_s[i, c])
    expected = kl * tau * tau / STUDENT_LOGITS.size
    got = soft_distillation_loss(torch.tensor(STUDENT_LOGITS), torch.tensor(TEACHER_LOGITS),
                                 tau)
    assert got.item() == pytest.approx(expected, rel=1e-10)
    same = soft_distillation_loss(torch.tensor(TEACHER_LOGITS), torch.tensor(TEACHER_LOGITS),
                                  tau)
    assert abs(same.item()) < 1e-12


def test_loss_rejects_mismatched_teacher():
    with pytest.raises(ValueError, match='same classes'):
        hard_distillation_loss(torch.zeros(2, 4), torch.zeros(2, 5))
    with pytest.raises(ValueError, match='tau'):
        soft_distillation_loss(torch.zeros(2, 4), torch.zeros(2, 4), 0.0)


def _head(distill_type, alpha=0.5, tau=1.0):
    head = MODELS.build(dict(type='LeViTClsHead', num_classes=4, in_channels=6,
                             distill_type=distill_type, distill_alpha=alpha, distill_tau=tau,
                             loss=dict(type='CrossEntropyLoss')))
    return head.eval()  # BN on running stats: the logits are a fixed function of feats


@pytest.mark.parametrize('distill_type', ['hard', 'soft', 'none'])
def test_head_mixes_label_and_teacher_losses(distill_type):
    torch.manual_seed(0)
    head = _head(distill_type, alpha=0.3, tau=2.0)
    feats = (torch.randn(3, 6, 2, 2, dtype=torch.float64), )
    head.double()
    labels = [2, 0, 3]
    samples = [DataSample().set_gt_label(y) for y in labels]
    with torch.no_grad():
        cls, dist = head.head_logits(feats)
    cls, dist = cls.numpy(), dist.numpy()
    losses = head.loss(feats, samples, teacher_logits=torch.tensor(TEACHER_LOGITS))

    def ce(logits, targets):
        lp = np_log_softmax(logits)
        return -sum(lp[i, t] for i, t in enumerate(targets)) / len(targets)

    assert losses['loss_cls'].item() == pytest.approx(0.7 * ce(cls, labels), rel=1e-9)
    if distill_type == 'hard':
        expected = ce(dist, [1, 2, 3])
    elif distill_type == 'soft':
        lp_s, lp_t = np_log_softmax(dist / 2), np_log_softmax(TEACHER_LOGITS / 2)
        expected = (np.exp(lp_t) * (lp_t - lp_s)).sum() * 4 / (3 * 4)  # tau^2 / (N x C)
    else:  # no distillation: the second head learns the labels too
        expected = ce(dist, labels)
    assert losses['loss_dist'].item() == pytest.approx(0.3 * expected, rel=1e-9)


def test_single_head_refuses_teacher_logits():
    head = MODELS.build(dict(type='LeViTClsHead', num_classes=4, in_channels=6,
                             distillation=False))
    samples = [DataSample().set_gt_label(0)]
    with pytest.raises(ValueError, match='no distillation head'):
        head.loss((torch.randn(1, 6), ), samples, teacher_logits=torch.randn(1, 4))


# ---------------------------------------------------------------------------------------
# The teacher inside a LeViTClassifier
# ---------------------------------------------------------------------------------------

def teacher_model_cfg():
    return dict(type='ImageClassifier',
                backbone=dict(type='ResNet', depth=18, base_channels=8, out_indices=(3, )),
                neck=dict(type='GlobalAveragePooling'),
                head=dict(type='LinearClsHead', num_classes=NUM_CLASSES, in_channels=64))


def student_cfg(teacher=None, distill_type='hard', augments=True):
    return dict(
        type='LeViTClassifier',
        backbone=dict(type='LeViT', arch='128s', img_size=32, out_indices=(2, )),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LeViTClsHead', num_classes=NUM_CLASSES, in_channels=384,
                  distill_type=distill_type, loss=dict(type='LabelSmoothLoss',
                                                       label_smooth_val=0.1)),
        data_preprocessor=dict(type='ClsDataPreprocessor', num_classes=NUM_CLASSES, mean=MEAN,
                               std=STD, to_rgb=True),
        train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8),
                                 dict(type='CutMix', alpha=1.0)]) if augments else None,
        teacher=teacher)


@pytest.fixture(scope='module')
def teacher_ckpt(tmp_path_factory):
    torch.manual_seed(1)
    model = MODELS.build(teacher_model_cfg())
    path = tmp_path_factory.mktemp('teacher') / 'teacher.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return str(path)


def batch(n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    imgs = [torch.randint(0, 256, (3, 32, 32), generator=g, dtype=torch.uint8)
            for _ in range(n)]
    return dict(inputs=imgs, data_samples=[DataSample().set_gt_label(i % NUM_CLASSES)
                                           for i in range(n)])


def test_teacher_is_built_lazily_and_outside_the_module_tree(teacher_ckpt):
    torch.manual_seed(0)
    model = MODELS.build(student_cfg(dict(model=teacher_model_cfg(), checkpoint=teacher_ckpt)))
    plain = MODELS.build(student_cfg(None))
    assert model.teacher.model is None  # building never loads teacher weights
    model.train()
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    log = model.train_step(batch(), optim)
    assert set(log) >= {'loss', 'loss_cls', 'loss_dist'}
    teacher = model.teacher.model
    assert teacher is not None
    keys = model.state_dict().keys()
    assert keys == plain.state_dict().keys()
    assert not any('teacher' in k for k in keys)
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == sum(p.numel() for p in plain.parameters())
    assert all(t is not p for t in teacher.parameters() for p in model.parameters())
    assert all(not p.requires_grad for p in teacher.parameters())
    model.train()
    assert not teacher.training and not any(m.training for m in teacher.modules())
    # deep copies (EMA) share the frozen teacher instead of duplicating it
    assert copy.deepcopy(model).teacher.model is teacher


def test_teacher_frozen_through_train_steps_and_sees_student_inputs(teacher_ckpt):
    torch.manual_seed(0)
    model = MODELS.build(student_cfg(dict(model=teacher_model_cfg(), checkpoint=teacher_ckpt)))
    model.train()
    saved = torch.load(teacher_ckpt)['state_dict']
    seen = {}
    teacher = model.teacher.build()
    teacher.register_forward_pre_hook(lambda m, a, kw: seen.__setitem__('teacher', a[0]),
                                      with_kwargs=True)
    model.backbone.register_forward_pre_hook(lambda m, a: seen.__setitem__('student', a[0]))
    optim = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-2))
    for step in range(2):
        model.train_step(batch(seed=step), optim)
    # Mixup/CutMix ran in the data preprocessor; the teacher got exactly those tensors.
    assert torch.equal(seen['teacher'], seen['student'])
    for name, value in teacher.state_dict().items():
        assert torch.equal(value, saved[name]), name  # BN running stats included
    assert not teacher.training


def test_both_heads_get_gradients_and_inference_averages_them(teacher_ckpt):
    torch.manual_seed(0)
    model = MODELS.build(student_cfg(dict(model=teacher_model_cfg(), checkpoint=teacher_ckpt),
                                     augments=False))
    model.train()
    data = model.data_preprocessor(batch(), training=True)
    losses = model.loss(data['inputs'], data['data_samples'])
    sum(losses.values()).backward()
    for head in (model.head.head, model.head.head_dist):
        assert head.linear.weight.grad is not None
        assert head.linear.weight.grad.abs().sum() > 0

    model.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        pooled = model.neck(model.backbone(x))[-1]
        expected = (model.head.head.linear(model.head.head.bn(pooled)) +
                    model.head.head_dist.linear(model.head.head_dist.bn(pooled))) / 2
        got = model(x, mode='tensor')
        scores = model(x, mode='predict')
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(torch.stack([s.pred_score for s in scores]),
                               expected.softmax(dim=1), rtol=0, atol=1e-6)


def test_teacher_follows_the_students_dtype(teacher_ckpt):
    model = MODELS.build(student_cfg(dict(model=teacher_model_cfg(), checkpoint=teacher_ckpt)))
    model.double()  # requested before the teacher exists: applied when it is built
    model.train()
    data = model.data_preprocessor(batch(), training=True)
    model.loss(data['inputs'], data['data_samples'])
    assert next(model.teacher.model.parameters()).dtype == torch.float64
    model.float()
    assert next(model.teacher.model.parameters()).dtype == torch.float32


def test_teacher_renormalises_inputs(teacher_ckpt):
    """A teacher trained with other mean/std/channel order gets its own normalisation."""
    cfg = teacher_model_cfg()
    cfg['data_preprocessor'] = dict(type='ClsDataPreprocessor', mean=[0., 0., 0.],
                                    std=[255., 255., 255.], to_rgb=False)
    model = MODELS.build(student_cfg(dict(model=cfg, checkpoint=teacher_ckpt,
                                          input_size=(16, 16))))
    model.teacher.build()
    raw = torch.rand(2, 3, 32, 32) * 255  # BGR pixels, as loaded
    student_in = (raw.flip(1) - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None,
                                                                                        None]
    adapted = model.teacher.adapt_inputs(student_in, model.data_preprocessor)
    expected = torch.nn.functional.interpolate(raw / 255, size=(16, 16), mode='bicubic')
    torch.testing.assert_close(adapted, expected, rtol=0, atol=1e-4)


@pytest.mark.parametrize('teacher, match', [
    (dict(config='x.py'), 'needs checkpoint'),
    (dict(config='x.py', name='resnet18_8xb32_in1k', checkpoint='t.pth'), 'exactly one'),
    (dict(checkpoint='t.pth'), 'exactly one'),
    (dict(name='resnet18_8xb32_in1k', checkpont='t.pth'), 'Unknown teacher option'),
])
def test_bad_teacher_configs_fail_at_build(teacher, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(student_cfg(teacher))


def test_teacher_needs_a_distillation_head(teacher_ckpt):
    cfg = student_cfg(dict(model=teacher_model_cfg(), checkpoint=teacher_ckpt))
    cfg['head']['distillation'] = False
    with pytest.raises(ValueError, match='distillation head'):
        MODELS.build(cfg)


def test_teacher_errors_are_specific(tmp_path, teacher_ckpt):
    missing = MODELS.build(student_cfg(dict(model=teacher_model_cfg(),
                                            checkpoint=str(tmp_path / 'nope.pth'))))
    with pytest.raises(FileNotFoundError, match='Teacher checkpoint not found'):
        missing.teacher.build()
    other = teacher_model_cfg()
    other['backbone']['base_channels'] = 16
    other['head']['in_channels'] = 128
    wrong = MODELS.build(student_cfg(dict(model=other, checkpoint=teacher_ckpt)))
    with pytest.raises(ValueError, match='does not match the teacher model'):
        wrong.teacher.build()
    five = teacher_model_cfg()
    five['head']['num_classes'] = 5
    path = tmp_path / 'five.pth'
    torch.save(MODELS.build(five).state_dict(), path)
    model = MODELS.build(student_cfg(dict(model=five, checkpoint=str(path)))).train()
    data = model.data_preprocessor(batch(), training=True)
    with pytest.raises(ValueError, match='same classes'):
        model.loss(data['inputs'], data['data_samples'])
