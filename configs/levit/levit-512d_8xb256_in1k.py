# timm's levit_512d: the deeper wide experiment (widths 512/640/768, depths 4/8/6,
# key dim 64), SiLU activations.
# No trained weights exist (timm lists it as untrained).  As in timm, one classification
# head and no teacher; the recipe is otherwise the published variants'.
_base_ = [
    '../_base_/models/levit.py',
    '../_base_/datasets/imagenet_bs256_levit_224.py',
    '../_base_/schedules/imagenet_bs2048_adamw_levit.py',
    '../_base_/recipe_runtime.py',
]

model = dict(
    backbone=dict(arch='512d'),
    head=dict(in_channels=768, distillation=False, distill_type='none'),
    teacher=None)
