"""mmpretrain's ``EMAHook`` with weight swaps that caches can see.

The hook evaluates the EMA weights by swapping them into the model in place.  mmengine does
that through ``param.data.copy_()``, which leaves the tensor's version counter unchanged, so
a cache keyed on it -- LeViT's per-grid attention-bias tensors -- still holds the bias made
from the weights swapped out: whichever copy is evaluated right after the other one gets
the other's bias tables (with ``evaluate_on_origin=True``, the raw weights were scored with
the EMA tables after every validation).  Here every
swap or copy between the two copies is an in-place copy under ``no_grad`` on the tensors
themselves, which bumps their versions.

One more difference, for ``tools/test.py``, which loads a checkpoint itself (its
``state_dict`` holds the EMA weights; the raw ones sit in ``ema_state_dict``): when the EMA
copy was never updated or loaded in this process, it is the very weights under test, so the
test neither swaps nor repeats the pass as "origin" (that second pass would report the EMA
weights under the raw weights' name at twice the cost).
"""
import torch
from mmengine.logging import MMLogger
from mmpretrain.engine.hooks import EMAHook
from mmpretrain.registry import HOOKS


@HOOKS.register_module()
class LeViTEMAHook(EMAHook):
    """``EMAHook`` (same arguments) whose swaps bump tensor versions; see module doc."""

    def _swap_ema_parameters(self) -> None:
        with torch.no_grad():
            for avg, src in zip(self._ema_params, self._src_params):
                held = avg.clone()
                avg.copy_(src)
                src.copy_(held)

    def _copy_ema_to_model(self) -> None:
        with torch.no_grad():
            for avg, src in zip(self._ema_params, self._src_params):
                src.copy_(avg)

    def before_train(self, runner) -> None:
        # The parent copies loaded EMA weights into the model through `.data`; redo it so
        # that the copy is visible to version-keyed caches (same values).
        super().before_train(runner)
        if not runner._resume and self.load_ema_from_ckpt:
            self._copy_ema_to_model()

    def _ema_is_model(self) -> bool:
        """True while the EMA copy is the model's own weights, as taken at ``before_run``
        (never updated, never loaded from a checkpoint)."""
        return int(self.ema_model.steps) == 0 and not self.load_ema_from_ckpt

    def before_test_epoch(self, runner) -> None:
        if self._ema_is_model():
            MMLogger.get_current_instance().info(
                'Testing the loaded weights (a checkpoint trained with EMA holds the EMA '
                'weights in its state_dict).')
            return
        super().before_test_epoch(runner)

    def after_test_epoch(self, runner, metrics=None) -> None:
        if self._ema_is_model():
            return
        super().after_test_epoch(runner, metrics)
