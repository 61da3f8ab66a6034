# Inference-only: BN folded, the two heads merged into one Linear, bias tensors built.
# Load a training-form checkpoint folded by `tools/model_converters/levit_reparameterize.py`, or
# build the training form and call `levit_mm.deploy.switch_to_deploy(model)`.
_base_ = '../levit-128s_8xb256_in1k.py'

model = dict(backbone=dict(deploy=True), head=dict(deploy=True))
