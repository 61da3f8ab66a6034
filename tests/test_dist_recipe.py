"""The official recipe's parts in a 2-process (gloo) ``tools/dist_train.sh`` run: repeated
augmentation spreads each image's copies over the ranks, AGC clips, the checkpoint holds the
EMA of every iteration, and ``tools/test.py`` evaluates those EMA weights."""
import glob
import json
import os.path as osp
import pickle

import pytest
import torch
from conftest import REPO, run_py
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmpretrain.registry import DATASETS, MODELS
from test_dist_tools import GLOO, probes, run_sh
from test_ema import assert_state_equal, recompute_ema
from tiny_training import CLASSES, write_config, write_image_folders

pytestmark = pytest.mark.slow
TESTS = osp.dirname(osp.abspath(__file__))
ITERS = 3  # 12 images x 3 repeats / 2 ranks -> 6 draws per rank (an epoch): 3 batches of 2
MOMENTUM = 0.25


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp('dist_recipe')
    data = write_image_folders(root / 'data', per_class=4, val_per_class=2)
    config = write_config(root / 'recipe.py', REPO, data, max_iters=ITERS, ckpt_interval=ITERS,
                          val_interval=100, extra=(
        "custom_imports = dict(imports=['levit_mm', 'probe_hooks', 'weight_probe_hooks'])\n"
        "optim_wrapper.update(type='AGCOptimWrapper', "
        "clip_grad=dict(type='agc', clip_factor=0.01))\n"
        "train_dataloader['sampler'] = dict(type='RepeatAugSampler', num_repeats=3, "
        "shuffle=True)\n"
        "custom_hooks = [dict(type='RNGStateHook'), "
        f"dict(type='EMAHook', momentum={MOMENTUM}, update_buffers=True, "
        "evaluate_on_origin=True), dict(type='RankProbeHook'), "
        "dict(type='RawWeightsProbeHook')]"))
    work = root / 'work'
    proc = run_sh(['tools/dist_train.sh', config, '2', '--work-dir', str(work)] + GLOO)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return root, config, work


def test_each_rank_gets_its_share_of_the_repeated_samples(trained):
    _, _, work = trained
    seen = probes(work, 'train')
    draws = {rank: [s for line in seen[rank] for s in line['samples']] for rank in (0, 1)}
    assert len(draws[0]) == len(draws[1]) == 6  # ceil(12 / 2): an epoch's worth per rank
    # RepeatAugSampler deals [a, a, a, b, b, b, ...] round-robin over the ranks, so the
    # ranks' draws interleaved give back runs of three copies of one image, and the three
    # copies of an image never all land on one rank.
    merged = [s for pair in zip(draws[0], draws[1]) for s in pair]
    runs = [merged[i:i + 3] for i in range(0, len(merged), 3)]
    assert all(len(set(run)) == 1 for run in runs), runs
    images = [run[0] for run in runs]
    assert len(set(images)) == 4  # 12 draws: 4 of the 12 images, 3 times each
    for image in images:
        assert 0 < draws[0].count(image) < 3 and 0 < draws[1].count(image) < 3


def test_agc_clipped_and_checkpoint_holds_the_ema(trained):
    _, _, work = trained
    (scalars, ) = glob.glob(str(work / '*' / 'vis_data' / 'scalars.json'))
    with open(scalars) as f:
        records = [json.loads(line) for line in f]
    clipped = [r['agc_clipped_units'] for r in records if 'agc_clipped_units' in r]
    assert len(clipped) == ITERS and all(c > 0 for c in clipped)
    checkpoint = torch.load(work / f'iter_{ITERS}.pth', map_location='cpu', weights_only=False)
    ema, raw = recompute_ema(work, ITERS, MOMENTUM)
    assert_state_equal(checkpoint['state_dict'], ema)
    stored = checkpoint['ema_state_dict']
    assert int(stored['steps']) == ITERS
    assert_state_equal({k[len('module.'):]: v for k, v in stored.items() if k != 'steps'},
                       raw, exact=True)


def scores(config, state):
    """Softmax scores of ``state`` on the whole val set, in file order."""
    cfg = Config.fromfile(config)
    cfg.model.data_preprocessor = cfg.data_preprocessor
    model = MODELS.build(cfg.model).eval()
    model.load_state_dict(state)
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    samples = pseudo_collate([dataset[i] for i in range(len(dataset))])
    batch = model.data_preprocessor(samples)
    with torch.no_grad():
        logits = model(batch['inputs'], mode='tensor')
    paths = [s.img_path for s in batch['data_samples']]
    return dict(zip(paths, logits.softmax(1)))


def test_tools_test_evaluates_the_ema_weights(trained):
    root, config, work = trained
    ckpt = work / f'iter_{ITERS}.pth'
    out = root / 'pred.pkl'
    proc = run_py(['tools/test.py', config, str(ckpt), '--work-dir', str(root / 'test'),
                   '--out', str(out), '--out-item', 'pred'], env={'PYTHONPATH': TESTS})
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert 'Testing the loaded weights' in log
    assert 'top1_origin' not in log  # no second pass over the same weights
    with open(out, 'rb') as f:
        predictions = pickle.load(f)
    assert len(predictions) == 2 * len(CLASSES)
    checkpoint = torch.load(ckpt, map_location='cpu', weights_only=False)
    ema = scores(config, checkpoint['state_dict'])
    raw = scores(config, {k[len('module.'):]: v
                          for k, v in checkpoint['ema_state_dict'].items() if k != 'steps'})
    for pred in predictions:
        torch.testing.assert_close(pred['pred_score'], ema[pred['img_path']], atol=1e-5,
                                   rtol=1e-4)
    assert any(not torch.allclose(ema[p], raw[p], atol=1e-4) for p in ema)
