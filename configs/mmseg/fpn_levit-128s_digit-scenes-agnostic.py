# The class-agnostic task: background and one class, 'digit' (every digit's ink).
_base_ = ['./fpn_levit-128s_digit-scenes.py']

model = dict(decode_head=dict(num_classes=2))
metainfo = dict(classes=('background', 'digit'))
train_dataloader = dict(dataset=dict(metainfo=metainfo))
val_dataloader = dict(dataset=dict(metainfo=metainfo))
test_dataloader = val_dataloader
