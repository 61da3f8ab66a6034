"""The rows of the digit-scenes study.

Two tasks on the same scenes: ``digit`` (class-agnostic: every digit one class; it shows
that the pipeline learns) and ``10 digits`` (it shows what the backbone knows). LeViT-128S
against mmdet's ResNet-18 in the same RetinaNet, both from the same digit-crops
pretraining.
"""
import os.path as osp
from typing import NamedTuple, Tuple

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DET = osp.join(REPO, 'configs', 'mmdet')
SEG = osp.join(REPO, 'configs', 'mmseg')

#: metric key (mmengine's name) -> column
METRICS = {'coco/bbox_mAP_50': 'box mAP@0.5', 'coco/bbox_mAP': 'box mAP',
           'coco/segm_mAP_50': 'mask mAP@0.5', 'mIoU': 'mIoU'}


class Run(NamedTuple):
    name: str  # its work-dir name
    task: str  # 'digit' or '10 digits'
    model: str
    backbone: str
    config: str
    pretrained: str  # key of pretrain.CLASSIFIERS the backbone starts from ('' : none)
    metric: str  # the headline metric (a key of METRICS)
    options: Tuple[str, ...] = ()  # extra --cfg-options (levers)
    note: str = ''

    @property
    def task_kind(self) -> str:
        return 'seg' if self.config.startswith(SEG) else 'det'


def _det(name, task, model, backbone, config, pretrained, metric='coco/bbox_mAP_50',
         **kw):
    return Run(name, task, model, backbone, osp.join(DET, config), pretrained, metric,
               **kw)


RUNS = [
    _det('retinanet_levit_agnostic', 'digit', 'RetinaNet', 'LeViT-128S',
         'retinanet_levit-128s_fpn_digit-scenes-agnostic.py', 'levit'),
    _det('retinanet_r18_agnostic', 'digit', 'RetinaNet', 'ResNet-18',
         'retinanet_r18_fpn_digit-scenes-agnostic.py', 'resnet18'),
    _det('mask-rcnn_levit_agnostic', 'digit', 'Mask R-CNN', 'LeViT-128S',
         'mask-rcnn_levit-128s_fpn_digit-scenes-agnostic.py', 'levit',
         metric='coco/segm_mAP_50'),
    Run('fpn_levit_agnostic', 'digit', 'Semantic FPN', 'LeViT-128S',
        osp.join(SEG, 'fpn_levit-128s_digit-scenes-agnostic.py'), 'levit', 'mIoU'),
    _det('retinanet_levit', '10 digits', 'RetinaNet', 'LeViT-128S',
         'retinanet_levit-128s_fpn_digit-scenes.py', 'levit'),
    _det('retinanet_r18', '10 digits', 'RetinaNet', 'ResNet-18',
         'retinanet_r18_fpn_digit-scenes.py', 'resnet18'),
    Run('fpn_levit', '10 digits', 'Semantic FPN', 'LeViT-128S',
        osp.join(SEG, 'fpn_levit-128s_digit-scenes.py'), 'levit', 'mIoU'),
]
ALL_RUNS = {run.name: run for run in RUNS}

#: The levers, each a short run of one setting against its neighbour in RUNS (with
#: ``--levers``; ``--iters`` shortens them alike). ``pretrained`` keys ending in
#: ``_digits`` take the first pretraining stage's weights (clean digits only).
LEVER_RUNS = [
    _det('lever_bn-stats-learnt', 'digit', 'RetinaNet', 'LeViT-128S',
         'retinanet_levit-128s_fpn_digit-scenes-agnostic.py', 'levit',
         options=('model.backbone.norm_eval=False', ),
         note='backbone BN statistics learnt from the batches (norm_eval=False)'),
    _det('lever_clean-digits-only', '10 digits', 'RetinaNet', 'LeViT-128S',
         'retinanet_levit-128s_fpn_digit-scenes.py', 'levit_digits',
         note='pretrained on the clean 64 px digits only (no crops stage)'),
    _det('lever_lr-1e-3', '10 digits', 'RetinaNet', 'LeViT-128S',
         'retinanet_levit-128s_fpn_digit-scenes.py', 'levit',
         options=('optim_wrapper.optimizer.lr=0.001', ), note='lr 1e-3 (shipped: 4e-4)'),
    _det('lever_cls-weight-2', '10 digits', 'RetinaNet', 'LeViT-128S',
         'retinanet_levit-128s_fpn_digit-scenes.py', 'levit',
         options=('model.bbox_head.loss_cls.loss_weight=2.0', ),
         note='classification loss weight 2 (shipped: 1)'),
    Run('lever_no-class-weight', 'digit', 'Semantic FPN', 'LeViT-128S',
        osp.join(SEG, 'fpn_levit-128s_digit-scenes-agnostic.py'), 'levit', 'mIoU',
        options=('model.decode_head.loss_decode.class_weight=None', ),
        note='no class weights in the loss'),
]
ALL_RUNS.update({run.name: run for run in LEVER_RUNS})
