# What every segmentor of the digit-scenes study shares: the label maps (0 background,
# d + 1 for digit d: the digits' own ink, not their boxes), mmseg's runtime, and the backbone
# and schedule of digit_scenes_schedule.py (custom_imports here: only one base may set it).
_base_ = [
    'mmseg::_base_/datasets/ade20k.py', 'mmseg::_base_/default_runtime.py',
    './digit_scenes_schedule.py'
]
custom_imports = dict(imports=['levit_mm', 'levit_mm.require_mmcv_ops',
                               'levit_mm.datasets.mmseg_digit_scenes'],
                      allow_failed_imports=False)

dataset_type = 'DigitScenesSegDataset'
data_root = 'data/digit_scenes/'
# Whole scenes at their own size (256x256: no padding, no resizing); no flips (a mirrored
# digit is another glyph or none).
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

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=_base_.max_iters,
                    max_keep_ckpts=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
log_processor = dict(by_epoch=False, window_size=10)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
