"""Checkpoints: the official, timm, Hugging Face and mmpretrain LeViT layouts to levit_mm's
(which is mmpretrain 1.2.0's), format and variant detection, safe reading, and what happens
where LeViT weights load (:mod:`.load_hooks`, :mod:`.model_loading`)."""
from .checkpoint_io import (CheckpointFormatError, CheckpointUnavailableError,
                            UnsafeCheckpointError, load_checkpoint_file,
                            mmengine_checkpoint_globals, read_state_dict, unwrap_state_dict)
from .converter import (CheckpointInfo, convert_checkpoint, convert_state_dict,
                        detect_checkpoint, detect_format, expected_tensors, foreign_to_native)
from .formats import FORMATS
from .load_hooks import LeViTPretrainedInit, prepare_on_load
from .model_loading import (CheckpointMismatchError, check_checkpoint_fits,
                            load_checkpoint_strict, prepare_checkpoint)

__all__ = ['CheckpointFormatError', 'CheckpointInfo', 'CheckpointMismatchError',
           'CheckpointUnavailableError', 'FORMATS', 'LeViTPretrainedInit',
           'UnsafeCheckpointError', 'check_checkpoint_fits', 'convert_checkpoint',
           'convert_state_dict', 'detect_checkpoint', 'detect_format', 'expected_tensors',
           'foreign_to_native', 'load_checkpoint_file', 'load_checkpoint_strict',
           'mmengine_checkpoint_globals', 'prepare_checkpoint', 'prepare_on_load',
           'read_state_dict', 'unwrap_state_dict']
