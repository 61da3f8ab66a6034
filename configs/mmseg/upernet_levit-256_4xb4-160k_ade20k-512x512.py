_base_ = [
    'mmseg::upernet/upernet_r50_4xb4-160k_ade20k-512x512.py', '../_base_/levit_dense.py'
]

# Stem + three stages (strides 8-64, 64x64 ... 8x8 maps on a 512 crop) feed UperNet;
# the auxiliary FCN head reads stage 1 (stride 32). The backbone's BN statistics stay the
# checkpoint's (levit_dense.py: 4 images a GPU are too few to learn them); the heads keep
# upstream's SyncBN, which pools the 16 images of the 4 GPUs (GN for a one-GPU run).
model = dict(
    pretrained=None,
    backbone=dict(_base_.levit_backbone, _delete_=True, norm_eval=True),
    # SyncBN pools the 4 GPUs' 16 images (upstream's choice); on one GPU use GN instead.
    decode_head=dict(in_channels=[128, 256, 384, 512],
                     norm_cfg=dict(type='SyncBN', requires_grad=True)),
    auxiliary_head=dict(in_channels=384, norm_cfg=dict(type='SyncBN', requires_grad=True)))
optim_wrapper = dict(
    _base_.levit_optim_wrapper, _delete_=True,
    optimizer=dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, by_epoch=False, begin=1500, end=160000)
]
