"""LeViT at any input size: exact at 224, right shapes elsewhere, biases that are the
interpolated learned table, biases that never go stale, gradients at non-square sizes."""
import copy
import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from conftest import randomize_
from mmpretrain.models.backbones.levit import LeViT as MMPretrainLeViT

import levit_mm
from levit_mm.attention_bias import attention_bias, subsampled_size
from levit_mm.backbones.layers import Attention, AttentionSubsample, BiasedAttentionBase


def bias_blocks(model):
    return [m for m in model.modules() if isinstance(m, BiasedAttentionBase)]


@pytest.fixture(scope='module')
def model_128s():
    """A randomised LeViT-128S with all outputs, in eval mode."""
    torch.manual_seed(0)
    return randomize_(levit_mm.LeViT('128s', out_indices=('stem', 0, 1, 2)), seed=3).eval()


# ---------------------------------------------------------------------------------------------
# exactness at the training resolution


@pytest.mark.parametrize('arch', ['128s', '256'])
def test_exact_at_224_against_mmpretrain(arch):
    torch.manual_seed(0)
    ref = randomize_(MMPretrainLeViT(arch, out_indices=(0, 1, 2)), seed=5)
    ref.eval()  # mmpretrain gathers its biases on eval(), so after randomising
    ours = levit_mm.LeViT(arch, out_indices=(0, 1, 2))
    result = ours.load_state_dict(ref.state_dict(), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    ours.eval()

    # every block's bias equals mmpretrain's gathered table bit for bit
    ref_blocks = [m for m in ref.modules() if hasattr(m, 'attention_bias_idxs')]
    our_blocks = bias_blocks(ours)
    assert len(ref_blocks) == len(our_blocks) > 0
    for theirs, mine in zip(ref_blocks, our_blocks):
        keys = mine.trained_resolution
        queries = ((keys[0] - 1) // mine.stride + 1, (keys[1] - 1) // mine.stride + 1)
        assert torch.equal(mine.attention_bias(queries, keys), theirs.ab)

    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = ref(x), ours(x)
    for e, g in zip(expected, got):
        assert e.shape == g.shape
        diff = (e - g).abs().max().item()
        print(f'levit-{arch} {tuple(g.shape)}: max |diff| vs mmpretrain = {diff:.2e}')
        assert diff <= 1e-5


# ---------------------------------------------------------------------------------------------
# shapes at other sizes


def expected_shapes(batch, height, width, dims=(128, 256, 384)):
    """(stem, stage 0, 1, 2) shapes, from the strides alone: each stride-2 step keeps
    ceil(n / 2) positions."""
    def halve(n, times):
        for _ in range(times):
            n = math.ceil(n / 2)
        return n
    return [(batch, dims[0] // 2, halve(height, 3), halve(width, 3))] + [
        (batch, dim, halve(height, 4 + i), halve(width, 4 + i)) for i, dim in enumerate(dims)]


@pytest.mark.parametrize('size', [(224, 320), (333, 500), (512, 512), (100, 37)])
def test_feature_shapes_any_size(model_128s, size):
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        outs = model_128s(x)
    assert [tuple(o.shape) for o in outs] == expected_shapes(2, *size)
    assert all(torch.isfinite(o).all() for o in outs)


def test_feature_shapes_800x1333(model_128s):
    with torch.no_grad():
        outs = model_128s(torch.randn(1, 3, 800, 1333))
    assert [tuple(o.shape) for o in outs] == expected_shapes(1, 800, 1333)
    assert [tuple(o.shape[2:]) for o in outs] == [(100, 167), (50, 84), (25, 42), (13, 21)]
    assert all(torch.isfinite(o).all() for o in outs)


def test_translation_of_a_crop_is_consistent(model_128s):
    """A model with a smaller trained grid sees a sub-grid: its bias is the top-left block of
    the full-grid bias (offsets inside the trained range are read, never resampled)."""
    block = bias_blocks(model_128s)[0]  # stage-0 attention, trained 14x14
    small = block.attention_bias((9, 12), (9, 12))
    full = block.attention_bias((14, 14), (14, 14)).view(-1, 14, 14, 14, 14)
    assert torch.equal(small, full[:, :9, :12, :9, :12].reshape(small.shape))


# ---------------------------------------------------------------------------------------------
# the bias at a new resolution is the interpolated learned table


def reference_bias(table, trained, q_size, k_size, stride):
    """Independent construction: the learned table as an even function of the signed
    offset, resized with F.interpolate (bicubic, align_corners=True) only when the key grid
    exceeds the trained one, then read token pair by token pair."""
    heads = table.shape[0]
    rh, rw = trained
    eh, ew = max(rh, k_size[0]), max(rw, k_size[1])
    signed = torch.empty(heads, 2 * rh - 1, 2 * rw - 1)
    for i, j in itertools.product(range(2 * rh - 1), range(2 * rw - 1)):
        signed[:, i, j] = table[:, abs(i - (rh - 1)) * rw + abs(j - (rw - 1))]
    if (eh, ew) != (rh, rw):
        signed = F.interpolate(signed[None], size=(2 * eh - 1, 2 * ew - 1), mode='bicubic',
                               align_corners=True)[0]
    queries = list(itertools.product(range(q_size[0]), range(q_size[1])))
    keys = list(itertools.product(range(k_size[0]), range(k_size[1])))
    rows = torch.tensor([[abs(qy * stride - ky) + eh - 1 for ky, _ in keys] for qy, _ in queries])
    cols = torch.tensor([[abs(qx * stride - kx) + ew - 1 for _, kx in keys] for _, qx in queries])
    return signed[:, rows, cols]


@pytest.mark.parametrize('size', [(224, 320), (333, 500), (160, 288)])
def test_bias_is_interpolated_table(model_128s, size):
    stage0_attn = next(m for m in model_128s.modules() if isinstance(m, Attention))
    stage1_shrink = next(m for m in model_128s.modules() if isinstance(m, AttentionSubsample))
    k0 = (math.ceil(size[0] / 16), math.ceil(size[1] / 16))
    q1 = (math.ceil(k0[0] / 2), math.ceil(k0[1] / 2))
    for block, q, k in [(stage0_attn, k0, k0), (stage1_shrink, q1, k0)]:
        table = block.attention_biases.detach()
        got = block.attention_bias(q, k)
        expected = reference_bias(table, block.trained_resolution, q, k, block.stride)
        assert got.shape == expected.shape == (table.shape[0], q[0] * q[1], k[0] * k[1])
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-6)
        # the learned self-offset and farthest trained offset survive exactly
        if block.stride == 1:
            assert torch.equal(got.diagonal(dim1=1, dim2=2),
                               table[:, :1].expand(-1, q[0] * q[1]))
            rh, rw = block.trained_resolution
            far = table[:, (rh - 1) * rw + (rw - 1)] if k[0] >= rh and k[1] >= rw else None
            if far is not None:
                assert torch.equal(got[:, 0, -1], far)


def test_axis_that_fits_is_untouched(model_128s):
    """224x320: rows fit the trained 14, only columns are resampled; the column offsets
    0 and 19 read the learned columns 0 and 13 exactly for every row offset."""
    block = bias_blocks(model_128s)[0]
    table = block.attention_biases.detach().view(-1, 14, 14)
    bias = block.attention_bias((14, 20), (14, 20)).view(-1, 14, 20, 14, 20)
    # query (0, 0): key (ky, 0) has offset (ky, 0), key (ky, 19) has offset (ky, 19)
    assert torch.equal(bias[:, 0, 0, :, 0], table[:, :, 0])
    assert torch.equal(bias[:, 0, 0, :, 19], table[:, :, 13])


# ---------------------------------------------------------------------------------------------
# caches never go stale


def fresh_output(model, x):
    """The output of an identical model built from scratch (no cache history)."""
    twin = levit_mm.LeViT('128s', out_indices=model.out_indices)
    dtype = next(model.parameters()).dtype
    twin.to(dtype).load_state_dict(model.state_dict())
    twin.eval()
    with torch.no_grad():
        return twin(x)


def assert_same(a, b):
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, atol=0, rtol=0)


def test_bias_follows_dtype_mode_load_and_optimizer(model_128s):
    model = copy.deepcopy(model_128s)
    model.out_indices = [0, 1, 2]
    model.with_stem_out = False
    x = torch.randn(1, 3, 64, 272)  # 4x17 tokens: columns beyond the trained 14
    with torch.no_grad():
        model(x)  # a first inference call, whose biases the next ones may reuse

    # .to(dtype): biases follow the new dtype
    model.double()
    with torch.no_grad():
        out = model(x.double())
    assert out[0].dtype == torch.float64
    assert_same(out, fresh_output(model, x.double()))
    for block in bias_blocks(model):
        keys = block.trained_resolution
        with torch.no_grad():
            bias = block.attention_bias(subsampled_size(keys, block.stride), keys)
        assert bias.dtype == torch.float64
    model.float()

    # an optimizer step in training mode, then eval again
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    model(x)[-1].sum().backward()
    optimizer.step()
    model.eval()
    with torch.no_grad():
        assert_same(model(x), fresh_output(model, x))

    # an in-place edit of a table under no_grad (as EMA hooks do)
    with torch.no_grad():
        for block in bias_blocks(model):
            block.attention_biases.mul_(-1)
        assert_same(model(x), fresh_output(model, x))

    # load_state_dict with other weights
    other = randomize_(levit_mm.LeViT('128s', out_indices=(0, 1, 2)), seed=11)
    model.load_state_dict(other.state_dict())
    with torch.no_grad():
        assert_same(model(x), fresh_output(model, x))

    # train() / eval(): under no_grad the cache serves both modes, with current values
    for mode in (True, False):
        model.train(mode)
        with torch.no_grad():
            for block in bias_blocks(model):
                keys = block.trained_resolution
                queries = subsampled_size(keys, block.stride)
                assert torch.equal(block.attention_bias(queries, keys),
                                   attention_bias(block.attention_biases.detach(), keys,
                                                  queries, keys, block.stride))
    model.eval()


def test_reused_bias_follows_data_writes_and_holds_one_grid(model_128s):
    """Inference reuses a block's last bias only while its table holds the same values:
    a write through ``.data`` (no version bump) with no mode switch is seen at once; and a
    block holds the bias of one grid at most, whatever sizes it has seen."""
    block = copy.deepcopy(bias_blocks(model_128s)[0])
    table = block.attention_biases
    with torch.no_grad():
        for n in range(4, 40, 3):
            block.attention_bias((n, n), (n, n))
        first = block.attention_bias((5, 5), (5, 5)).clone()
        table.data.copy_(torch.randn_like(table))
        second = block.attention_bias((5, 5), (5, 5))
        expected = attention_bias(table.detach(), block.trained_resolution, (5, 5), (5, 5))
        assert torch.equal(second, expected) and not torch.equal(first, second)
    grid, _, held = block._last_bias  # the one grid held: the last one
    assert grid == ((5, 5), (5, 5)) and held is second


# ---------------------------------------------------------------------------------------------
# training at a non-square size


def test_training_non_square_reaches_every_bias_table():
    torch.manual_seed(0)
    model = randomize_(levit_mm.LeViT('128s', out_indices=(0, 1, 2), drop_path_rate=0.1),
                       seed=2).train()
    x = torch.randn(2, 3, 208, 336)  # 13x21 tokens: rows fit, columns are resampled
    outs = model(x)
    sum(o.square().mean() for o in outs).backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
        if 'attention_biases' in name:
            assert param.grad.abs().sum() > 0, name


# ---------------------------------------------------------------------------------------------
# dense-prediction options


def test_frozen_stages_and_norm_eval():
    model = levit_mm.LeViT('128s', out_indices=(0, 1, 2), frozen_stages=1, norm_eval=True)
    model.train()
    frozen = [model.patch_embed, model.stages[0]]
    for module in frozen:
        assert all(not p.requires_grad for p in module.parameters())
    assert all(p.requires_grad for p in model.stages[1].parameters())
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert bns and all(not bn.training for bn in bns)
    # norm_eval off: only the frozen part stays in eval mode
    model = levit_mm.LeViT('128s', frozen_stages=0).train()
    assert not model.patch_embed.training and model.stages[0].training
