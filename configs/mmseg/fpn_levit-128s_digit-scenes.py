# Semantic FPN with LeViT-128S on the digit scenes, backbone from the 64 px digits
# classifier (tools/dense_study.py trains it; bias tables resampled from 4x4 to 24x40).
_base_ = ['mmseg::_base_/models/fpn_r50.py', '../_base_/digit_scenes_mmseg.py']

# LeViT's pyramid starts at stride 8 (ResNet's at 4); slim neck and head for a CPU budget;
# plain BN (one process: SyncBN would have nothing to sync).
model = dict(
    pretrained=None,
    data_preprocessor=dict(size_divisor=64),
    backbone=dict(_base_.levit_digits_backbone, _delete_=True),
    neck=dict(in_channels=[64, 128, 256, 384], out_channels=96),
    decode_head=dict(in_channels=[96, 96, 96, 96], feature_strides=[8, 16, 32, 64],
                     channels=96, num_classes=11, norm_cfg=dict(type='BN',
                                                                requires_grad=True)))
