"""A tiny LeViT, a tiny image-folder dataset and a config that trains it in seconds on CPU,
shared by the launcher and fault tests."""
import numpy as np
from PIL import Image

CLASSES = ('a', 'b', 'c')
#: Two stages, 16 and 32 channels: the real blocks (stem, attention, shrinking attention,
#: MLPs, two heads) at a fraction of the cost.
TINY_ARCH = dict(embed_dims=[16, 32], num_heads=[2, 2], depths=[1, 1], key_dims=[8, 8])


def write_image_folders(root, per_class: int = 2, val_per_class: int = 1, size: int = 32,
                        seed: int = 0):
    """``root/{train,val}/<class>/<n>.png`` (mmpretrain CustomDataset layout)."""
    rng = np.random.default_rng(seed)
    for split, count in (('train', per_class), ('val', val_per_class)):
        for label, name in enumerate(CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                arr = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
                arr[..., label] //= 4  # a learnable colour cue per class
                Image.fromarray(arr).save(folder / f'{i}.png')
    return root


def write_config(path, repo: str, data_root, max_iters: int = 8, ckpt_interval: int = 2,
                 val_interval: int = None, extra: str = '') -> str:
    """An iteration-based config: checkpoints every ``ckpt_interval`` iterations, random
    flips + Mixup so that resuming must restore random states, validation at the end."""
    text = f'''
_base_ = ['{repo}/configs/_base_/default_runtime.py']
model = dict(
    type='LeViTClassifier',
    backbone=dict(type='LeViT', arch={TINY_ARCH!r}, img_size=32, drop_path_rate=0.1),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LeViTClsHead', num_classes={len(CLASSES)}, in_channels=32,
              distillation=True,
              loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1), topk=(1, )),
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8)]))
data_preprocessor = dict(num_classes={len(CLASSES)}, mean=[127.5] * 3, std=[64.0] * 3,
                         to_rgb=True)
_train_pipeline = [dict(type='LoadImageFromFile'), dict(type='RandomFlip', prob=0.5),
                   dict(type='PackInputs')]
_test_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='CustomDataset', data_root='{data_root}', data_prefix='train',
                 pipeline=_train_pipeline))
val_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='CustomDataset', data_root='{data_root}', data_prefix='val',
                 pipeline=_test_pipeline))
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_dataloader = val_dataloader
test_evaluator = val_evaluator
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.05))
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=False, T_max={max_iters})]
train_cfg = dict(type='IterBasedTrainLoop', max_iters={max_iters},
                 val_interval={val_interval or max_iters})
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(
    checkpoint=dict(interval={ckpt_interval}, by_epoch=False, max_keep_ckpts=2),
    logger=dict(interval=1))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0, deterministic=True)
{extra}
'''
    with open(path, 'w') as f:
        f.write(text)
    return str(path)
