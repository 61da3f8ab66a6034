"""Checks of model names and configs that turn a typo into one specific message.

Each check raises a ``ValueError`` subclass (``FileNotFoundError`` for missing files) whose
text says what was expected and what was found; :func:`levit_tools.cli.run_cli` prints
it as ``error: ...`` and exits 2.  Nothing here parses arguments or prints.
"""
import difflib
import os.path as osp
from typing import Dict, List, Optional, Sequence

from levit_mm.arch import ARCH_SETTINGS


class UnknownModelError(ValueError):
    """A model name is not in the model index (the message suggests close names)."""


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

    from levit_mm.model_zoo import register_model_zoo
    register_model_zoo()
    return list(ModelHub._models_dict)


def _levit_configs() -> List[str]:
    from levit_mm.model_zoo import package_root
    root = package_root() / 'configs' / 'levit'
    return sorted(str(p.relative_to(package_root())) for p in root.rglob('*.py'))
