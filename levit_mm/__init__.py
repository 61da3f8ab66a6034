"""levit_mm: LeViT as an mmpretrain plug-in.

Importing the package registers the LeViT backbone and head into mmpretrain's registry
(replacing mmpretrain's own namesakes) and the ``levit-*`` model names into its model hub.
"""
from .version import __version__  # noqa: F401
from .backbones import ARCH_SETTINGS, LeViT  # noqa: F401
from .heads import LeViTClsHead  # noqa: F401
from .classifiers import LeViTClassifier  # noqa: F401
from .engine import AtomicCheckpointHook, RNGStateHook  # noqa: F401
from .model_zoo import CheckpointUnavailableError, register_model_zoo  # noqa: F401

__all__ = ['ARCH_SETTINGS', 'LeViT', 'LeViTClsHead', 'LeViTClassifier', 'CheckpointUnavailableError',
           'register_model_zoo', 'AtomicCheckpointHook', 'RNGStateHook', '__version__']
