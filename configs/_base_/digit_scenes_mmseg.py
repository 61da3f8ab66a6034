# What every segmentor of the digit-scenes study shares: the label maps (0 background,
# d + 1 for digit d: the digits' own ink, not their boxes), a short CPU schedule, mmseg's
# runtime and the LeViT pieces of levit_dense.py (one base: only one may set custom_imports).
_base_ = [
    'mmseg::_base_/datasets/ade20k.py', 'mmseg::_base_/default_runtime.py',
    './levit_dense.py'
]
custom_imports = dict(imports=['levit_mm', 'levit_mm.require_mmcv_ops',
                               'levit_mm.datasets.mmseg_digit_scenes'],
                      allow_failed_imports=False)

# The digits classifier of tools/digits_demo.py (see digit_scenes_mmdet.py).
levit_digits_checkpoint = 'work_dirs/digits/levit-128s_digits.pth'
levit_digits_backbone = dict(
    _base_.levit_backbone, arch='128s', img_size=64, drop_path_rate=0., norm_eval=False,
    init_cfg=dict(type='Pretrained', checkpoint=levit_digits_checkpoint,
                  prefix='backbone.'))

dataset_type = 'DigitScenesSegDataset'
data_root = 'data/digit_scenes/'
# Whole scenes at their own size; no flips (a mirrored digit is another glyph or none).
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
test_pipeline = train_pipeline
loader = dict(num_workers=0, persistent_workers=False)
train_dataloader = dict(
    batch_size=4, **loader,
    dataset=dict(type=dataset_type, data_root=data_root,
                 data_prefix=dict(img_path='images/train', seg_map_path='seg/train'),
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, **loader,
    dataset=dict(type=dataset_type, data_root=data_root,
                 data_prefix=dict(img_path='images/val', seg_map_path='seg/val'),
                 pipeline=test_pipeline))
test_dataloader = val_dataloader

max_iters = 600
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    _base_.levit_optim_wrapper, optimizer=dict(type='AdamW', lr=4e-4, weight_decay=0.05),
    clip_grad=dict(max_norm=10, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', eta_min_ratio=0.01, by_epoch=False, begin=0,
         end=max_iters)
]
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters,
                    max_keep_ckpts=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
log_processor = dict(by_epoch=False, window_size=10)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
