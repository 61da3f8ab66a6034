# LeViT-128S without a teacher: both heads learn the labels (checkpoint layout unchanged).
_base_ = './levit-128s_8xb256_in1k.py'

model = dict(teacher=None, head=dict(distill_type='none'))
