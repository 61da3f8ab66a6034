# Mask R-CNN + FPN with LeViT-128S on the digit scenes (ten classes), backbone from the
# digit-crops classifier that tools/dense_study.py trains.
_base_ = ['mmdet::_base_/models/mask-rcnn_r50_fpn.py', '../_base_/digit_scenes_mmdet.py']

# P3-P6 (strides 8-64) from the stem and three stages; the 48-112 px digits get RPN anchors
# of 24 px at stride 8 up to 192 px at stride 64. Slim neck and heads, fewer RoIs: CPU
# budget. No norm in the neck or heads, as upstream Mask R-CNN.
strides = [8, 16, 32, 64]
model = dict(
    data_preprocessor=dict(pad_size_divisor=64),
    # norm_eval: BN statistics frozen; 4 images a batch cannot estimate them (levit_dense.py).
    backbone=dict(_base_.levit_digits_backbone, _delete_=True, norm_eval=True),
    # norm-free neck and heads, as upstream Mask R-CNN
    neck=dict(in_channels=[64, 128, 256, 384], out_channels=96, num_outs=4, norm_cfg=None),
    rpn_head=dict(in_channels=96, feat_channels=96,
                  anchor_generator=dict(scales=[3], strides=strides)),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=96, featmap_strides=strides),
        bbox_head=dict(in_channels=96, fc_out_channels=256, num_classes=10),
        mask_roi_extractor=dict(out_channels=96, featmap_strides=strides),
        mask_head=dict(in_channels=96, conv_out_channels=96, num_convs=2, num_classes=10)),
    train_cfg=dict(rpn_proposal=dict(nms_pre=1000, max_per_img=300),
                   rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=100)))
val_evaluator = dict(metric=['bbox', 'segm'])
test_evaluator = val_evaluator
