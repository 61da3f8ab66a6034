"""A training run killed with SIGKILL (mid-epoch, and while writing a checkpoint) and resumed
with ``--resume`` ends bit-identical to an uninterrupted run: raw and EMA weights alike, with
the official recipe's AGC, weight EMA and repeated-augmentation sampler switched on."""
import glob
import json
import os.path as osp
import signal

import pytest
import torch
from conftest import REPO, run_py
from tiny_training import write_config, write_image_folders

pytestmark = pytest.mark.slow
TESTS = osp.dirname(osp.abspath(__file__))
MAX_ITERS = 8  # 6 training images, batch 2: three iterations per epoch
# The recipe's stateful parts: the EMA (a large momentum, so that it differs visibly from the
# raw weights), AGC, and RepeatAugSampler (6 draws per epoch: 2 images, 3 times each).
RECIPE = ("optim_wrapper.update(type='AGCOptimWrapper', "
          "clip_grad=dict(type='agc', clip_factor=0.01))\n"
          "train_dataloader['sampler'] = dict(type='RepeatAugSampler', num_repeats=3, "
          "shuffle=True)\n")
HOOKS = ("dict(type='RNGStateHook'), dict(type='EMAHook', momentum=0.25, "
         "update_buffers=True, evaluate_on_origin=True)")


def train(config, work_dir, *extra):
    proc = run_py(['tools/train.py', config, '--work-dir', str(work_dir), *extra],
                  env={'PYTHONPATH': TESTS})
    return proc


def logged(work_dir):
    """``{iter: loss}`` and the validation accuracies (EMA, raw) from every run in
    ``work_dir``."""
    losses, accuracy = {}, None
    for path in sorted(glob.glob(osp.join(str(work_dir), '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            for line in f:
                record = json.loads(line)
                if 'loss' in record:
                    losses.setdefault(record['iter'], set()).add(record['loss'])
                if 'accuracy/top1' in record:
                    accuracy = record['accuracy/top1'], record['accuracy/top1_origin']
    return losses, accuracy


def weights(path, key='state_dict'):
    """``state_dict``: the EMA weights; ``ema_state_dict``: the raw ones and the EMA's step."""
    return torch.load(path, map_location='cpu', weights_only=False)[key]


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp('resume')
    data = write_image_folders(root / 'data')
    plain = write_config(root / 'plain.py', REPO, data, max_iters=MAX_ITERS,
                         extra=RECIPE + f'custom_hooks = [{HOOKS}]')
    reference = root / 'reference'
    proc = train(plain, reference)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root, data, plain, reference


def test_kill_mid_epoch_and_while_saving_then_resume_matches(setup):
    root, data, plain, reference = setup
    work = root / 'interrupted'
    imports = "custom_imports = dict(imports=['levit_mm', 'fault_hooks'])\n"
    # 1. SIGKILL before iteration index 5: the checkpoint of iteration 4 exists, iteration
    #    5 (the 2nd batch of the 2nd epoch) was trained and is lost.
    kill_mid = write_config(root / 'kill_mid.py', REPO, data, max_iters=MAX_ITERS, extra=(
        imports + RECIPE + f"custom_hooks = [{HOOKS}, "
        "dict(type='KillBeforeIterHook', at_iter=5)]"))
    proc = train(kill_mid, work)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    assert open(work / 'last_checkpoint').read().strip().endswith('iter_4.pth')

    # 2. Resume, then SIGKILL halfway through writing iter_6.pth.
    kill_save = write_config(root / 'kill_save.py', REPO, data, max_iters=MAX_ITERS, extra=(
        imports + RECIPE + f"custom_hooks = [{HOOKS}, "
        "dict(type='KillWhileSavingHook', at_iter=6)]"))
    proc = train(kill_save, work, '--resume')
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    assert 'Advance dataloader 4 steps' in proc.stdout + proc.stderr
    # The half-written file never took a checkpoint's name; "latest" is still complete.
    assert not osp.exists(work / 'iter_6.pth')
    assert osp.getsize(work / 'iter_6.pth.partial') > 0
    latest = open(work / 'last_checkpoint').read().strip()
    assert latest.endswith('iter_4.pth')
    assert weights(latest)  # loads in full
    # The outdated checkpoint is removed only after its successor is in place.
    assert osp.exists(work / 'iter_2.pth')

    # 3. Resume to the end, without faults.
    proc = train(plain, work, '--resume')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not glob.glob(str(work / '*.partial'))

    for part in ('state_dict', 'ema_state_dict'):  # EMA weights; raw weights + EMA steps
        want, got = weights(reference / f'iter_{MAX_ITERS}.pth', part), \
            weights(work / f'iter_{MAX_ITERS}.pth', part)
        assert want.keys() == got.keys()
        for key in want:
            assert torch.equal(want[key], got[key]), (part, key)
    assert int(got['steps']) == MAX_ITERS
    ema, raw = weights(work / f'iter_{MAX_ITERS}.pth'), got
    assert any(not torch.equal(v, raw['module.' + k]) for k, v in ema.items())

    ref_losses, ref_acc = logged(reference)
    run_losses, run_acc = logged(work)
    assert sorted(ref_losses) == list(range(1, MAX_ITERS + 1))
    assert sorted(run_losses) == list(range(1, MAX_ITERS + 1))
    for it, values in run_losses.items():  # replayed iterations logged the same loss too
        assert values == ref_losses[it], (it, values, ref_losses[it])
    assert ref_acc is not None and run_acc == ref_acc
