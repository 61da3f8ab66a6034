"""Datasets for the dense-prediction configs.

Nothing is imported here: each config names the module it needs in ``custom_imports``
(``levit_mm.datasets.mmdet_digit_scenes`` or ``levit_mm.datasets.mmseg_digit_scenes``), so
importing ``levit_mm`` never pulls in mmdet or mmseg.
"""
