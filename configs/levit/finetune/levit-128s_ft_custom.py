# Fine-tune the ImageNet LeViT-128S on your own classes, without a teacher.
# Data: mmpretrain's CustomDataset folder layout, one sub-folder per class:
#   data/custom/train/<class_name>/*.jpg    data/custom/val/<class_name>/*.jpg
# Set `num_classes` below (it appears in the head and the data preprocessor), then
#   python tools/train.py configs/levit/finetune/levit-128s_ft_custom.py
_base_ = '../levit-128s_8xb256_in1k.py'

num_classes = 10
data_root = 'data/custom'
pretrained = ('https://download.openmmlab.com/mmclassification/v0/levit/'
              'levit-128s_3rdparty_in1k_20230117-e9fbd209.pth')

model = dict(
    # Only the backbone comes from the ImageNet checkpoint; the head is new (its class count
    # changed), so it keeps its fresh initialisation.
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    head=dict(num_classes=num_classes, distill_type='none', topk=(1, )),
    teacher=None)
data_preprocessor = dict(num_classes=num_classes)

train_dataloader = dict(
    batch_size=64,
    dataset=dict(_delete_=True, type='CustomDataset', data_root=data_root, data_prefix='train',
                 pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(
    batch_size=64,
    dataset=dict(_delete_=True, type='CustomDataset', data_root=data_root, data_prefix='val',
                 pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator

# A short fine-tuning schedule: lower lr, 2 warm-up epochs, 30 epochs in all.
optim_wrapper = dict(optimizer=dict(lr=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, end=2, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=True, begin=2),
]
train_cfg = dict(max_epochs=30, val_interval=1)
auto_scale_lr = dict(base_batch_size=64)

# The rest of the official recipe comes with the ImageNet config: AGC (clip factor 0.01),
# repeated augmentation (3 copies per image; `train_dataloader.sampler` switches it back to
# DefaultSampler) and the weight EMA. The EMA's horizon must fit this shorter run: the
# official one, 1 / (1 - 0.99996) = 25k iterations, is 4% of its run; momentum
# 1 / (0.04 x total iterations) keeps that ratio. 5e-3 suits ~5k iterations (30 epochs of
# ~10k images at batch 64); scale it to your data. Validation shows EMA and raw weights.
custom_hooks = [  # the base's hooks with this EMA's momentum
    dict(type='RNGStateHook'),
    dict(type='PlainCheckpointHook'),
    dict(type='EMAHook', momentum=5e-3, update_buffers=True, evaluate_on_origin=True),
]
