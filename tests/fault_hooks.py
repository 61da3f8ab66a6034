"""Hooks that kill their own training process with SIGKILL (imported by test configs)."""
import os
import signal

from mmengine.fileio.backends import LocalBackend
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS


def _kill_self():
    os.kill(os.getpid(), signal.SIGKILL)


@HOOKS.register_module()
class KillBeforeIterHook(Hook):
    """SIGKILL just before iteration ``at_iter`` (0-based) starts."""

    def __init__(self, at_iter: int):
        self.at_iter = at_iter

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter == self.at_iter:
            _kill_self()


@HOOKS.register_module()
class KillWhileSavingHook(Hook):
    """SIGKILL halfway through writing the checkpoint of iteration ``at_iter`` (1-based, as
    in the file name): half the bytes reach the disk, then the process dies."""

    def __init__(self, at_iter: int):
        self.at_iter = at_iter

    def before_save_checkpoint(self, runner, checkpoint):
        if checkpoint['meta'].get('iter') != self.at_iter:
            return

        def put_half_then_die(backend, obj, filepath):
            with open(filepath, 'wb') as f:
                f.write(obj[:len(obj) // 2])
                f.flush()
                os.fsync(f.fileno())
            _kill_self()

        LocalBackend.put = put_half_then_die
