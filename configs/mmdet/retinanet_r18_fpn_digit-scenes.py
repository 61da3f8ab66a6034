# The baseline: the same RetinaNet, neck, head and schedule with mmdet's stock ResNet-18,
# from scratch (no ImageNet weights offline). C3-C5 (strides 8-32) + an extra stride-64
# level give the same P3-P6 pyramid as LeViT's stem + three stages.
_base_ = ['./retinanet_levit-128s_fpn_digit-scenes.py']

model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone=dict(
        _delete_=True, type='ResNet', depth=18, num_stages=4, out_indices=(0, 1, 2, 3),
        frozen_stages=-1, norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False,
        style='pytorch', init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], start_level=1))
