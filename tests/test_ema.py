"""The weight EMA of the official recipe (timm ``ModelEma``, decay 0.99996, updated after
every iteration, BatchNorm statistics included) through mmpretrain's EMAHook: what the
checkpoint holds, what validation and ``pretrained=`` see, and the attention biases across
swaps."""
import glob
import json
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from conftest import REPO, run_py
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmpretrain.registry import DATASETS, MODELS
from tiny_training import TINY_ARCH, write_config, write_image_folders

from mmpretrain.engine.hooks import EMAHook

TESTS = osp.dirname(osp.abspath(__file__))
MOMENTUM = 0.25  # far larger than the recipe's 4e-5, so that 4 steps move the EMA visibly
ITERS = 4


def ema_recipe(momentum=MOMENTUM, probe=True) -> str:
    """Config lines: AGC, EMA evaluated beside the raw weights, and a raw-weight probe."""
    hooks = ("dict(type='RNGStateHook'), "
             f"dict(type='EMAHook', momentum={momentum}, update_buffers=True, "
             "evaluate_on_origin=True)")
    if probe:
        hooks += ", dict(type='RawWeightsProbeHook')"
    return ("custom_imports = dict(imports=['levit_mm', 'weight_probe_hooks'])\n"
            "optim_wrapper.update(type='AGCOptimWrapper', "
            "clip_grad=dict(type='agc', clip_factor=0.01))\n"
            f"custom_hooks = [{hooks}]\n")


def recompute_ema(work_dir, iters, momentum=MOMENTUM):
    """The EMA from the raw weights of every iteration: a copy after the first update, then
    ``ema += momentum * (raw - ema)`` for every floating-point tensor."""
    raws = [torch.load(osp.join(str(work_dir), f'raw_iter{i}.pth'), map_location='cpu')
            for i in range(1, iters + 1)]
    ema = {k: v.clone() for k, v in raws[0].items()}
    for raw in raws[1:]:
        for key, value in ema.items():
            if value.is_floating_point():
                ema[key] = torch.lerp(value, raw[key], momentum)
    return ema, raws[-1]


def assert_state_equal(got, want, exact=False):
    assert got.keys() == want.keys()
    for key in want:
        if exact or not want[key].is_floating_point():
            assert torch.equal(got[key], want[key]), key
        else:
            torch.testing.assert_close(got[key], want[key], rtol=1e-6, atol=1e-7, msg=key)


def top1(config, state) -> float:
    """Top-1 of ``state`` on the whole val set, computed in this process."""
    cfg = Config.fromfile(config)
    cfg.model.data_preprocessor = cfg.data_preprocessor
    model = MODELS.build(cfg.model).eval()
    model.load_state_dict(state)
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    batch = model.data_preprocessor(pseudo_collate([dataset[i] for i in range(len(dataset))]))
    with torch.no_grad():
        pred = model(batch['inputs'], mode='tensor').argmax(1)
    labels = torch.tensor([int(s.gt_label) for s in batch['data_samples']])
    return 100.0 * (pred == labels).float().mean().item()


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp('ema')
    data = write_image_folders(root / 'data', per_class=2, val_per_class=4)
    config = write_config(root / 'ema.py', REPO, data, max_iters=ITERS, ckpt_interval=ITERS,
                          extra=ema_recipe())
    work = root / 'work'
    proc = run_py(['tools/train.py', config, '--work-dir', str(work)],
                  env={'PYTHONPATH': TESTS})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return config, work


@pytest.mark.slow  # trains for a few iterations in a subprocess
def test_checkpoint_holds_the_ema_of_every_iteration(trained):
    config, work = trained
    checkpoint = torch.load(work / f'iter_{ITERS}.pth', map_location='cpu', weights_only=False)
    ema, raw = recompute_ema(work, ITERS)
    # `state_dict` (what tools/test.py, `pretrained=` and `load_from` read): the EMA;
    assert_state_equal(checkpoint['state_dict'], ema)
    # `ema_state_dict`: the raw weights (mmengine swaps the two), and the update count.
    stored = checkpoint['ema_state_dict']
    assert int(stored['steps']) == ITERS
    assert_state_equal({k[len('module.'):]: v for k, v in stored.items() if k != 'steps'},
                       raw, exact=True)
    moved = [k for k, v in raw.items() if v.is_floating_point() and not torch.equal(v, ema[k])]
    assert any('attention_biases' in k for k in moved)
    assert any('running_mean' in k for k in moved)  # BN statistics are averaged too


@pytest.mark.slow  # trains for a few iterations in a subprocess
def test_validation_reports_ema_and_raw_weights(trained):
    config, work = trained
    checkpoint = torch.load(work / f'iter_{ITERS}.pth', map_location='cpu', weights_only=False)
    raw = {k[len('module.'):]: v for k, v in checkpoint['ema_state_dict'].items()
           if k != 'steps'}
    (scalars, ) = glob.glob(str(work / '*' / 'vis_data' / 'scalars.json'))
    with open(scalars) as f:
        record = [json.loads(line) for line in f if 'accuracy/top1' in line][-1]
    assert record['accuracy/top1'] == pytest.approx(top1(config, checkpoint['state_dict']))
    assert record['accuracy/top1_origin'] == pytest.approx(top1(config, raw))


@pytest.mark.slow  # trains for a few iterations in a subprocess
def test_pretrained_loads_the_ema_weights(trained):
    from mmpretrain import get_model

    from levit_mm.convert import mmengine_checkpoint_globals
    config, work = trained
    checkpoint = torch.load(work / f'iter_{ITERS}.pth', map_location='cpu', weights_only=False)
    with mmengine_checkpoint_globals():  # a training checkpoint (message hub included)
        model = get_model(config, pretrained=str(work / f'iter_{ITERS}.pth'))
    assert_state_equal(model.state_dict(), checkpoint['state_dict'], exact=True)


def tiny_levit():
    return MODELS.build(dict(
        type='LeViTClassifier',
        backbone=dict(type='LeViT', arch=TINY_ARCH, img_size=32),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LeViTClsHead', num_classes=3, in_channels=32, distillation=True,
                  loss=dict(type='CrossEntropyLoss'))))


def test_validation_on_ema_weights_equals_a_fresh_model_with_them():
    """mmpretrain's stock EMAHook swaps the EMA weights in through ``param.data`` (no
    version bump) for validation, with no mode switch in between here; the logits are
    those of a fresh model loaded with the EMA weights, and the raw ones come back after."""
    torch.manual_seed(0)
    model = tiny_levit().eval()
    hook = EMAHook(momentum=0.5, update_buffers=True)
    runner = SimpleNamespace(model=model)
    hook.before_run(runner)
    for _ in range(2):  # "training": the raw weights move away from their average
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.2)
        hook.ema_model.update_parameters(model)
    raw_state = {k: v.clone() for k, v in model.state_dict().items()}
    ema_state = {k: v.clone() for k, v in hook.ema_model.module.state_dict().items()}

    x = torch.randn(2, 3, 32, 32)

    def fresh(state):
        other = tiny_levit().eval()
        other.load_state_dict(state)
        return other(x, mode='tensor')

    for context in (torch.no_grad, torch.inference_mode):
        with context():
            raw_out = model(x, mode='tensor')
            torch.testing.assert_close(raw_out, fresh(raw_state), atol=0, rtol=0)
            hook.before_val_epoch(runner)
            ema_out = model(x, mode='tensor')
            torch.testing.assert_close(ema_out, fresh(ema_state), atol=0, rtol=0)
            assert not torch.allclose(ema_out, raw_out, atol=1e-3)
            hook.after_val_epoch(runner)
            torch.testing.assert_close(model(x, mode='tensor'), raw_out, atol=0, rtol=0)
