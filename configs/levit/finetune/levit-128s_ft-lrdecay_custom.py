# Fine-tune as in levit-128s_ft_custom.py with layer-wise learning-rate decay: the head
# trains at the full lr, and each layer below it (an attention and its MLP; the stem last)
# at `layer_decay_rate` times the lr of the layer above, so the ImageNet features near the
# input change least.  mmpretrain's LearningRateDecayOptimWrapperConstructor reads the
# depths from LeViT.get_layer_depth (LeViT-128S: stem 0, layers 1-11, head 12).
_base_ = './levit-128s_ft_custom.py'

optim_wrapper = dict(
    constructor='LearningRateDecayOptimWrapperConstructor',
    optimizer=dict(lr=4e-4),
    paramwise_cfg=dict(layer_decay_rate=0.8))
