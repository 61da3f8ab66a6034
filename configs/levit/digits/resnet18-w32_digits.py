# The digits teacher: an mmpretrain ResNet-18 at half width (32 base channels) that looks at
# the digits at 32x32 (a quarter of the student's pixels, so it trains in well under a
# minute). tools/digits_demo.py trains it briefly from scratch before the LeViT student;
# the student's config gives it `input_size=(32, 32)` so it sees the same 32 px view.
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

to_32px = dict(type='Resize', scale=32, interpolation='bicubic')
train_dataloader = dict(dataset=dict(pipeline=[
    dict(type='LoadImageFromFile'),
    dict(type='RandomCrop', crop_size=64, padding=6, pad_val=0),
    to_32px,
    dict(type='PackInputs'),
]))
val_dataloader = dict(dataset=dict(pipeline=[
    dict(type='LoadImageFromFile'), to_32px, dict(type='PackInputs')]))
test_dataloader = val_dataloader

train_cfg = dict(max_epochs=8, val_interval=8)
# Log every 10 iterations; keep only the final checkpoint.
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=-1, save_last=True, max_keep_ckpts=1))
randomness = dict(seed=0)  # the demo's figures are reproducible
