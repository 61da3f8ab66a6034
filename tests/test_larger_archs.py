"""timm's larger LeViTs (``384_s8``, ``512_s8``, ``512``, ``256d``, ``512d``) as arch-table
entries: timm's parameter counts, timm's logits through the converter (random weights and
BN statistics), a stride-8 stem at any input size, and their configs and metafile rows."""
import math

import pytest
import timm
import torch
import yaml
from conftest import REPO, randomize_
from mmengine.config import Config
from mmpretrain.registry import MODELS
from levit_tools.testing import random_timm

import levit_mm
from levit_mm.arch import ARCH_SETTINGS, PUBLISHED_ARCHS, resolve_arch, stem_channels
from levit_mm.convert import convert_state_dict
from levit_tools.analysis import count_params
from levit_tools.models import build_classifier
from levit_tools.parity import TIMM as TOL

LARGER = ['384_s8', '512_s8', '512', '256d', '512d']
#: timm builds the four experiments after 384_s8 with one head (``distilled=False``)
TIMM_DISTILLED = {'384_s8': True, '512_s8': False, '512': False, '256d': False,
                  '512d': False}

with open(f'{REPO}/configs/levit/metafile.yml') as f:
    METAFILE = {m['Name']: m for m in yaml.safe_load(f)['Models']}


def config_path(arch):
    return f'{REPO}/configs/levit/levit-{arch.replace("_", "-")}_8xb256_in1k.py'


def test_table_lists_timms_experiments():
    assert list(ARCH_SETTINGS)[:5] == list(PUBLISHED_ARCHS)
    assert list(ARCH_SETTINGS)[5:] == LARGER
    from timm.models.levit import model_cfgs
    for arch in LARGER:
        spec, theirs = resolve_arch(arch), model_cfgs[f'levit_{arch}']
        assert tuple(spec['embed_dims']) == theirs['embed_dim']
        assert tuple(spec['num_heads']) == theirs['num_heads']
        assert tuple(spec['depths']) == theirs['depth']
        assert spec['key_dims'] == [theirs['key_dim']] * 3
        assert spec['stem_stride'] == (8 if theirs.get('stem_type') == 's8' else 16)
        assert spec['act'] == 'SiLU' and theirs['act_layer'] == 'silu'
    for arch in PUBLISHED_ARCHS:  # the published five keep their defaults
        assert resolve_arch(arch)['stem_stride'] == 16
        assert resolve_arch(arch)['act'] == 'HSwish'


@pytest.mark.parametrize('arch', LARGER)
def test_param_count_equals_timm(arch):
    with torch.device('meta'):
        theirs = timm.create_model(f'levit_{arch}')
        ours = build_classifier(arch, distillation=TIMM_DISTILLED[arch])
        single = build_classifier(arch, distillation=False)
    assert hasattr(theirs, 'head_dist') == TIMM_DISTILLED[arch]
    assert count_params(ours) == sum(p.numel() for p in theirs.parameters())
    row = METAFILE[f'levit-{arch.replace("_", "-")}_8xb256_in1k']
    assert row['Metadata']['Parameters'] == count_params(single)


def test_stem_stride_8_and_activation():
    backbone = levit_mm.LeViT('384_s8')
    convs = [m for m in backbone.patch_embed.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == stem_channels(384, 8)[1:] == [96, 192, 384]
    assert backbone.resolutions == [(28, 28), (14, 14), (7, 7)]
    acts = {type(m) for m in backbone.modules()
            if isinstance(m, (torch.nn.SiLU, torch.nn.Hardswish))}
    assert acts == {torch.nn.SiLU}
    assert backbone.stages[0][0].block.attention_biases.shape == (6, 28 * 28)
    # an explicit act_cfg still wins over the arch's
    hswish = levit_mm.LeViT('256d', act_cfg=dict(type='HSwish'))
    assert not any(isinstance(m, torch.nn.SiLU) for m in hswish.modules())
    with pytest.raises(ValueError, match="LeViT-384_S8's stem has a stride of 8; got "
                                         'patch_size=16'):
        levit_mm.LeViT('384_s8', patch_size=16)


# ------------------------------------------------------------------------------- parity
def timm_parity(arch, img_size):
    """Max |logit diff| of levit_mm against a random timm ``levit_<arch>`` built for
    ``img_size``, through the converter (its detection must find arch and size)."""
    theirs = random_timm(f'levit_{arch}', img_size=img_size)
    converted, info = convert_state_dict(theirs.state_dict())
    assert (info.format, info.arch, info.img_size) == ('timm', arch, img_size)
    assert info.distilled == TIMM_DISTILLED[arch]
    with torch.device('meta'):  # every tensor comes from the checkpoint
        ours = build_classifier(arch, distillation=info.distilled, img_size=img_size)
    ours.to_empty(device='cpu').load_state_dict(converted, strict=True)
    ours.eval()
    x = torch.randn(1, 3, img_size, img_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref, out = theirs(x), ours(x, mode='tensor')
    assert ref.std() > 0.1
    return (out - ref).abs().max().item()


@pytest.mark.parametrize('arch', LARGER)
def test_timm_parity_small_training_size(arch):
    """timm and levit_mm both built for 128x128 (bias tables for that grid): the whole
    network in seconds."""
    diff = timm_parity(arch, 128)
    print(f'levit_{arch} @128: max |logit diff| {diff:.1e}')
    assert diff <= TOL


@pytest.mark.slow
@pytest.mark.parametrize('arch', LARGER)
def test_timm_parity_224(arch):
    diff = timm_parity(arch, 224)
    print(f'levit_{arch} @224: max |logit diff| {diff:.1e}')
    assert diff <= TOL


# ------------------------------------------------------------------------------- any size
def halve(n, times):
    for _ in range(times):
        n = math.ceil(n / 2)
    return n


#: a narrow stride-8 LeViT: the s8 code path at a few hundred MFLOPs
SMALL_S8 = dict(embed_dims=[64, 96, 128], num_heads=[2, 3, 4], depths=[1, 1, 1],
                key_dims=[16, 16, 16], stem_stride=8, act='SiLU')


@pytest.mark.parametrize('arch, size', [
    ('384_s8', (224, 320)),
    pytest.param('384_s8', (333, 500), marks=pytest.mark.slow),
    (SMALL_S8, (224, 320)),
    (SMALL_S8, (333, 500)),
    (SMALL_S8, (100, 37)),
    pytest.param(SMALL_S8, (800, 1333), marks=pytest.mark.slow),
], ids=['384_s8-224x320', '384_s8-333x500', 's8-224x320', 's8-333x500', 's8-100x37',
        's8-800x1333'])
def test_stride8_any_size(arch, size):
    """Stage i of a stride-8 stem is at stride 8 * 2^i; 'stem' is the stride-4 map.  At
    800x1333 stage 0 has 100 x 167 = 16700 tokens: the attention runs in query-row chunks
    (a whole score map would be 2.2 GB per head pair)."""
    backbone = randomize_(levit_mm.LeViT(arch, out_indices=('stem', 0, 1, 2)), seed=2).eval()
    dims = resolve_arch(arch)['embed_dims']
    with torch.no_grad():
        outs = backbone(torch.randn(1, 3, *size))
    expected = [(1, dims[0] // 2, halve(size[0], 2), halve(size[1], 2))] + [
        (1, d, halve(size[0], 3 + i), halve(size[1], 3 + i)) for i, d in enumerate(dims)]
    assert [tuple(o.shape) for o in outs] == expected
    assert all(torch.isfinite(o).all() for o in outs)


# ------------------------------------------------------------------------------- configs
@pytest.mark.parametrize('arch', LARGER)
def test_config_and_metafile_row(arch):
    cfg = Config.fromfile(config_path(arch))
    assert cfg.model.backbone.arch == arch
    assert cfg.model.head.in_channels == resolve_arch(arch)['embed_dims'][-1]
    assert cfg.model.head.distillation == TIMM_DISTILLED[arch]
    if not TIMM_DISTILLED[arch]:
        assert cfg.model.teacher is None and cfg.model.head.distill_type == 'none'
    row = METAFILE[f'levit-{arch.replace("_", "-")}_8xb256_in1k']
    assert row['Weights'] is None and 'Results' not in row  # nothing published
    assert row['Config'] == config_path(arch)[len(REPO) + 1:]
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
        theirs = timm.create_model(f'levit_{arch}')
    assert count_params(model) == sum(p.numel() for p in theirs.parameters())
