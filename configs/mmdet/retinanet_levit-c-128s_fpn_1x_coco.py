# RetinaNet with the conv form of LeViT-128S (LeViT-C: 1x1 convolutions on NCHW maps, as
# timm's levit_conv_*).  Same parameters and outputs as the linear form; the ImageNet
# checkpoint (linear layout) loads as it is, its pointwise weights reshaped to 1x1 kernels.
_base_ = ['./retinanet_levit-128s_fpn_1x_coco.py']

model = dict(backbone=dict(form='conv'))
