# LeViT classifier. The variant configs set `backbone.arch` and `head.in_channels`.
model = dict(
    type='LeViTClassifier',
    backbone=dict(
        type='LeViT',
        arch='128s',
        img_size=224,
        drop_path_rate=0.,
        out_indices=(2, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LeViTClsHead',
        num_classes=1000,
        in_channels=384,
        distillation=True,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, loss_weight=1.0),
        topk=(1, 5)),
    train_cfg=dict(augments=[
        dict(type='Mixup', alpha=0.8),
        dict(type='CutMix', alpha=1.0),
    ]))
