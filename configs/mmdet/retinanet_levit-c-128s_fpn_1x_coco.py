# RetinaNet with the conv form of LeViT-128S (LeViT-C: 1x1 convolutions on NCHW maps, as
# timm's levit_conv_*).  Same parameters and outputs as the linear form; the ImageNet
# checkpoint (linear layout) loads as it is, its pointwise weights reshaped to 1x1 kernels.
_base_ = ['./retinanet_levit-128s_fpn_1x_coco.py']

# norm_eval: BN statistics frozen, as the linear form (2 images a GPU cannot estimate them);
# neck and head norm-free, as upstream RetinaNet.
model = dict(backbone=dict(form='conv', norm_eval=True), neck=dict(norm_cfg=None))
