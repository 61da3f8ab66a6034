"""``DigitScenesSegDataset``: digit scenes as mmseg label maps (background + 10 digits, or
background + one ``digit`` class)."""
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from .digit_scenes import SEG_AGNOSTIC_CLASSES, SEG_CLASSES, check_seg_split

PALETTE = [(0, 0, 0), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200),
           (245, 130, 48), (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60),
           (250, 190, 190)]


@DATASETS.register_module()
class DigitScenesSegDataset(BaseSegDataset):
    """``img_path`` / ``seg_map_path`` folders of ``.jpg`` images and ``.png`` maps,
    checked before mmseg lists them (see :mod:`levit_mm.datasets.digit_scenes`).

    ``metainfo=dict(classes=('background', 'digit'))`` is the class-agnostic task on the
    same maps: mmseg's own ``label_map`` (applied by ``LoadAnnotations``) sends every digit
    to class 1."""

    METAINFO = dict(classes=SEG_CLASSES, palette=PALETTE)

    def __init__(self, img_suffix='.jpg', seg_map_suffix='.png', reduce_zero_label=False,
                 **kwargs):
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         reduce_zero_label=reduce_zero_label, **kwargs)

    @classmethod
    def get_label_map(cls, new_classes=None):
        if new_classes is not None and tuple(new_classes) == SEG_AGNOSTIC_CLASSES:
            return {i: min(i, 1) for i in range(len(SEG_CLASSES))}
        return super().get_label_map(new_classes)

    def _update_palette(self) -> list:
        if tuple(self._metainfo['classes']) == SEG_AGNOSTIC_CLASSES:
            return PALETTE[:2]
        return super()._update_palette()

    def load_data_list(self):
        check_seg_split(self.data_prefix.get('img_path', ''),
                        self.data_prefix.get('seg_map_path', ''), self.img_suffix,
                        self.seg_map_suffix)
        return super().load_data_list()
