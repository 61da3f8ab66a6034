# The digits teacher: an mmpretrain ResNet-18 at half width (32 base channels), trained
# briefly from scratch by tools/digits_demo.py before the LeViT student.
_base_ = [
    '../../_base_/datasets/digits_bs64_64px.py',
    '../../_base_/schedules/digits_adamw_short.py',
    '../../_base_/default_runtime.py',
]

model = dict(
    type='ImageClassifier',
    backbone=dict(type='ResNet', depth=18, base_channels=32, out_indices=(3, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=10, in_channels=256,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, )))
train_cfg = dict(max_epochs=8, val_interval=8)
# Log every 10 iterations; keep only the final checkpoint.
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=-1, save_last=True, max_keep_ckpts=1))
