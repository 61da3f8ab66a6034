# The class-agnostic task: the same detector finds digits, one class 'digit'.
_base_ = ['./retinanet_levit-128s_fpn_digit-scenes.py']

model = dict(bbox_head=dict(num_classes=1))
train_dataloader = dict(dataset=_base_.agnostic_train_dataset)
val_dataloader = dict(dataset=_base_.agnostic_val_dataset)
test_dataloader = val_dataloader
val_evaluator = _base_.agnostic_evaluator
test_evaluator = val_evaluator
