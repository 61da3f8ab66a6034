# The class-agnostic task for Mask R-CNN: boxes and masks of one class, 'digit'.
_base_ = ['./mask-rcnn_levit-128s_fpn_digit-scenes.py']

# norm_eval: BN statistics frozen (4 images a batch); neck and heads norm-free (the base's).
model = dict(backbone=dict(norm_eval=True), neck=dict(norm_cfg=None),
             roi_head=dict(bbox_head=dict(num_classes=1), mask_head=dict(num_classes=1)))
train_dataloader = dict(dataset=_base_.agnostic_train_dataset)
val_dataloader = dict(dataset=_base_.agnostic_val_dataset)
test_dataloader = val_dataloader
val_evaluator = dict(_base_.agnostic_evaluator, metric=['bbox', 'segm'])
test_evaluator = val_evaluator
