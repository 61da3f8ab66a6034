# The distilled digits student without the weight EMA (the ablation of
# tools/digits_demo.py --no-ema / --ablation): validation reports the raw weights.
_base_ = './levit-128s_digits_distill.py'

custom_hooks = [hook for hook in _base_.custom_hooks if hook['type'] != 'EMAHook']
