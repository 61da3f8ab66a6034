# timm's levit_512_s8: a stride-8 stem (three convolutions; the stages run on 28x28,
# 14x14, 7x7 tokens for 224 input), widths 512/640/896, key dim 64, SiLU activations.
# No trained weights exist (timm lists it as untrained).  As in timm, one classification
# head and no teacher; the recipe is otherwise the published variants'.
_base_ = [
    '../_base_/models/levit.py',
    '../_base_/datasets/imagenet_bs256_levit_224.py',
    '../_base_/schedules/imagenet_bs2048_adamw_levit.py',
    '../_base_/recipe_runtime.py',
]

model = dict(
    backbone=dict(arch='512_s8'),
    head=dict(in_channels=896, distillation=False, distill_type='none'),
    teacher=None)
