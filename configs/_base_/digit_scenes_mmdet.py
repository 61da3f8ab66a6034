# What every detector of the digit-scenes study shares: the data (real handwritten digits on
# real photos, 384x640 and 640x384, written by tools/dataset_converters/make_digit_scenes.py),
# mmdet's runtime, and the backbone and schedule of digit_scenes_schedule.py. The detectors'
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
# The scenes are written at their training size (Resize to 640 is the identity; it only
# records scale_factor), and never flipped: a mirrored digit is another glyph or none.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(640, 640), keep_ratio=True),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(640, 640), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
# One process per run: loading a 384x640 jpeg is a few ms against a training step of seconds.
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

default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(by_epoch=False, interval=_base_.max_iters, max_keep_ckpts=1))
log_processor = dict(by_epoch=False, window_size=10)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
