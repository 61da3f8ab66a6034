# Inference-only: BN folded, the two heads merged into one Linear, bias tensors built.
# Takes a folded checkpoint or a training-form one (any layout: it folds as it loads).
_base_ = '../levit-128_8xb256_in1k.py'

model = dict(backbone=dict(deploy=True), head=dict(deploy=True))
