"""A fixed set of real photographs for agreement checks (reduced precision, exports).

No dataset can be downloaded here, so the photos that ship inside installed packages
(scikit-learn's two sample images, matplotlib's Grace Hopper) are cropped three ways each
(centre and two corners, after resizing the short side to 256) and normalised as LeViT's
ImageNet pipeline does.
"""
import glob
import os.path as osp

import torch
import torch.nn.functional as F

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


def sample_photo_paths():
    paths = []
    for package, pattern in [('sklearn', 'datasets/images/*.jpg'),
                             ('matplotlib', 'mpl-data/sample_data/grace_hopper.jpg')]:
        try:
            module = __import__(package)
        except ImportError:
            continue
        paths += sorted(glob.glob(osp.join(osp.dirname(module.__file__), pattern)))
    return paths


def sample_photo_crops(size: int = 224) -> torch.Tensor:
    """``(3 * num_photos, 3, size, size)`` normalised crops; raises if no photo is found."""
    import mmcv
    paths = sample_photo_paths()
    if not paths:
        raise FileNotFoundError('No sample photos found (need scikit-learn or matplotlib '
                                'installed).')
    crops = []
    for path in paths:
        img = torch.from_numpy(mmcv.imread(path, channel_order='rgb')).permute(2, 0, 1)
        img = F.interpolate(img[None].float(), scale_factor=256 / min(img.shape[1:]),
                            mode='bilinear')[0]
        h, w = img.shape[1:]
        for top, left in [((h - size) // 2, (w - size) // 2), (0, 0),
                          (h - size, w - size)]:
            crops.append(img[:, top:top + size, left:left + size])
    mean = torch.tensor(IMAGENET_MEAN)[:, None, None]
    std = torch.tensor(IMAGENET_STD)[:, None, None]
    return (torch.stack(crops) - mean) / std


def agreement(reference: torch.Tensor, other: torch.Tensor):
    """``(top-1 agreement, max |logit diff|, max |diff| / max |reference logit|)``."""
    other = other.float()
    top1 = (reference.argmax(1) == other.argmax(1)).float().mean().item()
    diff = (other - reference).abs().max().item()
    return top1, diff, diff / reference.abs().max().item()
