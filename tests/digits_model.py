"""A LeViT-128S trained briefly on the real digits (32 px scans, 4 epochs, ~90% top-1),
for the tests that check reduced-precision paths on held-out images."""
import os.path as osp

import torch
from conftest import REPO

DIGITS_CFG = osp.join(REPO, 'configs', 'levit', 'digits', 'levit-128s_digits.py')
_TRAINED: list = []


def build(cfg_path=DIGITS_CFG):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(cfg_path)
    cfg.model.data_preprocessor = cfg.data_preprocessor
    return MODELS.build(cfg.model)


def digits_options(root):
    return ['--cfg-options'] + [f'{s}_dataloader.dataset.data_root={root}'
                                for s in ('train', 'val', 'test')]


def trained_digits():
    """``(data dir, checkpoint)`` of the digits model, trained once per test process (the
    tests that read it only read it) in a directory removed when the process ends."""
    if not _TRAINED:
        import atexit
        import pathlib
        import shutil
        import tempfile
        root = tempfile.mkdtemp(prefix='levit-digits-')
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        _TRAINED.extend(train_digits_checkpoint(pathlib.Path(root)))
    return tuple(_TRAINED)


def train_digits_checkpoint(tmp_path, epochs: int = 4, batch: int = 64):
    """Write the digits under ``tmp_path/data``, train, save ``tmp_path/digits.pth``;
    returns ``(data dir, checkpoint path)``."""
    from mmpretrain.structures import DataSample

    from levit_tools.config_data import config_batches, load_config
    from levit_tools.digits import write_digits_folder
    data = tmp_path / 'data'
    write_digits_folder(str(data), px=32)
    options = {f'{s}_dataloader.dataset.data_root': str(data) for s in ('train', 'test')}
    cfg = load_config(DIGITS_CFG, options)
    torch.manual_seed(0)
    model = build()
    train = list(config_batches(cfg, model, 'train', batch_size=2000))[0]
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.05)
    steps = epochs * -(-len(train[1]) // batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 3e-3, total_steps=steps,
                                                   pct_start=0.15)
    model.train()
    generator = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        for idx in torch.randperm(len(train[1]), generator=generator).split(batch):
            samples = [DataSample().set_gt_label(int(y)) for y in train[1][idx]]
            loss = sum(model(train[0][idx], samples, mode='loss').values())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    ckpt = tmp_path / 'digits.pth'
    torch.save({'state_dict': model.state_dict()}, ckpt)
    return data, ckpt
