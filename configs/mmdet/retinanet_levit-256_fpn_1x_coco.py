_base_ = ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py', '../_base_/levit_dense.py']

# Stem + three stages (strides 8-64) feed P3-P6; P7 is the extra conv on the input.
model = dict(
    data_preprocessor=dict(pad_size_divisor=64),
    # norm_eval: BN statistics frozen; 2 images a GPU cannot estimate them (levit_dense.py).
    backbone=dict(_base_.levit_backbone, _delete_=True, norm_eval=True),
    # No norm in the FPN or the head, as upstream RetinaNet: nothing learns batch statistics.
    neck=dict(in_channels=[128, 256, 384, 512], start_level=0, norm_cfg=None),
    bbox_head=dict(norm_cfg=None))
optim_wrapper = dict(_delete_=True, **_base_.levit_optim_wrapper)
