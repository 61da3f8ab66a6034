# The baseline: the same RetinaNet, neck, head and schedule with mmdet's stock ResNet-18
# from the same digit-crops pretraining (see digit_scenes_schedule.py).
_base_ = ['./retinanet_levit-128s_fpn_digit-scenes.py']

model = dict(data_preprocessor=dict(pad_size_divisor=32),
             # norm_eval: BN statistics frozen (4 images a batch), as upstream's ResNets
             backbone=dict(_base_.resnet18_digits_backbone, _delete_=True, norm_eval=True),
             neck=dict(in_channels=[64, 128, 256, 512], start_level=1,
                       norm_cfg=None))  # norm-free neck and head, as upstream
