# LeViT classifier. The variant configs set `backbone.arch` and `head.in_channels`.
model = dict(
    type='LeViTClassifier',
    backbone=dict(
        type='LeViT',
        arch='128s',
        img_size=224,
        drop_path_rate=0.,  # official: 0, and 0.1 for LeViT-384 (its config sets it)
        out_indices=(2, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LeViTClsHead',
        num_classes=1000,
        in_channels=384,
        distillation=True,
        distill_type='hard',  # the paper: DeiT hard distillation, alpha 0.5
        distill_alpha=0.5,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, loss_weight=1.0),
        topk=(1, 5)),
    # The paper's teacher: DeiT's RegNetY-16GF (82.9% top-1), timm's `regnety_160` through
    # mmpretrain's TimmClassifier. Built at the first training step only (never for
    # inference), frozen, never saved with the student. Same ImageNet normalisation as the
    # student, so it gets the student's tensors as they are.
    teacher=dict(
        model=dict(type='TimmClassifier', model_name='regnety_160', num_classes=1000),
        checkpoint='https://dl.fbaipublicfiles.com/deit/regnety_160-a5fe301d.pth'),
    train_cfg=dict(augments=[
        dict(type='Mixup', alpha=0.8),
        dict(type='CutMix', alpha=1.0),
    ]))
