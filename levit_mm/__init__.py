"""levit_mm: LeViT as an mmpretrain plug-in.

Importing the package registers the LeViT backbone and head into mmpretrain's registry
(replacing mmpretrain's own namesakes), the ``levit-*`` model names into its model hub, and
levit_mm's checkpoint handling into mmengine's loaders (foreign layouts converted, NaN/Inf
weights refused; see :mod:`levit_mm.convert.model_loading`).
"""
from .version import __version__  # noqa: F401
from .arch import ARCH_SETTINGS  # noqa: F401
from .backbones import LeViT  # noqa: F401
from .heads import LeViTClsHead  # noqa: F401
from .classifiers import LeViTClassifier  # noqa: F401
from .engine import AtomicCheckpointHook, RNGStateHook  # noqa: F401
from .convert import CheckpointUnavailableError  # noqa: F401
from .model_zoo import register_model_zoo  # noqa: F401

__all__ = ['ARCH_SETTINGS', 'LeViT', 'LeViTClsHead', 'LeViTClassifier', 'CheckpointUnavailableError',
           'register_model_zoo', 'AtomicCheckpointHook', 'RNGStateHook', '__version__']
