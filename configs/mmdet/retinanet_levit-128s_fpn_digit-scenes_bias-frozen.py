# Bias comparison: the digits classifier's 4x4 bias tables resampled to the input grid, and
# kept as they are (no learning rate on attention_biases).
_base_ = ['./retinanet_levit-128s_fpn_digit-scenes.py']

optim_wrapper = dict(paramwise_cfg=dict(
    custom_keys={'attention_biases': dict(lr_mult=0., decay_mult=0.)}))
