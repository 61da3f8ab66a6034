"""End to end: tools/train.py distils LeViT from a teacher on real digits, tools/test.py
evaluates the checkpoint it wrote; and the shipped configs describe the paper's recipe."""
import json
import os
import os.path as osp
import re

import pytest
import torch
from conftest import REPO, run_py
from mmengine.config import Config
from mmpretrain.registry import MODELS

from levit_tools.digits import export_weights, write_digits_folder

TEACHER_CFG = 'configs/levit/digits/resnet18-w32_digits.py'
STUDENT_CFG = 'configs/levit/digits/levit-128s_digits_distill.py'
LOSS_LINE = re.compile(r'Epoch\(train\)\s+\[(\d+)\]\[(\d+)/\d+\].*?\sloss: ([\d.]+)\s+'
                       r'loss_cls: ([\d.]+)\s+loss_dist: ([\d.]+)')


def scalars(work_dir):
    run = sorted(d for d in os.listdir(work_dir) if re.fullmatch(r'\d{8}_\d{6}', d))[-1]
    with open(osp.join(work_dir, run, 'vis_data', 'scalars.json')) as f:
        return [json.loads(line) for line in f]


@pytest.mark.slow
def test_train_with_teacher_then_test(tmp_path):
    data = str(tmp_path / 'digits')
    split = write_digits_folder(data, px=64, per_class=20)
    assert (split['train'], split['val']) == (160, 40)
    # A teacher checkpoint as tools/train.py would write it (weights trained or not, the
    # mechanics are the same: built from its config, loaded, frozen, run at 32 px).
    torch.manual_seed(0)
    teacher = MODELS.build(Config.fromfile(osp.join(REPO, TEACHER_CFG)).model)
    teacher_ckpt = tmp_path / 'teacher.pth'
    torch.save({'state_dict': teacher.state_dict(), 'meta': {}}, teacher_ckpt)
    teacher_before = {k: v.clone() for k, v in teacher.state_dict().items()}

    work = tmp_path / 'student'
    loaders = [f'{s}.dataset.data_root={data}'
               for s in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    proc = run_py(['tools/train.py', STUDENT_CFG, '--work-dir', str(work), '--cfg-options',
                   f'model.teacher.checkpoint={teacher_ckpt}', 'train_cfg.max_epochs=6',
                   'train_cfg.val_interval=6', 'default_hooks.logger.interval=1',
                   'train_dataloader.batch_size=32', 'randomness.seed=0'] + loaders,
                  env={'OMP_NUM_THREADS': '1'})
    assert proc.returncode == 0, proc.stderr[-3000:]
    losses = [(float(t), float(c), float(d)) for *_, t, c, d in LOSS_LINE.findall(proc.stdout)]
    assert len(losses) == 6 * 5, proc.stdout[-2000:]
    first = [sum(x) / 3 for x in zip(*losses[:3])]
    last = [sum(x) / 3 for x in zip(*losses[-3:])]
    assert last[0] < 0.9 * first[0], (first, last)  # total loss falls by over 10%
    assert last[1] < first[1] and last[2] < first[2], (first, last)  # both heads learn

    ckpt = work / 'epoch_6.pth'
    assert ckpt.is_file()
    state = torch.load(ckpt, map_location='cpu', weights_only=False)['state_dict']
    assert any(k.startswith('head.head_dist.') for k in state)
    assert not any('teacher' in k or k.startswith('model.') for k in state)
    train_top1 = [r['accuracy/top1'] for r in scalars(str(work)) if 'accuracy/top1' in r][-1]

    # The demo's release step: weights and class names only (loads with weights_only=True).
    weights = export_weights(str(ckpt), str(tmp_path / 'student.pth'))
    assert torch.load(weights, weights_only=True)['state_dict'].keys() == state.keys()
    proc = run_py(['tools/test.py', STUDENT_CFG, weights, '--work-dir', str(tmp_path / 't'),
                   '--cfg-options', 'model.teacher=None', loaders[-1]],
                  env={'OMP_NUM_THREADS': '1'})
    assert proc.returncode == 0, proc.stderr[-3000:]
    top1 = float(re.search(r'^accuracy/top1: ([\d.]+)$', proc.stdout, re.M).group(1))
    assert top1 == pytest.approx(train_top1, abs=1e-3)  # same weights, same 40 images
    # the teacher file itself is untouched by training
    after = torch.load(teacher_ckpt)['state_dict']
    assert all(torch.equal(after[k], v) for k, v in teacher_before.items())


@pytest.mark.parametrize('arch', ['128s', '128', '192', '256', '384'])
def test_imagenet_configs_distil_from_regnety16gf(arch):
    cfg = Config.fromfile(f'{REPO}/configs/levit/levit-{arch}_8xb256_in1k.py')
    assert cfg.model.type == 'LeViTClassifier'
    assert cfg.model.teacher.model.type == 'TimmClassifier'
    assert cfg.model.teacher.model.model_name == 'regnety_160'  # RegNetY-16GF
    assert cfg.model.teacher.checkpoint.endswith('regnety_160-a5fe301d.pth')  # DeiT's teacher
    assert cfg.model.head.distill_type == 'hard' and cfg.model.head.distill_alpha == 0.5
    assert cfg.train_cfg.max_epochs == 1000
    assert [a.type for a in cfg.model.train_cfg.augments] == ['Mixup', 'CutMix']
    assert cfg.model.head.loss.label_smooth_val == 0.1
    model = MODELS.build(cfg.model)
    assert model.teacher is not None and model.teacher.model is None  # nothing downloaded


def test_regnety_teacher_builds_and_fits_the_student():
    """The configured teacher is a real RegNetY-16GF (83.6M params) with 1000 logits."""
    cfg = Config.fromfile(f'{REPO}/configs/levit/levit-128s_8xb256_in1k.py')
    teacher = MODELS.build(cfg.model.teacher.model).eval()
    assert sum(p.numel() for p in teacher.parameters()) == pytest.approx(83.6e6, rel=0.01)
    with torch.no_grad():
        assert teacher(torch.randn(1, 3, 64, 64), mode='tensor').shape == (1, 1000)


def test_nodistill_and_finetune_configs():
    plain = Config.fromfile(f'{REPO}/configs/levit/levit-128s_nodistill_8xb256_in1k.py')
    assert plain.model.teacher is None and plain.model.head.distill_type == 'none'
    for name, distil in [('levit-128s_ft_custom.py', False),
                         ('levit-128s_ft-distill_custom.py', True)]:
        cfg = Config.fromfile(f'{REPO}/configs/levit/finetune/{name}')
        assert cfg.train_dataloader.dataset.type == 'CustomDataset'
        assert cfg.model.head.num_classes == cfg.data_preprocessor.num_classes == 10
        init = cfg.model.backbone.init_cfg
        assert init.type == 'Pretrained' and init.prefix == 'backbone.'
        assert 'init_cfg' not in cfg.model.head  # the head starts afresh
        assert (cfg.model.teacher is not None) == distil
        assert cfg.model.head.distill_type == ('hard' if distil else 'none')


def test_finetune_loads_the_backbone_and_reinitialises_the_head(tmp_path):
    cfg = Config.fromfile(f'{REPO}/configs/levit/finetune/levit-128s_ft_custom.py')
    imagenet = MODELS.build(Config.fromfile(
        f'{REPO}/configs/levit/levit-128s_8xb256_in1k.py').model)
    torch.manual_seed(3)
    for p in imagenet.parameters():
        p.data.normal_()
    ckpt = tmp_path / 'levit-128s_in1k.pth'
    torch.save({'state_dict': imagenet.state_dict()}, ckpt)
    cfg.model.backbone.init_cfg.checkpoint = str(ckpt)
    model = MODELS.build(cfg.model)
    model.init_weights()
    for name, value in model.backbone.state_dict().items():
        assert torch.equal(value, imagenet.backbone.state_dict()[name]), name
    assert model.head.head.linear.weight.shape == (10, 384)
    assert not torch.equal(model.head.head.bn.weight, imagenet.head.head.bn.weight)
