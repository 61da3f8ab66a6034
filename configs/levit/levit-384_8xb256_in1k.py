_base_ = [
    '../_base_/models/levit.py',
    '../_base_/datasets/imagenet_bs256_levit_224.py',
    '../_base_/schedules/imagenet_bs2048_adamw_levit.py',
    '../_base_/recipe_runtime.py',
]

# The official `specification` gives LeViT-384 (only) drop path 0.1.
model = dict(backbone=dict(arch='384', drop_path_rate=0.1), head=dict(in_channels=768))
