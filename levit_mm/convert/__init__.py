"""Checkpoint conversion: official, timm, Hugging Face and mmpretrain LeViT layouts to
levit_mm's (which is mmpretrain 1.2.0's), with format and variant detection."""
from .checkpoint_io import (UnsafeCheckpointError, load_checkpoint_file,
                            save_checkpoint_atomic)
from .converter import (CheckpointFormatError, CheckpointInfo, convert_checkpoint,
                        convert_state_dict, detect_checkpoint, detect_format,
                        expected_tensors, is_native_layout, unwrap_state_dict)
from .formats import FORMATS
from .layout import levit_units
from .model_loading import convert_on_load, load_foreign_pretrained

__all__ = ['CheckpointFormatError', 'CheckpointInfo', 'FORMATS', 'UnsafeCheckpointError',
           'convert_checkpoint', 'convert_state_dict', 'convert_on_load',
           'detect_checkpoint', 'detect_format', 'expected_tensors', 'is_native_layout',
           'levit_units', 'load_checkpoint_file', 'load_foreign_pretrained',
           'save_checkpoint_atomic', 'unwrap_state_dict']
