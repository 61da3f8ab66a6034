# RetinaNet + FPN with LeViT-128S on the digit scenes (ten classes), backbone from the
# digit-crops classifier that tools/dense_study.py trains.
_base_ = ['mmdet::_base_/models/retinanet_r50_fpn.py', '../_base_/digit_scenes_mmdet.py']

# The stem's stride-8 map and the three stages (strides 16-64) feed P3-P6. Slim neck and
# head for a CPU budget (a 256-channel head costs ~10x the backbone here). The 48-112 px
# digits meet anchors of 48-76 px at stride 16 and 96-152 px at stride 32 (24-38 px at
# stride 8 for thin or cut digits). No norm in the neck or head, as upstream RetinaNet.
model = dict(
    data_preprocessor=dict(pad_size_divisor=64),
    # norm_eval: BN statistics frozen; 4 images a batch cannot estimate them (levit_dense.py).
    backbone=dict(_base_.levit_digits_backbone, _delete_=True, norm_eval=True),
    neck=dict(in_channels=[64, 128, 256, 384], out_channels=96, start_level=0, num_outs=4,
              norm_cfg=None),  # norm-free neck and head, as upstream RetinaNet
    bbox_head=dict(
        norm_cfg=None,
        num_classes=10, in_channels=96, feat_channels=96, stacked_convs=2,
        anchor_generator=dict(octave_base_scale=3, strides=[8, 16, 32, 64])))
