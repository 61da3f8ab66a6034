# Bias comparison: the digits classifier's weights, but attention-bias tables made anew for
# the target grid (img_size=640: 40x40 offsets at stage 0). The checkpoint's 4x4 tables no
# longer fit, and mmengine's loader skips tensors whose shape differs, so they stay at
# their initial values and are learnt from the detection data alone.
_base_ = ['./retinanet_levit-128s_fpn_digit-scenes.py']

model = dict(backbone=dict(img_size=640))
