_base_ = ['./mask-rcnn_levit-256_fpn_1x_coco.py']

model = dict(
    backbone=dict(arch='128s', init_cfg=dict(checkpoint=_base_.levit_checkpoints['128s'])),
    neck=dict(in_channels=[64, 128, 256, 384]))
