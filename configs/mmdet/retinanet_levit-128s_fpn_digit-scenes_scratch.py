# The same detector from scratch: no classifier weights, and bias tables made for the
# 640x640 grid (40x40 at stage 0) since there is nothing to resample.
_base_ = ['./retinanet_levit-128s_fpn_digit-scenes.py']

model = dict(backbone=dict(img_size=640, init_cfg=None))
