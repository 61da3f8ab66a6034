"""Every shipped config parses, builds, and differs from its siblings only where it must."""
import glob
import os.path as osp

import pytest
import torch
from conftest import ARCHS, EMBED_OUT, REPO
from mmengine.config import Config
from mmpretrain.registry import MODELS

from levit_mm.arch import PUBLISHED_ARCHS

CONFIGS = sorted(glob.glob(f'{REPO}/configs/levit/**/*.py', recursive=True))


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: osp.relpath(p, REPO))
def test_config_builds(path):
    cfg = Config.fromfile(path)
    model = MODELS.build(cfg.model).eval()
    # timm's larger variants (up to 22 GFLOPs at 224) run on a small input: any size works
    size = 224 if cfg.model.backbone.get('arch', '128s') in PUBLISHED_ARCHS else 64
    with torch.no_grad():
        logits = model(torch.randn(1, 3, size, size), mode='tensor')
    assert logits.shape == (1, cfg.model.head.num_classes)


@pytest.mark.parametrize('arch', ARCHS)
def test_recipe(arch):
    cfg = Config.fromfile(f'{REPO}/configs/levit/levit-{arch}_8xb256_in1k.py')
    assert cfg.model.backbone.arch == arch
    assert cfg.model.head.in_channels == EMBED_OUT[arch]
    opt = cfg.optim_wrapper
    assert opt.optimizer.type == 'AdamW'
    assert opt.optimizer.lr == pytest.approx(5e-4 * 2048 / 512)
    assert cfg.auto_scale_lr.base_batch_size == 8 * 256 == cfg.train_dataloader.batch_size * 8
    assert opt.optimizer.weight_decay == 0.025
    assert opt.paramwise_cfg.norm_decay_mult == 0
    assert opt.paramwise_cfg.custom_keys['.attention_biases'].decay_mult == 0
    kinds = [s.type for s in cfg.param_scheduler]
    assert kinds == ['LinearLR', 'CosineAnnealingLR']
    test = {t.type: t for t in cfg.test_dataloader.dataset.pipeline}
    assert test['ResizeEdge'].scale == 256 and test['ResizeEdge'].edge == 'short'
    assert test['ResizeEdge'].interpolation == 'bicubic'
    assert test['CenterCrop'].crop_size == 224
    train = [t.type for t in cfg.train_dataloader.dataset.pipeline]
    assert train[:5] == ['LoadImageFromFile', 'RandomResizedCrop', 'RandomFlip',
                         'RandAugment', 'RandomErasing']
    assert cfg.data_preprocessor.mean == [123.675, 116.28, 103.53]
    assert cfg.data_preprocessor.std == [58.395, 57.12, 57.375]
