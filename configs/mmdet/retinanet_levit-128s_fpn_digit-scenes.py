# RetinaNet + FPN with LeViT-128S on the digit scenes, backbone from the 64 px digits
# classifier (tools/dense_study.py trains it; the bias tables are resampled from its 4x4
# stage-0 grid to 24x40 at 384x640).
_base_ = ['mmdet::_base_/models/retinanet_r50_fpn.py', '../_base_/digit_scenes_mmdet.py']

# Slim neck and head for a CPU budget (a 256-channel head costs ~10x the backbone here).
# Digits are 24-96 px: anchors of 24-38 px at stride 8 up to 192-305 px at stride 64.
model = dict(
    data_preprocessor=dict(pad_size_divisor=64),
    backbone=dict(_base_.levit_digits_backbone, _delete_=True),
    neck=dict(in_channels=[64, 128, 256, 384], out_channels=96, start_level=0, num_outs=4),
    bbox_head=dict(
        num_classes=10, in_channels=96, feat_channels=96, stacked_convs=2,
        anchor_generator=dict(octave_base_scale=3, strides=[8, 16, 32, 64])))
