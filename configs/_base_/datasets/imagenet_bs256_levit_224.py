# ImageNet with the DeiT recipe LeViT was trained with: RandomResizedCrop + flip +
# RandAugment (m9, mstd 0.5) + RandomErasing 0.25 for training; bicubic short-edge resize to
# 256 and a 224 center crop for evaluation. mmpretrain's Swin/DeiT base already holds exactly
# that pipeline. The official loader adds repeated augmentation (each image 3 times per
# epoch, the copies spread over the GPUs) and drops the last incomplete batch.
_base_ = 'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py'

train_dataloader = dict(
    batch_size=256, num_workers=8, drop_last=True,
    sampler=dict(_delete_=True, type='RepeatAugSampler', num_repeats=3, shuffle=True))
val_dataloader = dict(batch_size=256, num_workers=8)
test_dataloader = val_dataloader
