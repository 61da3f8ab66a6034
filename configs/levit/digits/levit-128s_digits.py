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

# The official recipe's adaptive gradient clipping and weight EMA (see the ImageNet configs).
# The EMA horizon keeps the official ratio to the run: 1 / (1 - 0.99996) = 25k iterations is
# 4% of 1000 x 625; 4% of these 25 x 23 iterations is about one epoch, so momentum 0.04.
# Validation reports the EMA weights (accuracy/top1, also what checkpoints hold) and the raw
# ones (accuracy/top1_origin). Repeated augmentation is left out: without random
# augmentation in this pipeline, the three copies of an image would be identical.
optim_wrapper = dict(type='AGCOptimWrapper',
                     clip_grad=dict(type='agc', clip_factor=0.01, eps=1e-3))
custom_hooks = _base_.custom_hooks + [
    dict(type='EMAHook', momentum=0.04, update_buffers=True, evaluate_on_origin=True),
]
