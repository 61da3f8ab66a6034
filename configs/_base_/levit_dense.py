# LeViT as a dense-prediction backbone: the pieces configs/mmdet and configs/mmseg share.
# They sit in variables named levit_* (mmengine forbids two bases defining one key), and
# each config picks them with `_base_.levit_backbone` / `_base_.levit_optim_wrapper`.
# levit_mm.require_mmcv_ops: one clear line (not a traceback) where mmcv lacks its compiled ops.
custom_imports = dict(imports=['levit_mm', 'levit_mm.require_mmcv_ops'],
                      allow_failed_imports=False)

# ImageNet classification weights (configs/levit/metafile.yml); prefix='backbone.' takes the
# backbone out of a classifier checkpoint, whose 224 bias tables serve any input size.
levit_checkpoints = {
    '128s': 'https://download.openmmlab.com/mmclassification/v0/levit/levit-128s_3rdparty_in1k_20230117-e9fbd209.pth',  # noqa: E501
    '128': 'https://download.openmmlab.com/mmclassification/v0/levit/levit-128_3rdparty_in1k_20230117-3be02a02.pth',  # noqa: E501
    '192': 'https://download.openmmlab.com/mmclassification/v0/levit/levit-192_3rdparty_in1k_20230117-8217a0f9.pth',  # noqa: E501
    '256': 'https://download.openmmlab.com/mmclassification/v0/levit/levit-256_3rdparty_in1k_20230117-5ae2ce7d.pth',  # noqa: E501
    '384': 'https://download.openmmlab.com/mmclassification/v0/levit/levit-384_3rdparty_in1k_20230117-f3539cce.pth',  # noqa: E501
}

# 'mmpretrain.LeViT': levit_mm registers into mmpretrain's registry (replacing its LeViT),
# which mmdet/mmseg reach through the scope prefix. Outputs: the stride-8 stem map (C0/2
# channels) and the three stages at strides 16, 32, 64 (C0, C1, C2 channels).
levit_backbone = dict(
    type='mmpretrain.LeViT',
    arch='256',
    img_size=224,  # the bias tables' trained grid, as in the checkpoint
    out_indices=('stem', 0, 1, 2),
    drop_path_rate=0.1,
    # BatchNorm statistics stay those of the checkpoint (eval mode while training; the
    # affine weights still learn). Dense batches hold 2-16 images per process, and LeViT's
    # last stage has only a few dozen tokens per image, so statistics of the batch would
    # describe the batch, not the data: a network trained on them leans on them, and its
    # running averages then miss any single image's by many standard deviations in eval
    # mode. mmdet/mmseg keep a BN backbone frozen this way for the same reason.
    norm_eval=True,
    init_cfg=dict(type='Pretrained', checkpoint=levit_checkpoints['256'],
                  prefix='backbone.'))

# AdamW as for other transformer backbones; no weight decay on BN or bias tables.
levit_optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0., custom_keys={'attention_biases': dict(decay_mult=0.)}))
