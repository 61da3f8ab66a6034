"""mmpretrain's released LeViT checkpoints load into levit_mm with every key used, and give
the same logits as mmpretrain's own LeViT."""
import pytest
import torch
from conftest import ARCHS, EMBED_OUT, randomize_
from mmpretrain.models.backbones.levit import LeViT as MMPretrainLeViT
from mmpretrain.models.heads.levit_head import LeViTClsHead as MMPretrainHead
from mmpretrain.registry import MODELS

from levit_tools.parity import MMPRETRAIN


class MMPretrainReference(torch.nn.Module):
    """mmpretrain's LeViT + GAP + head, named like an ImageClassifier's state dict."""

    def __init__(self, arch):
        super().__init__()
        self.backbone = MMPretrainLeViT(arch, out_indices=(2, ))
        self.head = MMPretrainHead(num_classes=1000, in_channels=EMBED_OUT[arch],
                                   distillation=True)

    def forward(self, x):
        return self.head((self.backbone(x)[-1].mean(dim=(2, 3)), ))


@pytest.mark.parametrize('arch', ARCHS)
def test_mmpretrain_checkpoint_parity(arch, tmp_path):
    ref = randomize_(MMPretrainReference(arch), seed=1)
    ref.eval()  # mmpretrain caches its biases on eval(): after randomising
    path = tmp_path / 'mmpretrain.pth'
    torch.save({'state_dict': ref.state_dict(), 'meta': {}}, path)
    assert any(k.endswith('attention_bias_idxs') for k in ref.state_dict())

    model = MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='LeViT', arch=arch, out_indices=(2, )),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LeViTClsHead', num_classes=1000, in_channels=EMBED_OUT[arch])))
    state = torch.load(path, weights_only=True)['state_dict']
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    model.eval()

    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = ref(x)
        got = model(x, mode='tensor')
    diff = (got - expected).abs().max().item()
    print(f'levit-{arch}: max |logit diff| vs mmpretrain = {diff:.2e}')
    assert diff <= MMPRETRAIN
