# The same segmentor from scratch: no classifier weights, bias tables for the 640x640 grid.
_base_ = ['./fpn_levit-128s_digit-scenes.py']

model = dict(backbone=dict(img_size=640, init_cfg=None))
