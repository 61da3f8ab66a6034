# The class-agnostic task: background and one class, 'digit' (every digit's ink).
_base_ = ['./fpn_levit-128s_digit-scenes.py']

# norm_eval: BN statistics frozen (4 images a batch); GN in the head (see the base).
model = dict(backbone=dict(norm_eval=True),
             decode_head=dict(num_classes=2, norm_cfg=dict(type='GN', num_groups=12,
                                                           requires_grad=True),
                              loss_decode=dict(class_weight=[0.3, 1.0])))  # as the base
metainfo = dict(classes=('background', 'digit'))
train_dataloader = dict(dataset=dict(metainfo=metainfo))
val_dataloader = dict(dataset=dict(metainfo=metainfo))
test_dataloader = val_dataloader
