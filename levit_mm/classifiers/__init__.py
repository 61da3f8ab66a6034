from ..registry import register_model
from .levit_classifier import LeViTClassifier

register_model(LeViTClassifier)

__all__ = ['LeViTClassifier']
