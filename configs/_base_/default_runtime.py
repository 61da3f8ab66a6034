# mmpretrain's runtime, plus the one line that makes levit_mm's modules and model names known.
_base_ = 'mmpretrain::_base_/default_runtime.py'

custom_imports = dict(imports=['levit_mm'], allow_failed_imports=False)
