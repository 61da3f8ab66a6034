_base_ = [
    '../_base_/models/levit.py',
    '../_base_/datasets/imagenet_bs256_levit_224.py',
    '../_base_/schedules/imagenet_bs2048_adamw_levit.py',
    '../_base_/recipe_runtime.py',
]

model = dict(backbone=dict(arch='128s'), head=dict(in_channels=384))
