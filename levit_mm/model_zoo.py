"""Model-zoo lookup: levit_mm's model names in mmpretrain's ``ModelHub``.

mmpretrain registers its whole model index lazily, and refuses a second registration of a
name.  So this module first lets mmpretrain register everything, then points the LeViT names
at levit_mm's metafile (our configs, our classes).  It also registers a loader for the LeViT
weights' URL prefix alone, which explains in one line what to do when a download fails.
"""
import os.path as osp
from pathlib import Path
from typing import List
from urllib.parse import urlparse

from mmengine.runner.checkpoint import CheckpointLoader, load_from_http

from .convert import CheckpointUnavailableError

#: URL prefix of the released LeViT weights (mmpretrain's conversions of the official ones).
WEIGHTS_URL_PREFIX = 'https://download.openmmlab.com/mmclassification/v0/levit/'


def package_root() -> Path:
    """Where ``model-index.yml`` and ``configs/`` live: the installed ``.mim`` copy, or the
    source checkout for an editable install."""
    here = Path(__file__).resolve().parent
    mim = here / '.mim'
    return mim if (mim / 'model-index.yml').exists() else here.parent


def model_index_path() -> Path:
    return package_root() / 'model-index.yml'


def checkpoint_cache_dir() -> str:
    """The directory mmengine/torch.hub caches downloaded checkpoints in."""
    from torch.hub import get_dir
    return osp.join(get_dir(), 'checkpoints')


def cached_checkpoint_path(url: str) -> str:
    """Where a download of ``url`` is (or would be) cached."""
    return osp.join(checkpoint_cache_dir(), osp.basename(urlparse(url).path))


def load_from_zoo(filename: str, map_location=None):
    """mmengine loader for LeViT model-zoo URLs: the usual download-or-cache path, with a
    one-line explanation instead of a socket traceback when both fail.  (mmengine logs the
    name after ``load_from_``: "by zoo backend".)"""
    try:
        return load_from_http(filename, map_location=map_location)
    except (OSError, ValueError) as err:  # URLError, socket errors, HTTP errors
        cache = cached_checkpoint_path(filename)
        raise CheckpointUnavailableError(
            f'Cannot download {filename} ({type(err).__name__}: {_reason(err)}) and it is '
            f'not in the cache at {cache}. Download it on a machine with network access '
            f'and copy it there, or pass a local file (pretrained="path/to/levit.pth", '
            f'or the checkpoint argument of the tools).') from None


def _reason(err: Exception) -> str:
    reason = getattr(err, 'reason', None) or err
    return str(reason).strip() or type(err).__name__


def register_model_zoo() -> List[str]:
    """Make levit_mm's model names resolve to levit_mm's configs; idempotent.

    Returns the registered names.
    """
    from mmpretrain.apis.model import ModelHub
    from modelindex.load_model_index import load

    # Let mmpretrain register its own index first; registering ours before it would make
    # its lazy registration fail on the shared LeViT names.
    ModelHub._register_mmpretrain_models()
    index = load(str(model_index_path()))
    index.build_models_with_collections()
    names = []
    for metainfo in index.models:
        metainfo.config = ModelHub._expand_config_path(metainfo, str(package_root()))
        ModelHub._models_dict[metainfo.name.lower()] = metainfo
        names.append(metainfo.name.lower())
    return names


# Only URLs under the LeViT prefix: every other path and URL keeps mmengine's own loader.
CheckpointLoader.register_scheme(prefixes=WEIGHTS_URL_PREFIX, loader=load_from_zoo, force=True)
register_model_zoo()
