# mmpretrain's runtime, plus the one line that makes levit_mm's modules and model names known.
_base_ = 'mmpretrain::_base_/default_runtime.py'

custom_imports = dict(imports=['levit_mm'], allow_failed_imports=False)

# Checkpoints that a kill cannot corrupt, random states saved with them for exact resume, and
# `load_from` a bare timm/official/HF state dict with an EMA hook on (levit_mm/engine). Same
# options as mmengine's CheckpointHook.
default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook'))
custom_hooks = [dict(type='RNGStateHook'), dict(type='PlainCheckpointHook')]
