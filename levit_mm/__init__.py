"""levit_mm: LeViT as an mmpretrain plug-in.

Importing the package registers the LeViT backbone and head into mmpretrain's registry
(replacing mmpretrain's own namesakes) and the ``levit-*`` model names into its model hub.
mmengine's checkpoint loaders stay mmengine's: LeViT modules check and convert their own
weights as they load (:mod:`levit_mm.convert.load_hooks`).
"""
import warnings

# mmcv-lite (mmcv without compiled ops, the demo's light environment) warns on every import of
# mmpretrain that a detection op is missing; classification never uses it, and the dense
# configs say what to do instead (levit_mm.require_mmcv_ops).
warnings.filterwarnings('ignore', message='Fail to import ``MultiScaleDeformableAttention``')

from .version import __version__  # noqa: E402,F401
from .arch import ARCH_SETTINGS  # noqa: E402,F401
from .backbones import LeViT  # noqa: E402,F401
from .heads import LeViTClsHead  # noqa: E402,F401
from .classifiers import LeViTClassifier  # noqa: E402,F401
from .engine import AtomicCheckpointHook, RNGStateHook  # noqa: E402,F401
from .convert import CheckpointUnavailableError  # noqa: E402,F401
from .model_zoo import register_model_zoo  # noqa: E402,F401

__all__ = ['ARCH_SETTINGS', 'LeViT', 'LeViTClsHead', 'LeViTClassifier', 'CheckpointUnavailableError',
           'register_model_zoo', 'AtomicCheckpointHook', 'RNGStateHook', '__version__']
