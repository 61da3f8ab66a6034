"""Checks that turn bad user input into one specific message, shared by every tool.

Each check raises a ``ValueError`` subclass (``FileNotFoundError`` for missing files) whose
text says what was expected and what was found; :func:`levit_mm.tools_common.run_cli` prints
it as ``error: ...`` and exits 2.  Nothing here parses arguments or prints.

Images: any file PIL can decode fully works, whatever its mode (grayscale, RGBA, palette,
16-bit, CMYK ...): it becomes 8-bit RGB.  Images of any size work, even smaller than the
stem's stride of 16: the test pipeline resizes the short edge to 256 first, and the stem's
padded convolutions turn any input of at least 1x1 into at least one token.
"""
import difflib
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from PIL import Image

#: How many mismatched keys a checkpoint message lists before summarising the rest.
MAX_LISTED_KEYS = 12


class ImageReadError(ValueError):
    """An image file exists but cannot be decoded completely."""


class UnknownModelError(ValueError):
    """A model name is not in the model index (the message suggests close names)."""


class CheckpointMismatchError(ValueError):
    """A checkpoint's tensors do not fit the model (wrong variant, head or layout)."""


class NonFiniteInputError(ValueError):
    """A NaN or infinite value reached the model's input."""


# --------------------------------------------------------------------------- images
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


# --------------------------------------------------------------------------- tensors
def check_finite(x: torch.Tensor, what: str = 'input') -> None:
    """Raise :class:`NonFiniteInputError` if ``x`` holds NaN or +-Inf, with the counts.

    The common case costs one reduction: a sum is finite whenever every element is (NaN
    and Inf propagate), so only a non-finite sum -- a bad element, or an overflow of large
    finite values -- pays for the element-wise test.  (``isfinite(x).all()`` alone took
    about 5% of a batch-16 LeViT-128S forward.)
    """
    if not x.is_floating_point() or bool(torch.isfinite(x.sum())):
        return
    if not bool(torch.isfinite(x).all()):
        nan = int(torch.isnan(x).sum())
        pos = int(torch.isposinf(x).sum())
        neg = int(torch.isneginf(x).sum())
        raise NonFiniteInputError(
            f'The {what} contains non-finite values ({nan} NaN, {pos} +Inf, {neg} -Inf '
            f'of {x.numel()} elements, shape {tuple(x.shape)}); expected finite numbers. '
            'Check how the image was decoded and normalised (a zero std gives Inf).')


# --------------------------------------------------------------------------- models
def check_model_source(model: str, candidates: Optional[Sequence[str]] = None) -> str:
    """Validate a model name or config path before anything is built.

    A ``.py`` path must exist and name a known LeViT arch; a name must be in the model
    index, else the message suggests the closest names (``difflib``).
    """
    if model.endswith('.py') or osp.sep in model:
        if not osp.isfile(model):
            raise FileNotFoundError(f'Config file not found: {model!r}.'
                                    + _suggest(model, _levit_configs(), 'configs'))
        from mmengine.config import Config
        check_config_arch(Config.fromfile(model), model)
        return model
    names = list(candidates) if candidates is not None else _model_names()
    if model.lower() not in names:
        raise UnknownModelError(f'Unknown model name {model!r}.' + _suggest_model(
            model.lower(), names) + ' List the LeViT names with: python -c '
            '"import levit_mm, mmpretrain; print(mmpretrain.list_models(\'levit*\'))".')
    return model


def _suggest_model(word: str, names: Sequence[str]) -> str:
    """Close names, matching the full name or its architecture part (before the first
    ``_``), so ``levit128s`` finds ``levit-128s_3rdparty_in1k``."""
    by_key: Dict[str, List[str]] = {}
    for name in names:
        for key in {name, name.split('_')[0]}:
            by_key.setdefault(key, []).append(name)
    close: List[str] = []
    for key in difflib.get_close_matches(word, list(by_key), n=6, cutoff=0.6):
        close += [n for n in sorted(by_key[key]) if n not in close]
    if not close:
        return ''
    return ' Closest models: ' + ', '.join(repr(c) for c in close[:3]) + '.'


def check_config_arch(cfg, source: str = 'the config') -> None:
    """A config's LeViT backbone must name one of the known archs (or give a dict)."""
    from .backbones.levit import ARCH_SETTINGS
    backbone = cfg.get('model', {}).get('backbone', {}) or {}
    if backbone.get('type') not in ('LeViT', 'mmpretrain.LeViT'):
        return
    arch = backbone.get('arch', '128s')
    if isinstance(arch, str) and arch.lower() not in ARCH_SETTINGS:
        raise ValueError(f'{source} asks for LeViT arch {arch!r}, which does not exist; '
                         f'the variants are {list(ARCH_SETTINGS)} (or a dict with '
                         'embed_dims, num_heads, depths, key_dims).'
                         + _suggest(arch.lower(), list(ARCH_SETTINGS), 'archs', cutoff=0.3))


def _suggest(word: str, options: Sequence[str], what: str, cutoff: float = 0.6) -> str:
    close = difflib.get_close_matches(word, options, n=3, cutoff=cutoff)
    if not close:
        return ''
    return f' Closest {what}: ' + ', '.join(repr(c) for c in close) + '.'


def _model_names() -> List[str]:
    from mmpretrain.apis.model import ModelHub

    from .model_zoo import register_model_zoo
    register_model_zoo()
    return list(ModelHub._models_dict)


def _levit_configs() -> List[str]:
    from .model_zoo import package_root
    root = package_root() / 'configs' / 'levit'
    return sorted(str(p.relative_to(package_root())) for p in root.rglob('*.py'))


# --------------------------------------------------------------------------- checkpoints
def checkpoint_state_dict(checkpoint: dict) -> Dict[str, torch.Tensor]:
    """The tensors of an mmengine/mmpretrain checkpoint (or a bare state dict)."""
    state = checkpoint.get('state_dict', checkpoint.get('model', checkpoint))
    if not isinstance(state, dict):
        raise CheckpointMismatchError('The checkpoint holds no state dict (expected a dict '
                                      f'of tensors, found {type(state).__name__}).')
    return {k[7:] if k.startswith('module.') else k: v for k, v in state.items()
            if isinstance(v, torch.Tensor)}


#: Saved by other layouts, derived here (the attention-bias index buffers).
IGNORED_SUFFIXES = ('attention_bias_idxs', )


def state_dict_mismatches(model: torch.nn.Module, state: Dict[str, torch.Tensor]
                          ) -> Tuple[List[Tuple[str, tuple, tuple]], List[str], List[str]]:
    """``(shape_mismatches, missing, unexpected)`` of ``state`` against ``model``."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    given = {k: tuple(v.shape) for k, v in state.items() if not k.endswith(IGNORED_SUFFIXES)}
    shapes = [(k, given[k], expected[k]) for k in expected
              if k in given and given[k] != expected[k]]
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    return shapes, missing, unexpected


def guess_levit_arch(state: Dict[str, torch.Tensor]) -> Optional[str]:
    """Which published LeViT backbone a state dict's ``backbone.*`` tensors fit, if any."""
    from .backbones.levit import ARCH_SETTINGS, LeViT
    backbone = {k[len('backbone.'):]: tuple(v.shape) for k, v in state.items()
                if k.startswith('backbone.') and not k.endswith(IGNORED_SUFFIXES)}
    if not backbone:
        return None
    for arch in ARCH_SETTINGS:
        with torch.device('meta'):
            shapes = {k: tuple(v.shape) for k, v in LeViT(arch).state_dict().items()}
        if shapes == backbone:
            return arch
    return None


def check_checkpoint_fits(model: torch.nn.Module, checkpoint: dict, source: str) -> None:
    """Refuse a checkpoint whose tensors do not fit ``model``, listing keys and shapes.

    mmengine's ``load_checkpoint`` only warns on a shape mismatch and leaves those layers
    random; a tool that then prints predictions would be silently wrong.
    """
    state = checkpoint_state_dict(checkpoint)
    shapes, missing, unexpected = state_dict_mismatches(model, state)
    if not (shapes or missing or unexpected):
        return
    lines = [f'Checkpoint {source!r} does not fit the model: {len(shapes)} tensors differ '
             f'in shape, {len(missing)} are missing, {len(unexpected)} are unexpected.']
    arch = guess_levit_arch(state)
    if arch is not None:
        lines.append(f'It holds a LeViT-{arch.upper()} backbone: use '
                     f'configs/levit/levit-{arch}_8xb256_in1k.py (or the model name '
                     f'levit-{arch}_3rdparty_in1k).')
    details = [f'  shape {k}: checkpoint {list(got)} vs model {list(want)}'
               for k, got, want in shapes]
    details += [f'  missing {k}' for k in missing]
    details += [f'  unexpected {k}' for k in unexpected]
    lines += details[:MAX_LISTED_KEYS]
    if len(details) > MAX_LISTED_KEYS:
        lines.append(f'  ... and {len(details) - MAX_LISTED_KEYS} more')
    raise CheckpointMismatchError('\n'.join(lines))


def load_checkpoint_strict(model: torch.nn.Module, filename: str) -> dict:
    """Load ``filename`` (path or URL) into ``model`` only if every tensor fits.

    Returns the checkpoint; sets ``model._dataset_meta`` from its meta (class names), as
    ``mmpretrain.get_model`` does.
    """
    from mmengine.runner.checkpoint import _load_checkpoint, _load_checkpoint_to_model

    from .engine.checkpoint_globals import mmengine_checkpoint_globals
    from .model_zoo import CheckpointUnavailableError
    if '://' not in filename and not osp.isfile(filename):
        raise FileNotFoundError(f'Checkpoint not found: {filename!r} (no such file).')
    try:
        with mmengine_checkpoint_globals():  # training checkpoints hold mmengine state
            checkpoint = _load_checkpoint(filename, map_location='cpu')
    except (RuntimeError, EOFError, OSError) as err:
        if isinstance(err, (FileNotFoundError, CheckpointUnavailableError)):
            raise
        raise CheckpointMismatchError(f'Cannot read checkpoint {filename!r}: the file is '
                                      f'truncated or not a torch checkpoint ({err}).') from None
    if not isinstance(checkpoint, dict):
        raise CheckpointMismatchError(f'Checkpoint {filename!r} holds a '
                                      f'{type(checkpoint).__name__}, expected a dict.')
    check_checkpoint_fits(model, checkpoint, filename)
    _load_checkpoint_to_model(model, checkpoint, strict=False)
    meta = checkpoint.get('meta', {}) or {}
    if 'dataset_meta' in meta:
        model._dataset_meta = meta['dataset_meta']
    return checkpoint
