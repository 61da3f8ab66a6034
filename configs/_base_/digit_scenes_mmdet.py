# What every detector of the digit-scenes study shares: the data (real handwritten digits on
# real photos, 384x640 and 640x384, written by tools/dataset_converters/make_digit_scenes.py),
# a short CPU schedule, mmdet's runtime, and the LeViT pieces of levit_dense.py. It is one
# base rather than three because mmengine lets only one base set `custom_imports`.
_base_ = [
    'mmdet::_base_/datasets/coco_instance.py', 'mmdet::_base_/default_runtime.py',
    './levit_dense.py'
]
custom_imports = dict(imports=['levit_mm', 'levit_mm.require_mmcv_ops',
                               'levit_mm.datasets.mmdet_digit_scenes'],
                      allow_failed_imports=False)

# The digits classifier of tools/digits_demo.py (64 px, so its stage-0 bias tables cover a
# 4x4 grid; a 384x640 image has a 24x40 one).
levit_digits_checkpoint = 'work_dirs/digits/levit-128s_digits.pth'
levit_digits_backbone = dict(
    _base_.levit_backbone, arch='128s', img_size=64, drop_path_rate=0.,
    # BN statistics of 64 px digits on black do not describe photos; LeViT's BNs see every
    # token of the batch (thousands per step), so they can keep training.
    norm_eval=False,
    init_cfg=dict(type='Pretrained', checkpoint=levit_digits_checkpoint,
                  prefix='backbone.'))

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

# Iterations, not epochs: the study sets max_iters to fit its CPU budget.
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
    logger=dict(interval=10),
    checkpoint=dict(by_epoch=False, interval=max_iters, max_keep_ckpts=1))
log_processor = dict(by_epoch=False, window_size=10)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
