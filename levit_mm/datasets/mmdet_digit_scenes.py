"""``DigitScenesDataset``: mmdet's ``CocoDataset`` for digit scenes, checked as it loads."""
from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS

from .digit_scenes import CLASSES, check_coco_split


@DATASETS.register_module()
class DigitScenesDataset(CocoDataset):
    """Ten digit classes, or with ``metainfo=dict(classes=('digit', ))`` and the
    ``instances_*_agnostic.json`` files one; the annotation file and images are checked
    before pycocotools reads them (see :mod:`levit_mm.datasets.digit_scenes`)."""

    METAINFO = dict(classes=CLASSES,
                    palette=[(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200),
                             (245, 130, 48), (145, 30, 180), (70, 240, 240),
                             (240, 50, 230), (210, 245, 60), (250, 190, 190)])

    def load_data_list(self):
        check_coco_split(self.ann_file, self.data_prefix.get('img', None),
                         self.metainfo['classes'])
        return super().load_data_list()
