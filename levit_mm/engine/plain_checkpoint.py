"""``load_from`` a bare state dict (timm, the official ``{'model': ...}``, Hugging Face) in a
run whose hooks read ``checkpoint['state_dict']``.

mmengine calls every hook's ``after_load_checkpoint`` with the file as read, before the
model loads it; its ``EMAHook`` then copies ``checkpoint['state_dict']`` into the EMA model,
a key that only mmengine-written files have.  This hook runs first and gives such a file
that key (its tensors as they are: the LeViT modules convert foreign layouts as they load),
so the EMA copy and the model receive the same weights.  Files with the key are untouched.
"""
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS

from ..convert import CheckpointFormatError, unwrap_state_dict


@HOOKS.register_module()
class PlainCheckpointHook(Hook):
    priority = 'VERY_HIGH'  # before the EMA hook reads the checkpoint

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if 'state_dict' in checkpoint:
            return
        try:
            checkpoint['state_dict'] = unwrap_state_dict(checkpoint)
        except CheckpointFormatError:
            pass  # not a state dict: mmengine reports it as it would
