_base_ = ['./mask-rcnn_levit-256_fpn_1x_coco.py']

model = dict(
    # norm_eval: BN statistics frozen; 2 images a GPU cannot estimate them (levit_dense.py).
    backbone=dict(arch='128s', norm_eval=True,
                  init_cfg=dict(checkpoint=_base_.levit_checkpoints['128s'])),
    neck=dict(in_channels=[64, 128, 256, 384], norm_cfg=None))  # norm-free, as upstream
