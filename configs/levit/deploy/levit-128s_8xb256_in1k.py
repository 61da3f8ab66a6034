# Inference-only: BN folded, the two heads merged into one Linear, bias tensors built.
# Load a checkpoint saved from the training form (`tools/model_converters/` folds it), or
# build the training form and call `model.backbone.switch_to_deploy()`/`head.switch_to_deploy()`.
_base_ = '../levit-128s_8xb256_in1k.py'

model = dict(backbone=dict(deploy=True), head=dict(deploy=True))
