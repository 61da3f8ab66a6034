"""Loading an image that names the file and the cause when it cannot be read.

mmcv's ``LoadImageFromFile`` answers a truncated JPEG in the middle of a dataset with
``AssertionError: failed to load image`` from deep inside a DataLoader worker.
:class:`CheckedLoadImageFromFile` is the same transform (same arguments, same pixels for
every readable file) under its own name, so nothing changes for configs that do not ask for
it; an unreadable file is, by ``on_error``:

* ``'raise'``: :class:`UnreadableImageError` naming the file and why (truncated, not an
  image, empty, missing, permission denied);
* ``'skip'``: a warning, and ``None`` -- mmengine's datasets then draw another sample in
  training (their ``max_refetch`` mechanism); test-mode datasets refuse ``None``;
* ``'mark'``: a 1x1 black placeholder whose ``unreadable_image`` field holds the cause, for
  :class:`~levit_mm.engine.bad_images.UnreadableImageHook` (which stops the run or logs the
  file, in the main process, knowing how many images were done) and
  :class:`~levit_mm.engine.bad_images.SkipUnreadableImages` (which leaves it out of the
  metrics).  1x1 is the smallest image, so padding a batch to its largest member never
  changes the other images, and every resize/crop pipeline accepts it.
"""
import os
import os.path as osp
from typing import Optional

import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmpretrain.registry import TRANSFORMS

#: the field of a placeholder sample (and of its data sample's metainfo) giving the cause
UNREADABLE_KEY = 'unreadable_image'
ON_ERROR = ('raise', 'skip', 'mark')


class UnreadableImageError(ValueError):
    """An image of the dataset cannot be read; the message names it and says why."""


def describe_unreadable(path: str, err: Optional[BaseException] = None) -> str:
    """Why the image ``path`` could not be read, in plain words."""
    if '://' in path:  # a remote backend: only its own error says why
        return f'{type(err).__name__}: {err}' if err is not None else 'it could not be read'
    if not osp.lexists(path):
        return 'no such file'
    if osp.isdir(path):
        return 'it is a folder, not an image file'
    if isinstance(err, OSError) and err.errno is not None:
        return os.strerror(err.errno).lower()
    if not os.access(path, os.R_OK):
        return 'permission denied'
    size = osp.getsize(path)
    if size == 0:
        return 'the file is empty (0 bytes)'
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as img:
            img.load()
    except UnidentifiedImageError:
        return f'not an image in a known format ({size} bytes)'
    except Exception as pil_err:  # noqa: BLE001 (any decoder failure is the answer)
        detail = str(pil_err).splitlines()[0] if str(pil_err) else type(pil_err).__name__
        return f'the file is truncated or corrupt ({size} bytes; {detail})'
    return (f'OpenCV cannot decode it ({size} bytes), PIL can: use '
            "imdecode_backend='pillow'")


@TRANSFORMS.register_module()
class CheckedLoadImageFromFile(LoadImageFromFile):
    """``LoadImageFromFile`` (same arguments) that says which file could not be read and
    why, and can skip or mark it instead (``on_error``, see the module docstring)."""

    def __init__(self, on_error: str = 'raise', **kwargs):
        if on_error not in ON_ERROR:
            raise ValueError(f'on_error must be one of {ON_ERROR}, got {on_error!r}.')
        super().__init__(**kwargs)
        self.on_error = on_error

    def transform(self, results: dict) -> Optional[dict]:
        path = results['img_path']
        try:
            return super().transform(results)  # None only with ignore_empty, as before
        except Exception as err:  # noqa: BLE001 (mmcv asserts, cv2 errors, OSError ...)
            cause = describe_unreadable(path, err)
        if self.on_error == 'raise':
            raise UnreadableImageError(f'cannot read image {path!r}: {cause}.')
        if self.on_error == 'skip':
            from mmengine.logging import print_log
            print_log(f'skipped unreadable image {path!r}: {cause}', logger='current',
                      level=30)
            return None
        shape = (1, 1) if self.color_type == 'grayscale' else (1, 1, 3)
        img = np.zeros(shape, np.float32 if self.to_float32 else np.uint8)
        results.update(img=img, img_shape=(1, 1), ori_shape=(1, 1))
        results[UNREADABLE_KEY] = cause
        return results

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f", on_error='{self.on_error}')"
