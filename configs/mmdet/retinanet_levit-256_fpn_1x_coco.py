_base_ = ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py', '../_base_/levit_dense.py']

# Stem + three stages (strides 8-64) feed P3-P6; P7 is the extra conv on the input.
model = dict(
    data_preprocessor=dict(pad_size_divisor=64),
    backbone=dict(_delete_=True, **_base_.levit_backbone),
    neck=dict(in_channels=[128, 256, 384, 512], start_level=0))
optim_wrapper = dict(_delete_=True, **_base_.levit_optim_wrapper)
