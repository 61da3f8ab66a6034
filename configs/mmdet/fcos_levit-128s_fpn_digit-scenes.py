# FCOS (center sampling, GIoU, centerness on the regression branch, as mmdet's improved
# recipe) + FPN with LeViT-128S on the digit scenes, backbone from the digit-crops
# classifier. GN in the head, as upstream FCOS: at 2-4 images a batch, BN statistics of the
# batch would not be those of one image at test time. mmdet ships FCOS only as whole COCO
# configs (no model base), so the model is stated here and the data, schedule and runtime
# come from the study's base.
_base_ = ['../_base_/digit_scenes_mmdet.py']

model = dict(
    type='FCOS',
    data_preprocessor=dict(
        type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_size_divisor=64),
    # norm_eval: BN statistics frozen; 4 images a batch cannot estimate them (levit_dense.py).
    backbone=dict(_base_.levit_digits_backbone, norm_eval=True),
    neck=dict(type='FPN', in_channels=[64, 128, 256, 384], out_channels=96, start_level=0,
              num_outs=4),
    # Digits are 48-112 px: points up to 32 px from a side regress at stride 8, and so on.
    bbox_head=dict(
        type='FCOSHead', num_classes=10, in_channels=96, stacked_convs=2, feat_channels=96,
        strides=[8, 16, 32, 64], regress_ranges=((-1, 32), (32, 64), (64, 128), (128, 1e8)),
        norm_cfg=dict(type='GN', num_groups=32, requires_grad=True), norm_on_bbox=True,
        centerness_on_reg=True, center_sampling=True, conv_bias=True,
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                      loss_weight=1.0),
        loss_bbox=dict(type='GIoULoss', loss_weight=1.0),
        loss_centerness=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)),
    test_cfg=dict(nms_pre=1000, min_bbox_size=0, score_thr=0.05,
                  nms=dict(type='nms', iou_threshold=0.6), max_per_img=100))
