# The runtime of the official recipe: default_runtime plus an EMA of the weights, decay
# 0.99996 (mmengine's momentum is 1 - decay), updated after every iteration and averaging
# the BatchNorm statistics too, as timm's ModelEma does in the official code. Checkpoints
# hold the EMA weights in `state_dict` (tools/test.py, `pretrained=`, the model zoo read
# them) and the raw ones in `ema_state_dict`; validation reports both (`*_origin`: raw).
_base_ = './default_runtime.py'

custom_hooks = _base_.custom_hooks + [
    dict(type='EMAHook', momentum=4e-5, update_buffers=True, evaluate_on_origin=True),
]
# The official seed (its sampler shuffles with the epoch alone); a fixed seed also keeps the
# sampler's order across `--resume`.
randomness = dict(seed=0)
