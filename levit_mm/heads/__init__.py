from ..registry import register_model
from .levit_head import LeViTClsHead, hard_distillation_loss, soft_distillation_loss

register_model(LeViTClsHead)

__all__ = ['LeViTClsHead', 'hard_distillation_loss', 'soft_distillation_loss']
