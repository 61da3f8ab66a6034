# timm's levit_384_s8: LeViT-384 with a stride-8 stem (three convolutions; the stages run
# on 28x28, 14x14, 7x7 tokens for 224 input) and SiLU activations.  No trained weights
# exist (timm lists it as untrained); the recipe is the published variants'.
_base_ = [
    '../_base_/models/levit.py',
    '../_base_/datasets/imagenet_bs256_levit_224.py',
    '../_base_/schedules/imagenet_bs2048_adamw_levit.py',
    '../_base_/recipe_runtime.py',
]

model = dict(backbone=dict(arch='384_s8'), head=dict(in_channels=768))
