"""Decoding image files for the tools, with one specific message per kind of bad file.

Any file PIL can decode fully works, whatever its mode (grayscale, RGBA, palette, 16-bit,
CMYK ...): it becomes 8-bit RGB.  Images of any size work, even smaller than the stem's
stride of 16: the test pipeline resizes the short edge to 256 first, and the stem's padded
convolutions turn any input of at least 1x1 into at least one token.
"""
import os
import os.path as osp

import numpy as np
from PIL import Image


class ImageReadError(ValueError):
    """An image file exists but cannot be decoded completely."""


def load_rgb_image(path: str) -> np.ndarray:
    """Decode ``path`` completely into an ``(H, W, 3)`` uint8 RGB array.

    Raises ``FileNotFoundError`` for a missing path and :class:`ImageReadError` for a
    directory, an unreadable file, an undecodable or a truncated image.
    """
    if not osp.exists(path):
        raise FileNotFoundError(f'Image not found: {path!r} (no such file).')
    if osp.isdir(path):
        raise ImageReadError(f'Expected an image file, got the directory {path!r}.')
    if not os.access(path, os.R_OK):
        raise ImageReadError(f'Image {path!r} is not readable (permission denied).')
    try:
        with Image.open(path) as img:
            img.load()  # decodes every byte: truncation shows up here, not later
            return to_rgb_uint8(img)
    except Image.DecompressionBombError as err:
        raise ImageReadError(f'Image {path!r} is too large to decode safely: {err}') from None
    except (OSError, SyntaxError, ValueError) as err:
        size = osp.getsize(path)
        if 'cannot identify image file' in str(err):
            found = 'an empty file' if size == 0 else f'{size} bytes in no known image format'
            raise ImageReadError(f'{path!r} is not a readable image: expected a JPEG, PNG, '
                                 f'BMP, TIFF, WebP or GIF file, found {found}.') from None
        raise ImageReadError(f'Image {path!r} is truncated or corrupt ({size} bytes): '
                             f'{err}.') from None


def to_rgb_uint8(img: Image.Image) -> np.ndarray:
    """Any PIL mode -> ``(H, W, 3)`` uint8 RGB; 16-bit and float data are rescaled, not
    clipped, so a 16-bit photo keeps its contrast."""
    if img.mode in ('I;16', 'I;16B', 'I;16L', 'I;16N', 'I', 'F'):
        arr = np.asarray(img, dtype=np.float64)
        if img.mode == 'F':
            top = 1.0 if arr.size and np.nanmax(arr) <= 1.0 else 255.0
        else:
            top = 65535.0 if img.mode.startswith('I;16') or arr.max(initial=0) > 255 else 255.0
        arr = np.clip(np.nan_to_num(arr) / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(arr[..., None], 3, axis=2)
    if img.mode == 'P' and 'transparency' in img.info:
        img = img.convert('RGBA')  # PIL's recommended path for palette transparency
    return np.asarray(img.convert('RGB'), dtype=np.uint8).copy()
