"""The digit-scenes layout and its checks, free of mmdet/mmseg.

A digit-scenes folder (written by ``tools/dataset_converters/make_digit_scenes.py``)::

    root/images/{train,val}/NNNNNN.jpg
    root/seg/{train,val}/NNNNNN.png            0 = background, d + 1 = digit d
    root/annotations/instances_{train,val}.json  COCO boxes + RLE instance masks
    root/annotations/instances_{train,val}_agnostic.json  the same, one class 'digit'
    root/meta.json

The checks run when a dataset is built, so a folder that is missing, empty or holds a
broken annotation file stops with one sentence that names the file and the fix, instead of
a traceback from inside pycocotools or mmengine.
"""
import json
import os
import os.path as osp
from typing import Optional, Sequence

CLASSES = tuple(str(d) for d in range(10))
SEG_CLASSES = ('background', ) + CLASSES
#: The class-agnostic task: every digit is one class (its own annotation files for mmdet;
#: a label map of the same PNGs for mmseg).
AGNOSTIC_CLASSES = ('digit', )
SEG_AGNOSTIC_CLASSES = ('background', ) + AGNOSTIC_CLASSES
MAKE_HINT = 'make one with tools/dataset_converters/make_digit_scenes.py --out FOLDER'


def _check_root(path: str) -> None:
    """The dataset folder two levels above ``path`` (or ``path`` itself) must exist."""
    root = osp.dirname(osp.dirname(osp.normpath(path)))
    if root and not osp.isdir(root):
        raise FileNotFoundError(f'Dataset folder {root!r} does not exist; {MAKE_HINT}.')


def check_coco_split(ann_file: str, img_dir: Optional[str] = None,
                     classes: Sequence[str] = CLASSES) -> int:
    """A COCO annotation file of digit scenes with ``classes``, and its images; returns
    the image count."""
    _check_root(ann_file)
    if not osp.isfile(ann_file):
        raise FileNotFoundError(f'Annotation file {ann_file!r} is missing; is the folder '
                                f'a digit-scenes dataset? ({MAKE_HINT})')
    try:
        with open(ann_file, encoding='utf-8') as f:
            coco = json.load(f)
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f'Broken annotation file {ann_file!r}: not valid JSON ({err}); '
                         f'{MAKE_HINT}.') from None
    if not isinstance(coco, dict) or not all(
            isinstance(coco.get(k), list) for k in ('images', 'annotations', 'categories')):
        raise ValueError(f'Broken annotation file {ann_file!r}: a COCO file needs the lists '
                         '"images", "annotations" and "categories".')
    if not coco['images']:
        raise ValueError(f'Annotation file {ann_file!r} lists no images.')
    names = sorted(str(c.get('name')) for c in coco['categories'] if isinstance(c, dict))
    if names != sorted(classes):
        hint = ('; the class-agnostic files are instances_*_agnostic.json'
                if tuple(classes) == AGNOSTIC_CLASSES else '')
        raise ValueError(f'Annotation file {ann_file!r} has categories {names}; the '
                         f'dataset expects {list(classes)}{hint}.')
    if img_dir is not None:
        missing = [im.get('file_name') for im in coco['images']
                   if not osp.isfile(osp.join(img_dir, str(im.get('file_name'))))]
        if missing:
            raise FileNotFoundError(
                f'{len(missing)} of the {len(coco["images"])} images listed in {ann_file!r} '
                f'are missing from {img_dir!r} (first: {missing[0]}).')
    return len(coco['images'])


def check_seg_split(img_dir: str, seg_dir: str, img_suffix: str = '.jpg',
                    seg_suffix: str = '.png') -> int:
    """An image folder and its label-map folder, one map per image; returns the count."""
    _check_root(img_dir)
    for folder in (img_dir, seg_dir):
        if not osp.isdir(folder):
            raise FileNotFoundError(f'Folder {folder!r} is missing; is it a digit-scenes '
                                    f'dataset? ({MAKE_HINT})')
    images = sorted(f[:-len(img_suffix)] for f in os.listdir(img_dir)
                    if f.endswith(img_suffix))
    if not images:
        raise ValueError(f'{img_dir!r} holds no {img_suffix} images.')
    maps = {f[:-len(seg_suffix)] for f in os.listdir(seg_dir) if f.endswith(seg_suffix)}
    missing = [name for name in images if name not in maps]
    if missing:
        raise FileNotFoundError(f'{len(missing)} of the {len(images)} images in {img_dir!r} '
                                f'have no label map in {seg_dir!r} (first: {missing[0]}'
                                f'{seg_suffix}).')
    return len(images)
