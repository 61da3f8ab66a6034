from ..registry import register_model
from .levit import LeViT

register_model(LeViT)

__all__ = ['LeViT']
