# What every detector of the digit-scenes study shares: the data (real handwritten digits on
# real photos, 256x256, written by tools/dataset_converters/make_digit_scenes.py), mmdet's
# runtime, and the backbone and schedule of digit_scenes_schedule.py. The detectors'
# `custom_imports` live here: mmengine lets only one base set it.
_base_ = [
    'mmdet::_base_/datasets/coco_instance.py', 'mmdet::_base_/default_runtime.py',
    './digit_scenes_schedule.py'
]
custom_imports = dict(imports=['levit_mm', 'levit_mm.require_mmcv_ops',
                               'levit_mm.datasets.mmdet_digit_scenes'],
                      allow_failed_imports=False)

dataset_type = 'DigitScenesDataset'
data_root = 'data/digit_scenes/'
# The scenes are written at their training size: Resize by 1.0 only records scale_factor
# (an upsampling Resize to 640 would cost 6x the compute at 256x256). Never flipped: a
# mirrored digit is another glyph or none.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale_factor=1.0),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale_factor=1.0),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
# One process per run: loading a 256x256 jpeg is a millisecond against a step of a second.
loader = dict(num_workers=0, persistent_workers=False)
train_dataloader = dict(
    batch_size=4, **loader,
    dataset=dict(type=dataset_type, data_root=data_root,
                 ann_file='annotations/instances_train.json',
                 data_prefix=dict(img='images/train/'), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4, **loader,
    dataset=dict(type=dataset_type, data_root=data_root,
                 ann_file='annotations/instances_val.json',
                 data_prefix=dict(img='images/val/'), pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json', metric='bbox')
test_evaluator = val_evaluator

# The class-agnostic task (every digit one class, 'digit'): what a *-agnostic config
# puts in place of the datasets and evaluator above.
agnostic_metainfo = dict(classes=('digit', ))
agnostic_train_dataset = dict(metainfo=agnostic_metainfo,
                              ann_file='annotations/instances_train_agnostic.json')
agnostic_val_dataset = dict(metainfo=agnostic_metainfo,
                            ann_file='annotations/instances_val_agnostic.json')
agnostic_evaluator = dict(ann_file=data_root + 'annotations/instances_val_agnostic.json')

default_hooks = dict(
    logger=dict(interval=10, log_metric_by_epoch=False),  # metrics logged by iteration
    checkpoint=dict(by_epoch=False, interval=_base_.max_iters, max_keep_ckpts=1))
log_processor = dict(by_epoch=False, window_size=10)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
