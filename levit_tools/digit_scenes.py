"""Digit scenes: a small real detection / segmentation dataset made offline.

Nothing can be downloaded here, so the objects are scikit-learn's 1,797 real handwritten
8x8 digit scans, scaled up and pasted as ink onto crops of real photographs that ship
inside installed packages (scikit-image's ``data`` images when it is installed,
scikit-learn's two sample photos, matplotlib's Grace Hopper).  One to a few digits per
image, some cut by the border, some partly hiding an earlier one.

Written three ways from the same scenes:

* COCO detection + instance masks for mmdet (``annotations/instances_{split}.json``, ten
  classes, and ``instances_{split}_agnostic.json``, the same instances as one ``digit``
  class; each mask is the digit's own visible ink, the thresholded scan, as compressed RLE;
  its box is the mask's tight box);
* an image / label-map folder for mmseg (``seg/{split}/*.png``: 0 background, ``d + 1``
  for digit ``d``);
* and, with :func:`write_crops`, a classification folder of one digit per photo crop at the
  scenes' digit sizes, to pretrain a backbone at the scale and on the ground it will see.

The scans are split per class with a seed exactly as ``tools/digits_demo.py`` splits them
for the digits classifier, so with the same seed the validation scenes use only scans that
neither the detection training scenes nor a classifier of the same seed saw.
"""
import hashlib
import json
import os
import os.path as osp
import shutil
import tempfile
from typing import Callable, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from levit_mm.datasets.digit_scenes import AGNOSTIC_CLASSES, CLASSES

#: (height, width) canvases, used in turn.  One square size: no padding in a batch, and
#: 256 px holds a few 48-112 px digits at a sixth of a 640x640 canvas' compute.
DEFAULT_CANVASES = ((256, 256), )
DEFAULT_DIGIT_PX = (48, 112)
DEFAULT_DIGITS = (1, 3)
FORMAT_VERSION = 2


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


class Material(NamedTuple):
    """What scenes are made of: photos, scans, their labels, and the scans one split uses."""
    photos: Sequence[np.ndarray]
    scans: np.ndarray
    labels: np.ndarray
    pool: np.ndarray


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


def digit_position(rng: np.random.Generator, size: Tuple[int, int],
                   canvas: Tuple[int, int], border_prob: float) -> Tuple[int, int]:
    """Top-left ``(y, x)`` of a ``size`` digit: anywhere inside, or with probability
    ``border_prob`` pushed 10-45% over a random edge."""
    (h, w), (height, width) = size, canvas
    if rng.random() >= border_prob:
        return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
    side = rng.integers(4)
    y = int(rng.integers(-h // 3, height - h + h // 3 + 1))
    x = int(rng.integers(-w // 3, width - w + w // 3 + 1))
    out = int(rng.uniform(0.1, 0.45) * (h if side < 2 else w))
    y = (-out, height - h + out, y, y)[side]
    x = (x, x, -out, width - w + out)[side]
    return y, x


class Scene:
    """A canvas being filled: the image, which instance owns each pixel's ink, and the
    instances' labels, scans and visible ink."""

    def __init__(self, img: np.ndarray, threshold: float, max_cut: float,
                 max_hidden: float):
        self.img = img.astype(np.float32)
        self.owner = np.full(img.shape[:2], -1, np.int32)
        self.instances: List[dict] = []
        self.threshold, self.max_cut, self.max_hidden = threshold, max_cut, max_hidden

    def paste(self, rng, ink: np.ndarray, pos: Tuple[int, int], label: int,
              scan: int) -> bool:
        """Paste ``ink`` at ``pos`` unless too much of it falls outside the canvas or it
        would hide too much of an earlier digit; True if pasted."""
        full = ink >= self.threshold
        (y, x), (h, w) = pos, ink.shape
        y0, x0 = max(y, 0), max(x, 0)
        y1, x1 = min(y + h, self.owner.shape[0]), min(x + w, self.owner.shape[1])
        if y1 - y0 < 4 or x1 - x0 < 4:
            return False
        sub_ink = ink[y0 - y:y1 - y, x0 - x:x1 - x]
        sub_mask = full[y0 - y:y1 - y, x0 - x:x1 - x]
        if sub_mask.sum() < (1 - self.max_cut) * full.sum():
            return False
        region = self.owner[y0:y1, x0:x1]
        covered = region[sub_mask]
        if any(np.count_nonzero(covered == j) > self.max_hidden * inst['visible']
               for j, inst in enumerate(self.instances)):
            return False
        colour = ink_colour(rng, self.img[y0:y1, x0:x1])
        # a soft edge around the mask, and none of the scans' faint background haze
        # (which would paint each digit's box as a visible rectangle)
        alpha = np.clip((sub_ink[..., None] - self.threshold) * 2 + 0.5, 0.0, 1.0)
        patch = self.img[y0:y1, x0:x1]
        self.img[y0:y1, x0:x1] = patch * (1 - alpha) + colour * alpha
        region[sub_mask] = len(self.instances)
        self.instances.append(dict(label=label, scan=scan))
        for j, inst in enumerate(self.instances):
            inst['visible'] = int(np.count_nonzero(self.owner == j))
        return True

    def result(self) -> Tuple[np.ndarray, List[dict]]:
        out = []
        for j, inst in enumerate(self.instances):
            mask = self.owner == j
            out.append(dict(label=inst['label'], scan=inst['scan'], mask=mask,
                            bbox=mask_box(mask)))
        return np.clip(self.img + 0.5, 0, 255).astype(np.uint8), out


def make_scene(rng: np.random.Generator, material: Material, canvas: Tuple[int, int],
               num_digits: Tuple[int, int] = DEFAULT_DIGITS,
               size_range: Tuple[int, int] = DEFAULT_DIGIT_PX, border_prob: float = 0.25,
               max_cut: float = 0.4, max_hidden: float = 0.25,
               threshold: float = 0.5) -> Tuple[np.ndarray, List[dict]]:
    """One image and its instances.

    Each digit is a scan from ``material.pool``, ``size_range`` pixels tall (log-uniform)
    and 70-100% as wide, pasted as ink of one colour.  Its mask is where the ink coverage
    reaches ``threshold`` and no later digit covers it.  With probability ``border_prob`` a
    digit is pushed over an edge (up to ``max_cut`` of its ink outside); a placement that
    would hide more than ``max_hidden`` of an earlier digit's visible ink is redrawn.

    Returns ``(image HxWx3 uint8, [dict(label, scan, mask HxW bool, bbox [x, y, w, h])])``.
    """
    scene = Scene(background(rng, material.photos, canvas), threshold, max_cut, max_hidden)
    wanted = int(rng.integers(num_digits[0], num_digits[1] + 1))
    for _ in range(20 * wanted):
        if len(scene.instances) == wanted:
            break
        scan = int(material.pool[rng.integers(len(material.pool))])
        h = int(round(np.exp(rng.uniform(*np.log(size_range)))))
        w = max(4, int(round(h * rng.uniform(0.7, 1.0))))
        ink = render_digit(material.scans[scan], (h, w))
        if (ink >= threshold).sum() < 8:
            continue
        pos = digit_position(rng, (h, w), canvas, border_prob)
        scene.paste(rng, ink, pos, int(material.labels[scan]), scan)
    return scene.result()


# ---------------------------------------------------------------- writing a dataset
def encode_mask(mask: np.ndarray) -> dict:
    """COCO compressed RLE (``counts`` as text, as in COCO's own json)."""
    from pycocotools import mask as mask_utils
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return dict(size=[int(s) for s in rle['size']], counts=rle['counts'].decode('ascii'))


def coco_annotation(image_id: int, ann_id: int, inst: dict) -> dict:
    x, y, w, h = inst['bbox']
    return dict(id=ann_id, image_id=image_id, category_id=inst['label'] + 1,
                bbox=[x, y, w, h], area=float(w * h), segmentation=encode_mask(inst['mask']),
                iscrowd=0, scan=inst['scan'])


def agnostic(coco: dict) -> dict:
    """The same instances as one ``digit`` class (category 1)."""
    return dict(coco, categories=[dict(id=1, name=AGNOSTIC_CLASSES[0])],
                annotations=[dict(a, category_id=1) for a in coco['annotations']])


def write_split(root: str, split: str, count: int, rng: np.random.Generator,
                material: Material, canvases, **scene_kw) -> dict:
    """Write ``count`` scenes of one split; returns its COCO dict (also written, with its
    class-agnostic twin)."""
    from PIL import Image
    for folder in ('images', 'seg'):
        os.makedirs(osp.join(root, folder, split), exist_ok=True)
    coco = dict(images=[], annotations=[],
                categories=[dict(id=i + 1, name=name) for i, name in enumerate(CLASSES)])
    for i in range(count):
        canvas = tuple(canvases[i % len(canvases)])
        img, instances = make_scene(rng, material, canvas, **scene_kw)
        name = f'{i:06d}'
        Image.fromarray(img).save(osp.join(root, 'images', split, name + '.jpg'), quality=92)
        label_map = np.zeros(canvas, np.uint8)
        coco['images'].append(dict(id=i + 1, file_name=name + '.jpg', height=canvas[0],
                                   width=canvas[1]))
        for inst in instances:
            label_map[inst['mask']] = inst['label'] + 1
            coco['annotations'].append(
                coco_annotation(i + 1, len(coco['annotations']) + 1, inst))
        Image.fromarray(label_map).save(osp.join(root, 'seg', split, name + '.png'))
    for suffix, content in (('', coco), ('_agnostic', agnostic(coco))):
        with open(osp.join(root, 'annotations', f'instances_{split}{suffix}.json'), 'w') as f:
            json.dump(content, f)
    return coco


def build_atomically(root: str, params: dict, build: Callable[[str], dict]) -> dict:
    """``root/meta.json`` if it was made with ``params``; else ``build(tmp)`` in a temporary
    sibling folder (returning the meta dict, ``params`` added), renamed into place, so an
    interrupted run never leaves half a folder."""
    marker = osp.join(root, 'meta.json')
    if osp.isfile(marker):
        with open(marker) as f:
            meta = json.load(f)
        if meta.get('params') == params:
            return meta
    parent = osp.dirname(osp.abspath(root))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='.digit-scenes-', dir=parent)
    try:
        meta = dict(params=params, **build(tmp))
        with open(osp.join(tmp, 'meta.json'), 'w') as f:
            json.dump(meta, f)
        if osp.isdir(root):
            shutil.rmtree(root)
        os.replace(tmp, root)
    finally:
        if osp.isdir(tmp):
            shutil.rmtree(tmp)
    return meta


def split_material(photos: Optional[Sequence[str]], val_fraction: float, seed: int):
    """(photo file names, {split: Material}) for a seed's scan split."""
    paths = list(photos) if photos is not None else photo_paths()
    arrays = load_photos(paths)
    scans, labels = load_scans()
    pools = dict(zip(('train', 'val'), split_scans(labels, val_fraction, seed)))
    names = [osp.basename(p) for p in paths]
    return names, {split: Material(arrays, scans, labels, pool)
                   for split, pool in pools.items()}


def split_streams(seed: int) -> dict:
    """One random stream per split: the val scenes do not change with the train count."""
    return dict(zip(('train', 'val'), np.random.SeedSequence(seed).spawn(2)))


def check_sizes(canvases: Sequence[Tuple[int, int]], size_range: Tuple[int, int],
                room: int = 2) -> None:
    """Digit sizes that make sense, and canvases ``room`` times the largest digit."""
    if not 4 <= size_range[0] <= size_range[1]:
        raise ValueError(f'Digit sizes {size_range[0]}-{size_range[1]} px: need '
                         '4 <= minimum <= maximum.')
    for h, w in canvases:
        if min(h, w) < room * size_range[1]:
            raise ValueError(f'Canvas {h}x{w} is too small for digits up to '
                             f'{size_range[1]} px (need at least {room * size_range[1]} '
                             'px per side).')


def write_dataset(root: str, num_train: int = 600, num_val: int = 150, seed: int = 0,
                  canvases: Sequence[Tuple[int, int]] = DEFAULT_CANVASES,
                  size_range: Tuple[int, int] = DEFAULT_DIGIT_PX,
                  num_digits: Tuple[int, int] = DEFAULT_DIGITS, val_fraction: float = 0.2,
                  photos: Optional[Sequence[str]] = None) -> dict:
    """Write (or reuse) the dataset under ``root`` and return its ``meta.json`` dict.

    An existing folder made with the same parameters is reused.  Layout::

        root/images/{train,val}/NNNNNN.jpg
        root/seg/{train,val}/NNNNNN.png            0 = background, d + 1 = digit d
        root/annotations/instances_{train,val}.json           ten classes
        root/annotations/instances_{train,val}_agnostic.json  one class, 'digit'
        root/meta.json                             parameters, scans used per split
    """
    if num_train < 1 or num_val < 1:
        raise ValueError(f'Need at least one image per split; got {num_train} train, '
                         f'{num_val} val.')
    check_sizes(canvases, size_range)
    names, material = split_material(photos, val_fraction, seed)
    params = dict(version=FORMAT_VERSION, num_train=num_train, num_val=num_val, seed=seed,
                  canvases=[list(c) for c in canvases], size_range=list(size_range),
                  num_digits=list(num_digits), photos=names)

    def build(tmp):
        os.makedirs(osp.join(tmp, 'annotations'))
        used, streams = {}, split_streams(seed)
        for split, count in (('train', num_train), ('val', num_val)):
            coco = write_split(tmp, split, count, np.random.default_rng(streams[split]),
                               material[split], canvases, size_range=tuple(size_range),
                               num_digits=tuple(num_digits))
            used[split] = dict(images=len(coco['images']),
                               instances=len(coco['annotations']),
                               scans=sorted({a['scan'] for a in coco['annotations']}))
        digest = hashlib.sha1(json.dumps(used, sort_keys=True).encode()).hexdigest()[:12]
        return dict(classes=list(CLASSES), splits=used, digest=digest)
    return build_atomically(root, params, build)


def write_crops(root: str, num_train: int = 3000, num_val: int = 500, px: int = 128,
                size_range: Tuple[int, int] = DEFAULT_DIGIT_PX, seed: int = 0,
                val_fraction: float = 0.2, photos: Optional[Sequence[str]] = None) -> dict:
    """A classification folder (mmpretrain's ``CustomDataset``): ``root/{train,val}/<digit>/
    NNNNN.jpg``, each a ``px`` x ``px`` photo crop holding one digit drawn as the scenes draw
    them (same sizes, ink, ground; never cut by the border), from the same per-seed scan
    split.  Pretraining on it teaches a backbone the digits at the scenes' scale."""
    check_sizes([(px, px)], size_range, room=1)
    names, material = split_material(photos, val_fraction, seed)
    params = dict(version=FORMAT_VERSION, kind='crops', num_train=num_train,
                  num_val=num_val, px=px, size_range=list(size_range), seed=seed,
                  photos=names)

    def build(tmp):
        from PIL import Image
        counts, streams = {}, split_streams(seed)
        for split, count in (('train', num_train), ('val', num_val)):
            rng = np.random.default_rng(streams[split])
            for label in range(10):
                os.makedirs(osp.join(tmp, split, str(label)))
            for i in range(count):
                img, instances = make_scene(rng, material[split], (px, px), (1, 1),
                                            size_range, border_prob=0.)
                for inst in instances:  # one, or none where no placement fitted
                    Image.fromarray(img).save(
                        osp.join(tmp, split, str(inst['label']), f'{i:05d}.jpg'), quality=92)
            counts[split] = sum(len(os.listdir(osp.join(tmp, split, str(d))))
                                for d in range(10))
        return dict(classes=list(CLASSES), images=counts)
    return build_atomically(root, params, build)
