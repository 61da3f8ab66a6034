"""``save_best`` through AtomicCheckpointHook: the previous best checkpoint is removed only
after the new one is complete, so a failure while writing never leaves no best at all."""
import errno
import os.path as osp

import pytest
from mmengine.logging import MessageHub, MMLogger

from levit_mm.engine.atomic_checkpoint import AtomicCheckpointHook
from levit_mm.fileio import OutputWriteError

COMPLETE = b'a complete checkpoint'


class FakeRunner:
    """What the hook touches of a Runner; ``save_checkpoint`` writes a few bytes and can be
    told to fail halfway (a full disk, a kill)."""

    def __init__(self, work_dir, name):
        self.work_dir = str(work_dir)
        self.epoch, self.iter = 0, 0
        self.message_hub = MessageHub.get_instance(name)
        self.logger = MMLogger.get_instance(name, log_level='WARNING')
        self.fail = False

    def save_checkpoint(self, out_dir, filename, *args, **kwargs):
        with open(osp.join(out_dir, filename), 'wb') as f:
            f.write(COMPLETE[:5])
            if self.fail:
                raise OSError(errno.ENOSPC, 'No space left on device')
            f.write(COMPLETE[5:])


def make(tmp_path, name):
    runner = FakeRunner(tmp_path, name)
    hook = AtomicCheckpointHook(interval=1, by_epoch=False, save_best='acc', rule='greater')
    hook.before_train(runner)
    return hook, runner


def validate(hook, runner, at_iter, acc):
    runner.iter = at_iter
    hook._save_best_checkpoint(runner, {'acc': acc})


def read(path):
    with open(path, 'rb') as f:
        return f.read()


def test_new_best_replaces_old_only_when_complete(tmp_path):
    hook, runner = make(tmp_path, 'best-ok')
    validate(hook, runner, 2, 0.5)
    validate(hook, runner, 4, 0.4)  # not better: nothing changes
    validate(hook, runner, 6, 0.9)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ['best_acc_iter_6.pth']
    assert read(tmp_path / 'best_acc_iter_6.pth') == COMPLETE
    assert runner.message_hub.get_info('best_ckpt') == str(tmp_path / 'best_acc_iter_6.pth')


def test_failed_save_keeps_previous_best(tmp_path):
    hook, runner = make(tmp_path, 'best-fail')
    validate(hook, runner, 2, 0.5)
    runner.fail = True
    with pytest.raises(OutputWriteError) as failure:
        validate(hook, runner, 4, 0.7)
    # named after the checkpoint it was writing, not its partial file
    assert failure.value.errno == errno.ENOSPC
    assert failure.value.filename == str(tmp_path / 'best_acc_iter_4.pth')
    assert read(tmp_path / 'best_acc_iter_2.pth') == COMPLETE
    # the half-written .partial is removed at once (a full disk stays no fuller)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['best_acc_iter_2.pth']
