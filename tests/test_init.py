"""The official initialisation, for every arch and both forms: the BatchNorms that start at
weight 0 are the ones timm's port of the official code (built fresh) starts at 0, the head
Linears are timm's truncated normal (std 0.02, bias 0), and a ``Pretrained`` init_cfg loads
over all of it."""
import pytest
import timm
import torch
from conftest import randomize_
from mmpretrain.registry import MODELS
from torch.nn.modules.batchnorm import _BatchNorm

from levit_mm.arch import ARCH_SETTINGS, PUBLISHED_ARCHS
from levit_mm.convert import convert_state_dict
from levit_tools.models import build_classifier, classifier_cfg

#: timm builds these experiments with one head (``distilled=False``)
SINGLE_HEAD = ('512_s8', '512', '256d', '512d')
HEAD_STD = 0.02
#: one normal draw beyond 2 std: P(|z| > 2)
BEYOND_2_STD = 0.0455


def fresh_pair(arch: str, conv: bool):
    """timm's freshly built model and ours after ``init_weights()``, same seed."""
    torch.manual_seed(0)
    theirs = timm.create_model(f'levit_{"conv_" if conv else ""}{arch}', pretrained=False)
    ours = build_classifier(arch, distillation=arch not in SINGLE_HEAD,
                            form='conv' if conv else 'linear')
    ours.init_weights()
    return theirs, ours


def zero_norms(model, state) -> set:
    """Keys of the BatchNorm weights of ``model`` that are all zero in ``state``."""
    keys = [f'{name}.weight' for name, m in model.named_modules() if isinstance(m, _BatchNorm)]
    return {k for k in keys if not state[k].any()}


@pytest.mark.parametrize('conv', [False, True], ids=['linear', 'conv'])
@pytest.mark.parametrize('arch', [  # timm's larger experiments hold up to 95M parameters
    a if a in PUBLISHED_ARCHS else pytest.param(a, marks=pytest.mark.slow)
    for a in ARCH_SETTINGS])
def test_zero_norms_and_heads_match_timm(arch, conv):
    theirs, ours = fresh_pair(arch, conv)
    timm_state, _ = convert_state_dict(theirs.state_dict(), arch)
    expected = zero_norms(ours, timm_state)
    got = zero_norms(ours, ours.state_dict())
    assert got == expected
    # by role: the attention's output projection (never the shrinking attention's: no
    # residual adds it) and the second layer of every MLP, after shrinking attentions too
    depths = ARCH_SETTINGS[arch]['depths']
    mlps = sum(depths) + len(depths) - 1
    attentions = [k for k in got if k.endswith('.block.proj.1.bn.weight')]
    assert len(attentions) == sum(depths)
    assert len([k for k in got if k.endswith('.block.linear2.bn.weight')]) == mlps
    assert len(got) == sum(depths) + mlps
    heads = ['head'] if arch in SINGLE_HEAD else ['head', 'head_dist']
    for head in heads:
        weight = ours.state_dict()[f'head.{head}.linear.weight']
        reference = theirs.state_dict()[f'{head}.linear.weight']
        assert not ours.state_dict()[f'head.{head}.linear.bias'].any()
        assert weight.std().item() == pytest.approx(HEAD_STD, rel=0.02)
        assert weight.mean().item() == pytest.approx(0, abs=1e-3 * HEAD_STD * 10)
        # timm's trunc_normal_ cuts at +-2 in absolute terms (100 std), like the official
        # code's: the tails of an untruncated normal, as many as in timm's own head
        beyond = (weight.abs() > 2 * HEAD_STD).float().mean().item()
        theirs_beyond = (reference.abs() > 2 * HEAD_STD).float().mean().item()
        assert beyond == pytest.approx(BEYOND_2_STD, abs=0.004)
        assert beyond == pytest.approx(theirs_beyond, abs=0.004)
        assert weight.abs().max().item() <= 2.0


def test_init_weights_runs_once():
    model = build_classifier('128s')
    model.init_weights()
    norms = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    with torch.no_grad():
        for norm in norms:
            norm.weight.fill_(0.5)
    model.init_weights()  # a second call (a second runner, a user) changes nothing
    assert all(torch.all(norm.weight == 0.5) for norm in norms)


@pytest.mark.parametrize('level', ['classifier', 'backbone'])
def test_pretrained_init_loads_over_the_official_init(level, tmp_path):
    trained = randomize_(build_classifier('128s'), seed=4)
    path = str(tmp_path / 'trained.pth')
    torch.save({'state_dict': trained.state_dict()}, path)
    cfg = classifier_cfg('128s')
    if level == 'classifier':
        cfg['init_cfg'] = dict(type='Pretrained', checkpoint=path)
    else:
        cfg['backbone']['init_cfg'] = dict(type='Pretrained', checkpoint=path,
                                           prefix='backbone.')
    model = MODELS.build(cfg)
    model.init_weights()
    state = model.state_dict()
    loaded = [k for k in trained.state_dict()
              if level == 'classifier' or k.startswith('backbone.')]
    for key in loaded:
        assert torch.equal(state[key], trained.state_dict()[key]), key
    assert zero_norms(model, state) == set()
