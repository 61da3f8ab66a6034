"""Checkpoints that are complete or absent, and a ``last_checkpoint`` that never lies.

mmengine's ``CheckpointHook`` writes ``iter_N.pth`` in place, deletes the oldest kept
checkpoint *before* writing the new one, and rewrites the ``last_checkpoint`` pointer in
place.  A kill at the wrong moment can therefore leave a truncated checkpoint, an empty
pointer (resume then silently starts from scratch), or a pointer to a deleted file.

:class:`AtomicCheckpointHook` keeps the parent's options and file names but orders the work
so that every state on disk is usable: the checkpoint is written to ``<name>.partial``,
flushed to disk and renamed into place (``os.replace`` is atomic on POSIX), then the pointer
is replaced the same way, and only then is the outdated checkpoint removed.  A save that
fails (a full disk, a quota) removes its ``*.partial`` file at once and raises
:class:`~levit_mm.fileio.OutputWriteError` naming the checkpoint; leftovers of a killed run
are removed when training starts.  :class:`AtomicDumpResults` does the same for the
predictions ``tools/test.py --out ... --out-item pred`` dumps.
"""
import contextlib
import glob
import os
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.evaluator import DumpResults
from mmengine.fileio import dump
from mmengine.fileio.backends import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log
from mmpretrain.registry import HOOKS, METRICS

from ..fileio import PARTIAL_SUFFIX, atomic_output, output_errors, publish_file, write_text_atomic


@contextlib.contextmanager
def _shadowed(obj, name: str, value):
    """Set ``obj.name = value`` for the length of a ``with`` block, then restore it."""
    own = name in vars(obj)
    before = vars(obj).get(name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        if own:
            setattr(obj, name, before)
        else:
            delattr(obj, name)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` (same arguments) whose checkpoint and pointer writes are atomic.

    Only local directories are handled this way; other backends (``backend_args``) fall
    back to the parent's behaviour.  Best checkpoints (``save_best``) follow the same order:
    the new ``best_*`` file is published complete, and only then is the previous one
    removed (the parent removes it first, so a failure while saving left no best at all).
    """

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if is_main_process() and self._is_local():
            for leftover in glob.glob(osp.join(glob.escape(self.out_dir),
                                               f'*{PARTIAL_SUFFIX}')):
                os.remove(leftover)
            for pointer in glob.glob(osp.join(glob.escape(runner.work_dir),
                                              f'last_checkpoint*{PARTIAL_SUFFIX}')):
                os.remove(pointer)

    def _save_best_checkpoint(self, runner, metrics) -> None:
        if not (self.save_best and self._is_local()):
            return super()._save_best_checkpoint(runner, metrics)
        # The parent's bookkeeping (rules, scores, message hub) is kept as it is; only its
        # two file operations change, for the length of this call: removing the previous
        # best is deferred, and the new best is written through a partial file.
        backend, save = self.file_backend, runner.save_checkpoint
        deferred = []

        def save_published(out_dir, filename, *args, **kwargs):
            if not filename.startswith('best_'):
                return save(out_dir, filename, *args, **kwargs)
            final = osp.join(out_dir, filename)
            with output_errors(final, partial=final + PARTIAL_SUFFIX):
                save(out_dir, filename + PARTIAL_SUFFIX, *args, **kwargs)
                if is_main_process():
                    publish_file(final + PARTIAL_SUFFIX, final)

        with _shadowed(backend, 'remove', deferred.append), \
                _shadowed(runner, 'save_checkpoint', save_published):
            super()._save_best_checkpoint(runner, metrics)
        current = {getattr(self, 'best_ckpt_path', None),
                   *getattr(self, 'best_ckpt_path_dict', {}).values()}
        for path in deferred:
            if path not in current and osp.isfile(path):
                os.remove(path)

    def _is_local(self) -> bool:
        return isinstance(self.file_backend, LocalBackend)

    def _save_checkpoint_with_step(self, runner, step, meta):
        if not self._is_local():
            return super()._save_checkpoint_with_step(runner, step, meta)
        outdated = self._rotate_kept_ids(runner, step)
        filename = self.filename_tmpl.format(step)
        final = osp.join(self.out_dir, filename)
        self.last_ckpt = final
        runner.message_hub.update_info('last_ckpt', final)
        # Runner.save_checkpoint writes on the main process only.
        with output_errors(final, partial=final + PARTIAL_SUFFIX):
            runner.save_checkpoint(
                self.out_dir, filename + PARTIAL_SUFFIX, self.file_client_args,
                save_optimizer=self.save_optimizer,
                save_param_scheduler=self.save_param_scheduler, meta=meta,
                by_epoch=self.by_epoch, backend_args=self.backend_args, **self.args)
            if not is_main_process():
                return
            publish_file(final + PARTIAL_SUFFIX, final)
        write_text_atomic(osp.join(runner.work_dir, 'last_checkpoint'), final)
        if outdated is not None and outdated != final and osp.isfile(outdated):
            os.remove(outdated)

    def _rotate_kept_ids(self, runner, step):
        """Record ``step`` among the kept checkpoints (``max_keep_ckpts``); return the path
        of the checkpoint that falls out, to be removed once the new one is in place."""
        if self.max_keep_ckpts <= 0:
            return None
        if self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step:
            return None
        outdated = None
        if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
            oldest = self.keep_ckpt_ids.popleft()
            outdated = osp.join(self.out_dir, self.filename_tmpl.format(oldest))
        self.keep_ckpt_ids.append(step)
        runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        return outdated


@METRICS.register_module()
class AtomicDumpResults(DumpResults):
    """``DumpResults`` (same arguments) whose pickle appears complete or not at all."""

    def compute_metrics(self, results: list) -> dict:
        with atomic_output(self.out_file_path, '.pkl') as tmp:
            dump(results, tmp, file_format='pkl')
        print_log(f'Results has been saved to {self.out_file_path}.', logger='current')
        return {}
