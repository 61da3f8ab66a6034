_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', '../_base_/levit_dense.py']

# LeViT's finest map is stride 8 (ResNet's is 4): the pyramid is P3-P7, and anchor scale 4
# keeps the upstream anchor sizes (32-512 pixels).
model = dict(
    data_preprocessor=dict(pad_size_divisor=64),
    # norm_eval: BN statistics frozen; 2 images a GPU cannot estimate them (levit_dense.py).
    backbone=dict(_base_.levit_backbone, _delete_=True, norm_eval=True),
    # No norm in the FPN or the heads, as upstream Mask R-CNN: nothing learns batch statistics.
    neck=dict(in_channels=[128, 256, 384, 512], norm_cfg=None),
    rpn_head=dict(anchor_generator=dict(scales=[4], strides=[8, 16, 32, 64, 128])),
    roi_head=dict(
        bbox_roi_extractor=dict(featmap_strides=[8, 16, 32, 64]),
        mask_roi_extractor=dict(featmap_strides=[8, 16, 32, 64])))
optim_wrapper = dict(_delete_=True, **_base_.levit_optim_wrapper)
