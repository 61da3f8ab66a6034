"""Registration into mmpretrain's registries.

mmpretrain 1.2.0 registers its own ``LeViT`` and ``LeViTClsHead``.  levit_mm's classes are a
drop-in superset (same arguments, same checkpoint keys), so they take those names over with
``force=True``.  Importing ``mmpretrain.models`` first guarantees mmpretrain's registration
has already happened, whatever the import order, so it can never overwrite ours later or
raise a "already registered" error.
"""
import mmpretrain.models  # noqa: F401  (registers mmpretrain's modules first)
from mmpretrain.registry import MODELS


def register_model(cls=None, *, name=None):
    """Class decorator: register ``cls`` in mmpretrain's MODELS, replacing a namesake."""

    def _register(klass):
        MODELS.register_module(name=name or klass.__name__, module=klass, force=True)
        return klass

    return _register(cls) if cls is not None else _register
