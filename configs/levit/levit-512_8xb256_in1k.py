# timm's levit_512: the wider experiment (widths 512/768/1024, key dim 64), SiLU
# activations.
# No trained weights exist (timm lists it as untrained).  As in timm, one classification
# head and no teacher; the recipe is otherwise the published variants'.
_base_ = [
    '../_base_/models/levit.py',
    '../_base_/datasets/imagenet_bs256_levit_224.py',
    '../_base_/schedules/imagenet_bs2048_adamw_levit.py',
    '../_base_/recipe_runtime.py',
]

model = dict(
    backbone=dict(arch='512'),
    head=dict(in_channels=1024, distillation=False, distill_type='none'),
    teacher=None)
