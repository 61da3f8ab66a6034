"""``DigitScenesSegDataset``: digit scenes as mmseg label maps (background + 10 digits)."""
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from .digit_scenes import SEG_CLASSES, check_seg_split


@DATASETS.register_module()
class DigitScenesSegDataset(BaseSegDataset):
    """``img_path`` / ``seg_map_path`` folders of ``.jpg`` images and ``.png`` maps,
    checked before mmseg lists them (see :mod:`levit_mm.datasets.digit_scenes`)."""

    METAINFO = dict(classes=SEG_CLASSES,
                    palette=[(0, 0, 0), (230, 25, 75), (60, 180, 75), (255, 225, 25),
                             (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
                             (240, 50, 230), (210, 245, 60), (250, 190, 190)])

    def __init__(self, img_suffix='.jpg', seg_map_suffix='.png', reduce_zero_label=False,
                 **kwargs):
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         reduce_zero_label=reduce_zero_label, **kwargs)

    def load_data_list(self):
        check_seg_split(self.data_prefix.get('img_path', ''),
                        self.data_prefix.get('seg_map_path', ''), self.img_suffix,
                        self.seg_map_suffix)
        return super().load_data_list()
