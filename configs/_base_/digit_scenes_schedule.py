# What the detectors and segmentors of the digit-scenes study share: the LeViT-128S backbone
# from the digits classifier, the optimizer and a short iteration schedule (the study sets
# max_iters to fit its CPU budget). Runtime keys (hooks, env, logging) stay in the task bases:
# mmengine refuses a key that two sibling bases both define, and mmdet's / mmseg's
# default_runtime define them.
_base_ = ['./levit_dense.py']

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
