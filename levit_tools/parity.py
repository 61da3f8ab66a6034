"""Logit parity of levit_mm against the public implementations: the bounds the tests assert,
in one place (the parity tests, ``tools/model_converters/parity_report.py`` and
``verify_against_official.py`` read them, so every figure is printed beside the bound it is
held to), and the measurement itself.

Every bound is a max |logit diff| in fp32 on one image, random weights with random BN
statistics and attention biases (:func:`levit_tools.testing.randomize_`), classifier weights
spread (std 0.3) so the reference logits are not flat.
"""
from typing import Callable, Dict, Tuple

import torch

#: timm's ``levit_<arch>`` (training form, one or two heads) into levit_mm's linear form;
#: also timm's larger archs and the converter's command line (tests/test_convert.py,
#: test_larger_archs.py)
TIMM = 1e-4
#: timm's ``levit_conv_<arch>`` into either levit_mm form, timm's linear weights into the
#: conv form, the conv form against the linear one (tests/test_levit_c.py, test_convert.py)
TIMM_CONV = 1e-5
#: Hugging Face ``LevitForImageClassification(WithTeacher)`` (tests/test_convert.py)
HF = 1e-4
#: mmpretrain 1.2.0's own LeViT and head, its state dict as it is or converted
#: (tests/test_mmpretrain_compat.py, test_convert.py)
MMPRETRAIN = 1e-5
#: the official ``levit.py`` layout (tests/test_convert.py, through timm's reading of it)
#: and the official code itself (verify_against_official.py)
OFFICIAL = 1e-4
#: the official ``levit_c.py`` (LeViT-C, 1x1 convolutions) into either form
OFFICIAL_C = 1e-5
#: any BN-folded (deploy) model or export against the unfolded reference
FUSED = 1e-4


def max_diff(out: torch.Tensor, ref: torch.Tensor) -> float:
    """Max |logit diff|; refuses flat reference logits, which would make any bound easy."""
    if out.shape != ref.shape:
        raise ValueError(f'logits of shape {tuple(out.shape)} vs {tuple(ref.shape)}')
    if ref.float().std() <= 0.1:
        raise ValueError('reference logits too flat for a meaningful comparison')
    return (out - ref).abs().max().item()


def cell(diff: float, bound: float) -> str:
    """``'2.9e-06 <= 1e-04'``, or the excess in bold."""
    return f'{diff:.1e} <= {bound:.0e}' if diff <= bound else f'**{diff:.1e} > {bound:.0e}**'


@torch.no_grad()
def levit_mm_logits(state: dict, x: torch.Tensor, form: str = 'linear',
                    deploy: bool = False) -> torch.Tensor:
    """Convert ``state`` (any known layout), load it strictly into a fresh levit_mm
    classifier of the arch, head and size the converter detected, return its logits."""
    from levit_mm.convert import convert_state_dict
    from .models import build_classifier
    converted, info = convert_state_dict(state)
    with torch.device('meta'):  # every tensor comes from the checkpoint
        model = build_classifier(info.arch, distillation=info.distilled, form=form,
                                 deploy=deploy, img_size=info.img_size)
    model.to_empty(device='cpu')
    model.load_state_dict(converted, strict=True)
    return model.eval()(x, mode='tensor')


def _timm(arch: str, size: int, conv: bool, seed: int):
    from .testing import random_timm
    model = random_timm(f'levit_{"conv_" if conv else ""}{arch}', seed=seed, img_size=size)
    return model.state_dict(), model


def _hf(arch: str, size: int, seed: int):
    from transformers import LevitConfig, LevitForImageClassificationWithTeacher

    from levit_mm.arch import resolve_arch
    from .testing import randomize_
    spec = resolve_arch(arch)
    config = LevitConfig(image_size=size, hidden_sizes=spec['embed_dims'],
                         num_attention_heads=spec['num_heads'], depths=spec['depths'],
                         key_dim=spec['key_dims'], num_labels=1000)
    model = randomize_(LevitForImageClassificationWithTeacher(config), seed,
                       classifier_std=0.3).eval()
    return model.state_dict(), lambda x: model(x).logits


def _mmpretrain(arch: str, size: int, seed: int):
    from mmpretrain.models.backbones.levit import LeViT
    from mmpretrain.models.heads.levit_head import LeViTClsHead

    from levit_mm.arch import resolve_arch
    from .testing import randomize_
    backbone = LeViT(arch, img_size=size, out_indices=(2, ))
    head = LeViTClsHead(num_classes=1000, in_channels=resolve_arch(arch)['embed_dims'][-1])
    model = torch.nn.ModuleDict(dict(backbone=backbone, head=head))
    randomize_(model, seed, classifier_std=0.3).eval()  # it caches its biases in eval()
    return model.state_dict(), lambda x: head((backbone(x)[-1].mean(dim=(2, 3)), ))


#: reference name -> (builder(arch, size, seed) -> (state dict, forward), levit_mm form, bound)
REFERENCES: Dict[str, Tuple[Callable, str, float]] = {
    'timm levit_*': (lambda a, s, seed: _timm(a, s, False, seed), 'linear', TIMM),
    'timm levit_conv_*': (lambda a, s, seed: _timm(a, s, True, seed), 'conv', TIMM_CONV),
    'Hugging Face': (_hf, 'linear', HF),
    'mmpretrain 1.2.0': (_mmpretrain, 'linear', MMPRETRAIN),
}


@torch.no_grad()
def measure(reference: str, arch: str, size: int, seed: int = 0) -> Tuple[float, float]:
    """``(max |logit diff|, bound)`` of levit_mm against ``reference`` for ``arch`` built
    for ``size`` x ``size`` inputs, on one such image."""
    build, form, bound = REFERENCES[reference]
    state, forward = build(arch, size, seed)
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(seed))
    return max_diff(levit_mm_logits(state, x, form), forward(x)), bound
