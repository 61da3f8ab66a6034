"""The backbone and head as modules: architectures, parameter/FLOP counts, shapes, errors."""
import pytest
import torch
import yaml
from conftest import ARCHS, EMBED_OUT, REPO, randomize_
from mmpretrain.registry import MODELS

import levit_mm
from levit_tools.analysis import count_flops, count_params

with open(f'{REPO}/configs/levit/metafile.yml') as f:
    METAFILE = {m['Name']: m['Metadata'] for m in yaml.safe_load(f)['Models']}


def build_classifier(arch, distillation=True, **backbone):
    return MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='LeViT', arch=arch, out_indices=(2, ), **backbone),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LeViTClsHead', num_classes=1000, in_channels=EMBED_OUT[arch],
                  distillation=distillation)))


@pytest.mark.parametrize('arch', ARCHS)
def test_param_count_equals_metafile(arch):
    model = build_classifier(arch, distillation=False)
    assert count_params(model) == METAFILE[f'levit-{arch}_3rdparty_in1k']['Parameters']
    # the distillation head adds exactly one more BN + Linear
    two_heads = build_classifier(arch, distillation=True)
    c = EMBED_OUT[arch]
    assert count_params(two_heads) - count_params(model) == 2 * c + c * 1000 + 1000


@pytest.mark.parametrize('arch', ARCHS)
def test_flops_within_2_percent_of_metafile(arch):
    model = build_classifier(arch, distillation=False)
    flops = count_flops(model, (1, 3, 224, 224), forward_fn=lambda m, x: m(x, mode='tensor'))
    expected = METAFILE[f'levit-{arch}_3rdparty_in1k']['FLOPs']
    assert abs(flops - expected) / expected < 0.02, (flops, expected)


def test_registered_classes_are_levit_mm():
    assert MODELS.get('LeViT') is levit_mm.LeViT
    assert MODELS.get('LeViTClsHead') is levit_mm.LeViTClsHead


def test_custom_arch_dict_builds_and_runs():
    arch = dict(embed_dims=[64, 128], num_heads=[2, 4], depths=[1, 2], key_dims=[16, 16])
    backbone = MODELS.build(dict(type='LeViT', arch=arch, out_indices=(0, 1)))
    outs = backbone(torch.randn(2, 3, 96, 128))
    assert [o.shape for o in outs] == [(2, 64, 6, 8), (2, 128, 3, 4)]


@pytest.mark.parametrize('arch, message', [
    ('1024', 'Unknown LeViT arch'),
    (dict(embed_dims=[64], num_heads=[2], depths=[1]), "missing ['key_dims']"),
    (dict(embed_dims=[64, 128], num_heads=[2], depths=[1, 1], key_dims=[16, 16]),
     'same length'),
    (dict(embed_dims=[64, 128], num_heads=[2, 2], depths=[1, 1], key_dims=[16, 24]),
     'divisible'),
])
def test_bad_arch_is_explained(arch, message):
    with pytest.raises(ValueError, match=None) as err:
        levit_mm.LeViT(arch=arch)
    assert message in str(err.value)


def test_out_indices_strides_and_stem():
    backbone = levit_mm.LeViT('128s', out_indices=('stem', 0, 1, 2)).eval()
    outs = backbone(torch.randn(1, 3, 224, 224))
    assert [tuple(o.shape) for o in outs] == [(1, 64, 28, 28), (1, 128, 14, 14),
                                              (1, 256, 7, 7), (1, 384, 4, 4)]


def test_head_inference_is_mean_of_heads_and_deploy_merges():
    head = randomize_(levit_mm.LeViTClsHead(num_classes=10, in_channels=32)).eval()
    feats = (torch.randn(4, 32), )
    cls, dist = head.head_logits(feats)
    torch.testing.assert_close(head(feats), (cls + dist) / 2)
    head.switch_to_deploy()
    assert isinstance(head.head, torch.nn.Linear) and not hasattr(head, 'head_dist')
    torch.testing.assert_close(head(feats), (cls + dist) / 2, atol=1e-5, rtol=1e-5)
