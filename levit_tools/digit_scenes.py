"""Digit scenes: a small real detection / segmentation dataset made offline.

Nothing can be downloaded here, so the objects are scikit-learn's 1,797 real handwritten
8x8 digit scans, scaled up and pasted as ink onto crops of real photographs that ship
inside installed packages (scikit-image's ``data`` images when it is installed,
scikit-learn's two sample photos, matplotlib's Grace Hopper).  Several digits per image,
on non-square canvases, some cut by the border, some partly hiding an earlier one.

Written twice from the same scenes:

* COCO detection + instance masks for mmdet (``annotations/instances_{split}.json``; each
  mask is the digit's own visible ink, the thresholded scan, as compressed RLE; its box is
  the mask's tight box);
* an image / label-map folder for mmseg (``seg/{split}/*.png``: 0 background, ``d + 1``
  for digit ``d``).

The scans are split per class with a seed exactly as ``tools/digits_demo.py`` splits them
for the digits classifier, so with the same seed the validation scenes use only scans that
neither the detection training scenes nor the classifier that initialises the backbone saw.
"""
import hashlib
import json
import os
import os.path as osp
import shutil
import tempfile
from typing import List, Optional, Sequence, Tuple

import numpy as np

from levit_mm.datasets.digit_scenes import CLASSES

#: (height, width) canvases, mixed within each split.
DEFAULT_CANVASES = ((384, 640), (640, 384))
FORMAT_VERSION = 1


# ---------------------------------------------------------------- source material
def photo_paths() -> List[str]:
    """Real photographs shipped inside installed packages (no download)."""
    from .sample_images import sample_photo_paths
    paths = []
    try:
        import skimage
        folder = osp.join(osp.dirname(skimage.__file__), 'data')
        # Only the photographs: no test patterns, drawings, or pages of text (which
        # would hold unlabelled digits).
        for name in ('astronaut.png', 'brick.png', 'camera.png', 'cell.png',
                     'chelsea.png', 'coffee.png', 'coins.png', 'grass.png', 'gravel.png',
                     'hubble_deep_field.jpg', 'ihc.png', 'moon.png', 'motorcycle_left.png',
                     'retina.jpg', 'rocket.jpg'):
            path = osp.join(folder, name)
            if osp.isfile(path):
                paths.append(path)
    except ImportError:
        pass
    return paths + sample_photo_paths()


def load_photos(paths: Sequence[str], min_side: int = 256) -> List[np.ndarray]:
    """RGB uint8 arrays; grey or RGBA files become RGB, small ones are skipped."""
    from PIL import Image
    photos = []
    for path in paths:
        with Image.open(path) as img:
            img = img.convert('RGB')
            if min(img.size) >= min_side:
                photos.append(np.asarray(img))
    if not photos:
        raise FileNotFoundError(
            'No sample photographs found to paste digits on: install scikit-learn, '
            'matplotlib or scikit-image.')
    return photos


def load_scans() -> Tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits: ``(1797, 8, 8)`` float scans in 0..16 and their labels."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    return digits.images.astype(np.float32), digits.target.astype(np.int64)


def split_scans(labels: np.ndarray, val_fraction: float = 0.2,
                seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """(train, val) scan indices: per class, a seeded permutation whose first
    ``round(n * val_fraction)`` go to val.  The same draw as
    ``tools/digits_demo.write_digits_folder`` (a test keeps the two in step)."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for label in range(10):
        idx = rng.permutation(np.flatnonzero(labels == label))
        n_val = int(round(len(idx) * val_fraction))
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


# ---------------------------------------------------------------- one scene
def background(rng: np.random.Generator, photos: Sequence[np.ndarray],
               canvas: Tuple[int, int]) -> np.ndarray:
    """A random crop of a random photo (random scale, random flip), resized to canvas."""
    from PIL import Image
    height, width = canvas
    photo = photos[rng.integers(len(photos))]
    ph, pw = photo.shape[:2]
    # the largest crop of the canvas' aspect that fits, times a random zoom
    scale = min(ph / height, pw / width) * rng.uniform(0.5, 1.0)
    ch, cw = max(8, int(height * scale)), max(8, int(width * scale))
    top, left = rng.integers(ph - ch + 1), rng.integers(pw - cw + 1)
    crop = Image.fromarray(photo[top:top + ch, left:left + cw])
    img = np.asarray(crop.resize((width, height), Image.BILINEAR)).copy()
    return img[:, ::-1].copy() if rng.random() < 0.5 else img


def render_digit(scan: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """The scan upscaled to ``size`` (h, w) as ink coverage in [0, 1]."""
    from PIL import Image
    img = Image.fromarray(scan / 16.0, mode='F').resize((size[1], size[0]), Image.BICUBIC)
    return np.clip(np.asarray(img), 0.0, 1.0)


def ink_colour(rng: np.random.Generator, patch: np.ndarray) -> np.ndarray:
    """A random colour that stands out from the background under the digit: dark ink on
    bright ground, bright ink on dark ground."""
    luminance = float(patch.reshape(-1, 3).mean(0) @ np.array([0.299, 0.587, 0.114]))
    base = rng.uniform(0, 70, 3) if luminance > 128 else rng.uniform(185, 255, 3)
    return base.astype(np.float32)


def mask_box(mask: np.ndarray) -> List[float]:
    """COCO ``[x, y, w, h]`` of the pixels of a boolean mask (pixel edges)."""
    ys, xs = np.nonzero(mask)
    x0, y0 = int(xs.min()), int(ys.min())
    return [float(x0), float(y0), float(xs.max() + 1 - x0), float(ys.max() + 1 - y0)]


def make_scene(rng: np.random.Generator, photos: Sequence[np.ndarray], scans: np.ndarray,
               labels: np.ndarray, pool: np.ndarray, canvas: Tuple[int, int],
               num_digits: Tuple[int, int] = (3, 8),
               size_range: Tuple[int, int] = (24, 96), border_prob: float = 0.25,
               max_cut: float = 0.4, max_hidden: float = 0.25,
               threshold: float = 0.5) -> Tuple[np.ndarray, List[dict]]:
    """One image and its instances.

    Each digit is a scan from ``pool``, ``size_range`` pixels tall (log-uniform) and 70-100%
    as wide, pasted as ink of one colour.  Its mask is where the ink coverage reaches
    ``threshold`` and no later digit covers it.  With probability ``border_prob`` a digit
    is pushed over an edge (up to ``max_cut`` of its ink outside); a placement that would
    hide more than ``max_hidden`` of an earlier digit's visible ink is redrawn.

    Returns ``(image HxWx3 uint8, [dict(label, scan, mask HxW bool, bbox [x, y, w, h])])``.
    """
    height, width = canvas
    img = background(rng, photos, canvas).astype(np.float32)
    owner = np.full(canvas, -1, np.int32)  # which instance each pixel's ink belongs to
    instances = []
    wanted = int(rng.integers(num_digits[0], num_digits[1] + 1))
    tries = 0
    while len(instances) < wanted and tries < 20 * wanted:
        tries += 1
        scan_id = int(pool[rng.integers(len(pool))])
        h = int(round(np.exp(rng.uniform(*np.log(size_range)))))
        w = max(4, int(round(h * rng.uniform(0.7, 1.0))))
        ink = render_digit(scans[scan_id], (h, w))
        full = ink >= threshold
        if full.sum() < 8:
            continue
        if rng.random() < border_prob:  # over a random edge
            side = rng.integers(4)
            y = int(rng.integers(-h // 3, height - h + h // 3 + 1))
            x = int(rng.integers(-w // 3, width - w + w // 3 + 1))
            out = int(rng.uniform(0.1, 0.45) * (h if side < 2 else w))
            if side == 0:
                y = -out
            elif side == 1:
                y = height - h + out
            elif side == 2:
                x = -out
            else:
                x = width - w + out
        else:
            y = int(rng.integers(0, height - h + 1))
            x = int(rng.integers(0, width - w + 1))
        # the part of the digit inside the canvas
        y0, x0 = max(y, 0), max(x, 0)
        y1, x1 = min(y + h, height), min(x + w, width)
        if y1 - y0 < 4 or x1 - x0 < 4:
            continue
        sub_ink = ink[y0 - y:y1 - y, x0 - x:x1 - x]
        sub_mask = full[y0 - y:y1 - y, x0 - x:x1 - x]
        if sub_mask.sum() < (1 - max_cut) * full.sum():
            continue
        region = owner[y0:y1, x0:x1]
        covered = region[sub_mask]
        if any(np.count_nonzero(covered == j) > max_hidden * inst['visible']
               for j, inst in enumerate(instances)):
            continue
        colour = ink_colour(rng, img[y0:y1, x0:x1])
        # a soft edge around the mask, and none of the scans' faint background haze
        # (which would paint each digit's box as a visible rectangle)
        alpha = np.clip((sub_ink[..., None] - threshold) * 2 + 0.5, 0.0, 1.0)
        img[y0:y1, x0:x1] = img[y0:y1, x0:x1] * (1 - alpha) + colour * alpha
        region[sub_mask] = len(instances)
        instances.append(dict(label=int(labels[scan_id]), scan=scan_id,
                              visible=int(sub_mask.sum())))
        for j, inst in enumerate(instances):
            inst['visible'] = int(np.count_nonzero(owner == j))
    out = []
    for j, inst in enumerate(instances):
        mask = owner == j
        out.append(dict(label=inst['label'], scan=inst['scan'], mask=mask,
                        bbox=mask_box(mask)))
    return np.clip(img + 0.5, 0, 255).astype(np.uint8), out


# ---------------------------------------------------------------- writing a dataset
def encode_mask(mask: np.ndarray) -> dict:
    """COCO compressed RLE (``counts`` as text, as in COCO's own json)."""
    from pycocotools import mask as mask_utils
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return dict(size=[int(s) for s in rle['size']], counts=rle['counts'].decode('ascii'))


def dataset_params(num_train: int, num_val: int, seed: int,
                   canvases: Sequence[Tuple[int, int]], size_range: Tuple[int, int],
                   num_digits: Tuple[int, int], photos: Sequence[str]) -> dict:
    return dict(version=FORMAT_VERSION, num_train=num_train, num_val=num_val, seed=seed,
                canvases=[list(c) for c in canvases], size_range=list(size_range),
                num_digits=list(num_digits),
                photos=[osp.basename(p) for p in photos])


def write_split(root: str, split: str, count: int, rng: np.random.Generator,
                photos, scans, labels, pool, canvases, **scene_kw) -> dict:
    """Write ``count`` scenes of one split; returns its COCO dict (also written)."""
    from PIL import Image
    for folder in ('images', 'seg'):
        os.makedirs(osp.join(root, folder, split), exist_ok=True)
    coco = dict(images=[], annotations=[],
                categories=[dict(id=i + 1, name=name) for i, name in enumerate(CLASSES)])
    for i in range(count):
        canvas = tuple(canvases[i % len(canvases)])
        img, instances = make_scene(rng, photos, scans, labels, pool, canvas, **scene_kw)
        name = f'{i:06d}'
        Image.fromarray(img).save(osp.join(root, 'images', split, name + '.jpg'), quality=92)
        label_map = np.zeros(canvas, np.uint8)
        image_id = i + 1
        coco['images'].append(dict(id=image_id, file_name=name + '.jpg', height=canvas[0],
                                   width=canvas[1]))
        for inst in instances:
            label_map[inst['mask']] = inst['label'] + 1
            x, y, w, h = inst['bbox']
            coco['annotations'].append(dict(
                id=len(coco['annotations']) + 1, image_id=image_id,
                category_id=inst['label'] + 1, bbox=[x, y, w, h], area=float(w * h),
                segmentation=encode_mask(inst['mask']), iscrowd=0, scan=inst['scan']))
        Image.fromarray(label_map).save(osp.join(root, 'seg', split, name + '.png'))
    with open(osp.join(root, 'annotations', f'instances_{split}.json'), 'w') as f:
        json.dump(coco, f)
    return coco


def write_dataset(root: str, num_train: int = 600, num_val: int = 150, seed: int = 0,
                  canvases: Sequence[Tuple[int, int]] = DEFAULT_CANVASES,
                  size_range: Tuple[int, int] = (24, 96),
                  num_digits: Tuple[int, int] = (3, 8), val_fraction: float = 0.2,
                  photos: Optional[Sequence[str]] = None) -> dict:
    """Write (or reuse) the dataset under ``root`` and return its ``meta.json`` dict.

    Built in a temporary sibling folder and renamed into place, so an interrupted run never
    leaves half a dataset; an existing folder made with the same parameters is reused.
    Layout::

        root/images/{train,val}/NNNNNN.jpg
        root/seg/{train,val}/NNNNNN.png            0 = background, d + 1 = digit d
        root/annotations/instances_{train,val}.json
        root/meta.json                             parameters, scans used per split
    """
    if num_train < 1 or num_val < 1:
        raise ValueError(f'Need at least one image per split; got {num_train} train, '
                         f'{num_val} val.')
    for h, w in canvases:
        if min(h, w) < 2 * size_range[1]:
            raise ValueError(f'Canvas {h}x{w} is too small for digits up to '
                             f'{size_range[1]} px (need at least twice that per side).')
    paths = list(photos) if photos is not None else photo_paths()
    params = dataset_params(num_train, num_val, seed, canvases, size_range, num_digits,
                            paths)
    marker = osp.join(root, 'meta.json')
    if osp.isfile(marker):
        with open(marker) as f:
            meta = json.load(f)
        if meta.get('params') == params:
            return meta
    photo_arrays = load_photos(paths)
    scans, labels = load_scans()
    train_pool, val_pool = split_scans(labels, val_fraction, seed)
    parent = osp.dirname(osp.abspath(root))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='.digit-scenes-', dir=parent)
    try:
        os.makedirs(osp.join(tmp, 'annotations'))
        scene_kw = dict(size_range=tuple(size_range), num_digits=tuple(num_digits))
        # one stream per split: the val scenes do not change with num_train
        streams = np.random.SeedSequence(seed).spawn(2)
        used = {}
        for split, count, pool, stream in (('train', num_train, train_pool, streams[0]),
                                           ('val', num_val, val_pool, streams[1])):
            coco = write_split(tmp, split, count, np.random.default_rng(stream),
                               photo_arrays, scans, labels, pool, canvases, **scene_kw)
            used[split] = dict(images=len(coco['images']),
                               instances=len(coco['annotations']),
                               scans=sorted({a['scan'] for a in coco['annotations']}))
        meta = dict(params=params, classes=list(CLASSES), splits=used,
                    digest=hashlib.sha1(json.dumps(used, sort_keys=True).encode())
                    .hexdigest()[:12])
        with open(osp.join(tmp, 'meta.json'), 'w') as f:
            json.dump(meta, f)
        if osp.isdir(root):
            shutil.rmtree(root)
        os.replace(tmp, root)
    finally:
        if osp.isdir(tmp):
            shutil.rmtree(tmp)
    return meta
