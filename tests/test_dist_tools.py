"""tools/dist_train.sh and tools/dist_test.sh: two CPU processes (gloo) through torchrun and
mmengine's pytorch launcher, on a tiny image-folder dataset."""
import json
import os.path as osp
import re
import socket
import subprocess
import sys

import pytest
import torch
from conftest import REPO
from tiny_training import CLASSES, write_config, write_image_folders

pytestmark = pytest.mark.slow
TESTS = osp.dirname(osp.abspath(__file__))
GLOO = ['--cfg-options', 'env_cfg.dist_cfg.backend=gloo']


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def run_sh(args):
    env = dict(__import__('os').environ, PYTHON=sys.executable, PORT=str(free_port()),
               PYTHONPATH=TESTS, OMP_NUM_THREADS='1')
    return subprocess.run(['bash'] + args, cwd=REPO, env=env, capture_output=True, text=True,
                           timeout=600)


def probes(work_dir, stage):
    seen = {}
    for rank in (0, 1):
        path = osp.join(str(work_dir), f'probe_rank{rank}.jsonl')
        assert osp.exists(path), f'rank {rank} left no trace'
        with open(path) as f:
            lines = [json.loads(line) for line in f if json.loads(line)['stage'] == stage]
        assert lines and all(line['world_size'] == 2 for line in lines)
        seen[rank] = lines
    return seen


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp('dist')
    # 4 training images per class: 12 images, 6 per rank, 3 iterations per epoch of batch 2.
    data = write_image_folders(root / 'data', per_class=4, val_per_class=2)
    config = write_config(root / 'tiny.py', REPO, data, max_iters=3, ckpt_interval=3,
                          val_interval=100, extra=(
        "custom_imports = dict(imports=['levit_mm', 'probe_hooks'])\n"
        "custom_hooks = [dict(type='RNGStateHook'), dict(type='RankProbeHook')]"))
    work = root / 'work'
    proc = run_sh(['tools/dist_train.sh', config, '2', '--work-dir', str(work)] + GLOO)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return root, data, config, work, proc


def test_dist_train_runs_two_ranks_and_saves_one_checkpoint(trained):
    root, data, config, work, proc = trained
    seen = probes(work, 'train')
    for rank in (0, 1):
        assert [line['iter'] for line in seen[rank]] == [0, 1, 2]  # runner.iter before increment
    # DistributedSampler: the ranks share one epoch of 12 images without overlap.
    rank0 = [s for line in seen[0] for s in line['samples']]
    rank1 = [s for line in seen[1] for s in line['samples']]
    assert len(rank0) == len(rank1) == 6 and not set(rank0) & set(rank1)
    assert len(set(rank0) | set(rank1)) == 4 * len(CLASSES)
    assert re.search(r'Distributed launcher: pytorch|distributed: True|World size: 2',
                     proc.stdout + proc.stderr)
    checkpoints = sorted(p.name for p in work.glob('*.pth'))
    assert checkpoints == ['iter_3.pth'], checkpoints
    assert open(work / 'last_checkpoint').read().strip() == str(work / 'iter_3.pth')
    state = torch.load(work / 'iter_3.pth', map_location='cpu', weights_only=False)
    assert state['meta']['iter'] == 3
    assert not any(k.startswith('module.') for k in state['state_dict'])


def test_dist_test_splits_the_val_set_and_reports_accuracy(trained):
    root, data, config, work, _ = trained
    out = root / 'metrics.json'
    proc = run_sh(['tools/dist_test.sh', config, str(work / 'iter_3.pth'), '2', '--work-dir',
                   str(root / 'test_work'), '--out', str(out)] + GLOO)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    seen = probes(root / 'test_work', 'test')
    rank0 = {s for line in seen[0] for s in line['samples']}
    rank1 = {s for line in seen[1] for s in line['samples']}
    assert len(rank0) == len(rank1) == 3 and not rank0 & rank1
    printed = re.findall(r'^accuracy/top1: ([\d.]+)$', proc.stdout, re.M)
    assert len(printed) == 1  # rank 0 only
    metrics = json.loads(out.read_text())
    assert float(printed[0]) == pytest.approx(metrics['accuracy/top1'], abs=1e-4)
    assert metrics['accuracy/top1'] == pytest.approx(single_process_top1(config, work),
                                                     abs=1e-4)


def single_process_top1(config, work):
    """Top-1 of the saved weights on the whole val set, computed in this process."""
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmpretrain.registry import DATASETS, MODELS
    cfg = Config.fromfile(config)
    cfg.model.data_preprocessor = cfg.data_preprocessor
    model = MODELS.build(cfg.model).eval()
    state = torch.load(work / 'iter_3.pth', map_location='cpu', weights_only=False)
    model.load_state_dict(state['state_dict'])
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    batch = model.data_preprocessor(pseudo_collate([dataset[i] for i in range(len(dataset))]))
    with torch.no_grad():
        pred = model(batch['inputs'], mode='tensor').argmax(1)
    labels = torch.tensor([int(s.gt_label) for s in batch['data_samples']])
    assert len(labels) == 2 * len(CLASSES)
    return 100.0 * (pred == labels).float().mean().item()
