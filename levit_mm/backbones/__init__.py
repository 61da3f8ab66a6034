from ..registry import register_model
from .levit import ARCH_SETTINGS, LeViT, resolve_arch

register_model(LeViT)

__all__ = ['ARCH_SETTINGS', 'LeViT', 'resolve_arch']
