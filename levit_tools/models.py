"""Building LeViT classifiers for the tools, tests and benchmarks, levit_mm's and the peers'.

One config dict for levit_mm's classifier (:func:`classifier_cfg`), so a tool never writes
its own; and the public implementations it is measured against (mmpretrain 1.2.0, timm,
Hugging Face ``transformers``), built with random weights at the same arch, BN fused where
they offer it.
"""
from typing import Optional

import torch.nn as nn

from levit_mm.arch import resolve_arch
from levit_mm.backbones.layers import fuse_modules


def classifier_cfg(arch='128s', num_classes: int = 1000, deploy: bool = False,
                   distillation: bool = True, out_indices=(2, ), **backbone) -> dict:
    """levit_mm's ``LeViTClassifier`` config for ``arch`` (a name or an arch dict)."""
    return dict(
        type='LeViTClassifier',
        backbone=dict(type='LeViT', arch=arch, deploy=deploy, out_indices=out_indices,
                      **backbone),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LeViTClsHead', num_classes=num_classes,
                  in_channels=resolve_arch(arch)['embed_dims'][-1], deploy=deploy,
                  distillation=distillation))


def build_classifier(arch='128s', **kwargs) -> nn.Module:
    """A levit_mm classifier (random weights); ``kwargs`` as :func:`classifier_cfg`."""
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(classifier_cfg(arch, **kwargs))


# ----------------------------------------------------------------------------- peers
class MMPretrainLeViT(nn.Module):
    """mmpretrain 1.2.0's own LeViT and head, folded with their ``switch_to_deploy``
    (its head cannot be built with ``deploy=True``, so the fold is called directly)."""

    def __init__(self, arch: str, deploy: bool = True):
        super().__init__()
        from mmpretrain.models.backbones.levit import LeViT
        from mmpretrain.models.heads.levit_head import LeViTClsHead
        self.backbone = LeViT(arch, out_indices=(2, ))
        self.head = LeViTClsHead(num_classes=1000,
                                 in_channels=resolve_arch(arch)['embed_dims'][-1])
        self.backbone.eval()  # (its train() returns None, so no chaining)
        self.head.eval()
        if deploy:
            self.backbone.switch_to_deploy()
            self.head.switch_to_deploy()  # folds each BN+Linear; the two heads stay apart

    def forward(self, x):
        return self.head((self.backbone(x)[-1].mean(dim=(2, 3)), ))


def build_timm(arch: str, conv: bool = False, fused: bool = True, **kwargs) -> nn.Module:
    """timm's ``levit_<arch>`` (or ``levit_conv_<arch>``), each ``fuse()``-able module
    replaced by its fused layer (``fused=False``: the training form; ``kwargs`` go to
    ``timm.create_model``)."""
    import timm
    model = timm.create_model(f'levit_{"conv_" if conv else ""}{arch}', pretrained=False,
                              **kwargs)
    return fuse_modules(model.eval()) if fused else model


def hf_config(arch: str, num_labels: int = 1000):
    from transformers import LevitConfig
    spec = resolve_arch(arch)
    return LevitConfig(hidden_sizes=spec['embed_dims'], num_attention_heads=spec['num_heads'],
                       depths=spec['depths'], key_dim=spec['key_dims'],
                       num_labels=num_labels)


class HFLevit(nn.Module):
    """Hugging Face ``LevitForImageClassificationWithTeacher`` (no fusion offered)."""

    def __init__(self, arch: str, model: Optional[nn.Module] = None):
        super().__init__()
        from transformers import LevitForImageClassificationWithTeacher
        self.model = model or LevitForImageClassificationWithTeacher(hf_config(arch))
        self.model.eval()

    def forward(self, x):
        return self.model(pixel_values=x).logits


#: name -> builder(arch) of every peer, as the benchmarks list them
PEERS = {
    'mmpretrain': MMPretrainLeViT,
    'timm': lambda arch: build_timm(arch, conv=False),
    'timm conv': lambda arch: build_timm(arch, conv=True),
    'hf': HFLevit,
}
