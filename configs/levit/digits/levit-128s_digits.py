# LeViT-128S from scratch on the 64x64 digits, without a teacher (both heads learn the labels).
_base_ = [
    '../../_base_/models/levit.py',
    '../../_base_/datasets/digits_bs64_64px.py',
    '../../_base_/schedules/digits_adamw_short.py',
    '../../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(arch='128s', img_size=64),
    # Plain cross-entropy: label smoothing slows a 20-epoch run on 10 classes.
    head=dict(num_classes=10, in_channels=384, distill_type='none', topk=(1, ),
              loss=dict(_delete_=True, type='CrossEntropyLoss', loss_weight=1.0)),
    teacher=None,
    train_cfg=None)  # no Mixup/CutMix on 1,437 tiny images
# No random shifts either: in 20 epochs they cost more than they regularise.
train_dataloader = dict(dataset=dict(pipeline={{_base_.test_pipeline}}))
# Log every 10 iterations; keep only the final checkpoint.
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=-1, save_last=True, max_keep_ckpts=1))
train_cfg = dict(max_epochs=25, val_interval=5)
randomness = dict(seed=0)  # the demo's figures are reproducible
