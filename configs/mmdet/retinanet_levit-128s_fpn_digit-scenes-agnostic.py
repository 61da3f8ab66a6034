# The class-agnostic task: the same detector finds digits, one class 'digit'.
_base_ = ['./retinanet_levit-128s_fpn_digit-scenes.py']

# norm_eval: BN statistics frozen (4 images a batch); neck and head norm-free (the base's).
model = dict(backbone=dict(norm_eval=True), neck=dict(norm_cfg=None),
             bbox_head=dict(num_classes=1, norm_cfg=None))
train_dataloader = dict(dataset=_base_.agnostic_train_dataset)
val_dataloader = dict(dataset=_base_.agnostic_val_dataset)
test_dataloader = val_dataloader
val_evaluator = _base_.agnostic_evaluator
test_evaluator = val_evaluator
