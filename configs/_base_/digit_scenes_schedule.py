# What the detectors and segmentors of the digit-scenes study share: the LeViT-128S backbone
# from the digit-crops classifier, the optimizer and a short iteration schedule. Runtime
# keys (hooks, env, logging) stay in the task bases: mmengine refuses a key that two
# sibling bases both define, and mmdet's / mmseg's default_runtime define them.
_base_ = ['./levit_dense.py']

# The classifier tools/dense_study.py pretrains: LeViT-128S on 128 px photo crops that
# hold one digit each, drawn as the scenes draw them (48-112 px, same inks and grounds), so
# the backbone already tells the digits apart at the scenes' scale. img_size=256: bias
# tables of the 256x256 canvases' own grids (16x16 at stage 0); the 128 px crops train
# their offsets 0-7 exactly (no resampling between pretraining and the scenes).
levit_digits_checkpoint = 'work_dirs/dense_study/pretrain/levit_crops.pth'
levit_digits_backbone = dict(
    _base_.levit_backbone, arch='128s', img_size=256, drop_path_rate=0.,
    # BN statistics frozen (see levit_dense.py): at 2-4 images a batch, statistics of the
    # batch would be learnt and then missing at test time.
    norm_eval=True,
    init_cfg=dict(type='Pretrained', checkpoint=levit_digits_checkpoint,
                  prefix='backbone.'))

max_iters = 800
val_interval = 200  # the learning curve: the validation split every 200 iterations
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=val_interval)
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

# The baseline backbone: mmdet's stock ResNet-18 from the same digit-crops pretraining (an
# mmpretrain ResNet-18 classifier; its keys are mmdet's), BN statistics frozen as above
# and as upstream's pretrained ResNets. C3-C5 (strides 8-32) + FPN's extra stride-64 level
# give the same P3-P6 pyramid as LeViT's stem + three stages.
resnet18_digits_checkpoint = 'work_dirs/dense_study/pretrain/resnet18_crops.pth'
resnet18_digits_backbone = dict(
    type='ResNet', depth=18, num_stages=4, out_indices=(0, 1, 2, 3), frozen_stages=-1,
    norm_cfg=dict(type='BN', requires_grad=True), norm_eval=True, style='pytorch',
    init_cfg=dict(type='Pretrained', checkpoint=resnet18_digits_checkpoint,
                  prefix='backbone.'))
