"""tools/test.py on an ImageNet-layout folder reports the top-k computed from the model."""
import re

import numpy as np
import pytest
import torch
from conftest import randomize_, run_py
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmpretrain.registry import DATASETS, MODELS
from PIL import Image

CONFIG = 'configs/levit/levit-256_8xb256_in1k.py'


def test_test_tool_reports_topk(tmp_path, repo):
    root = tmp_path / 'imagenet'
    (root / 'val').mkdir(parents=True)
    (root / 'meta').mkdir()
    rng = np.random.default_rng(0)
    names = []
    for i in range(12):
        h, w = rng.integers(200, 320, size=2)
        arr = rng.integers(0, 255, size=(h, w, 3), dtype=np.uint8)
        name = f'ILSVRC2012_val_{i:08d}.JPEG'
        Image.fromarray(arr).save(root / 'val' / name, quality=95)
        names.append(name)
    (root / 'meta' / 'val.txt').write_text(''.join(f'{n} 0\n' for n in names))

    cfg = Config.fromfile(f'{repo}/{CONFIG}')
    cfg.model.data_preprocessor = cfg.data_preprocessor  # as the Runner does
    model = randomize_(MODELS.build(cfg.model), seed=7).eval()
    ckpt = tmp_path / 'levit256.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)

    # Logits straight from the model, on the config's own test pipeline.
    dataset_cfg = cfg.test_dataloader.dataset
    dataset_cfg.data_root = str(root)
    dataset = DATASETS.build(dataset_cfg)
    with torch.no_grad():
        batch = model.data_preprocessor(pseudo_collate([dataset[i] for i in range(12)]))
        logits = model(batch['inputs'], mode='tensor')
    order = logits.argsort(dim=1, descending=True)
    # Labels chosen so that top-1 and top-5 are neither 0 nor 100%.
    ranks = [0, 0, 0, 0, 0, 2, 2, 4, 6, 10, 500, 999]
    labels = [int(order[i, r]) for i, r in enumerate(ranks)]
    (root / 'meta' / 'val.txt').write_text(
        ''.join(f'{n} {label}\n' for n, label in zip(names, labels)))
    target = torch.tensor(labels)
    top1 = 100 * (order[:, :1] == target[:, None]).any(1).float().mean().item()
    top5 = 100 * (order[:, :5] == target[:, None]).any(1).float().mean().item()
    assert top1 == pytest.approx(5 / 12 * 100) and top5 == pytest.approx(8 / 12 * 100)

    proc = run_py(['tools/test.py', CONFIG, str(ckpt), '--work-dir', str(tmp_path / 'work'),
                   '--cfg-options', f'test_dataloader.dataset.data_root={root}',
                   'test_dataloader.batch_size=4', 'test_dataloader.num_workers=0',
                   'test_dataloader.persistent_workers=False'])
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = {k: float(v) for k, v in re.findall(r'^(accuracy/top[15]): ([\d.]+)$',
                                              proc.stdout, re.M)}
    assert abs(got['accuracy/top1'] - top1) < 1e-3, (got, top1)
    assert abs(got['accuracy/top5'] - top5) < 1e-3, (got, top5)
