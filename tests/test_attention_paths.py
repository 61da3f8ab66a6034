"""The ways attention and its bias are computed agree: chunked (memory-efficient) with
whole, the one-gather training bias with the separable build, compiled with eager, half
precision with fp32."""
import pytest
import torch
from conftest import randomize_

import levit_mm.backbones.layers as layers
from levit_mm.attention_bias import attention_bias
from levit_mm.backbones.layers import Attention, AttentionSubsample, chunk_rows
from levit_mm.deploy import switch_to_deploy
from levit_tools.models import build_classifier


@pytest.fixture
def tiny_chunks(monkeypatch):
    """Chunk every grid, one query row per chunk."""
    monkeypatch.setattr(layers, 'ATTENTION_CHUNK_PAIRS', 40)
    monkeypatch.setattr(layers, 'ATTENTION_CHUNK_ELEMENTS', 40)


def attention_blocks(seed=0):
    torch.manual_seed(seed)
    blocks = {'attention': Attention(32, 8, num_heads=3, attn_ratio=2, resolution=(5, 6)),
              'shrinking': AttentionSubsample(32, 48, 8, num_heads=4, attn_ratio=4,
                                              stride=2, resolution=(5, 6))}
    for block in blocks.values():
        randomize_(block, seed=seed)
    return blocks


def assert_close(got, want, what=''):
    """fp32 agreement up to summation order: 1e-5 of the tensor's scale."""
    scale = want.abs().max().item()
    torch.testing.assert_close(got, want, atol=1e-5 * scale, rtol=1e-5, msg=what)


def run(block, x):
    """Output and the gradients of the input and every parameter, for a fixed cotangent."""
    x = x.clone().requires_grad_(True)
    block.zero_grad(set_to_none=True)
    out = block(x)
    out.backward(torch.randn(out.shape, generator=torch.Generator().manual_seed(1)))
    grads = {n: p.grad.clone() for n, p in block.named_parameters()}
    return out.detach(), x.grad, grads


@pytest.mark.parametrize('kind', ['attention', 'shrinking'])
@pytest.mark.parametrize('hw', [(5, 6), (9, 4), (13, 11)])
@pytest.mark.parametrize('train', [True, False])
def test_chunked_equals_whole(kind, hw, train, monkeypatch):
    x = torch.randn(2, *hw, 32)
    block = attention_blocks()[kind].train(train)
    whole = run(block, x)
    monkeypatch.setattr(layers, 'ATTENTION_CHUNK_PAIRS', 40)
    monkeypatch.setattr(layers, 'ATTENTION_CHUNK_ELEMENTS', 400)
    q_size = hw if kind == 'attention' else ((hw[0] + 1) // 2, (hw[1] + 1) // 2)
    rows = chunk_rows(q_size, hw[0] * hw[1], 2 * block.num_heads)
    assert rows is not None and rows < q_size[0]  # really chunked
    chunked = run(block, x)
    for got, want in zip(chunked[:2], whole[:2]):
        assert_close(got, want)
    for name, grad in whole[2].items():
        assert_close(chunked[2][name], grad, name)
    with torch.no_grad():  # inference: each chunk builds its rows of the bias
        torch.testing.assert_close(block(x), whole[0], atol=1e-5, rtol=1e-5)


def test_chunked_backbone_at_224_and_non_square(tiny_chunks):
    """A whole LeViT-128S at 224 and at 160x288, chunked vs whole, eval mode."""
    model = randomize_(build_classifier('128s'), seed=3).eval()
    for hw in [(224, 224), (160, 288)]:
        x = torch.randn(1, 3, *hw)
        with torch.no_grad():
            chunked = model(x, mode='tensor')
        layers.ATTENTION_CHUNK_PAIRS = float('inf')
        with torch.no_grad():
            whole = model(x, mode='tensor')
        layers.ATTENTION_CHUNK_PAIRS = 40
        torch.testing.assert_close(chunked, whole, atol=1e-4, rtol=1e-5)


def test_large_grids_chunk_and_224_does_not():
    """The default budget: every 224 grid runs whole, 800x1333 (LeViT stage 0: 50x84)
    runs in chunks of rows."""
    assert chunk_rows((14, 14), 196) is None and chunk_rows((7, 7), 196) is None
    assert chunk_rows((45, 45), 45 * 45, 8) is None
    assert chunk_rows((46, 46), 46 * 46, 8) == 10  # 8 maps of 10 x 46 queries x 2116 keys
    rows = chunk_rows((50, 84), 50 * 84, 4)
    assert rows == 5 and rows * 84 * 50 * 84 * 4 <= layers.ATTENTION_CHUNK_ELEMENTS


def test_training_bias_is_one_gather_equal_to_the_separable_build():
    block = attention_blocks()['shrinking'].train()
    q_size, k_size = block.trained_grids
    gathered = block.attention_bias(q_size, k_size)
    built = attention_bias(block.attention_biases, block.trained_resolution, q_size, k_size,
                           block.stride)
    assert torch.equal(gathered, built)
    assert gathered.requires_grad
    assert 'bias_idxs' not in block.state_dict()  # derived, never saved


def test_bias_index_follows_the_module():
    block = attention_blocks()['attention']
    block.to(torch.float64)
    assert block.bias_idxs.dtype == torch.int64  # an index stays an index
    assert block.attention_bias(*block.trained_grids).dtype == torch.float64


def test_deployed_model_runs_in_half_precision():
    """``.half()`` on a deployed model: every bias follows the new dtype, and the logits
    stay close to fp32 (on CPU; the GPU runs the same code)."""
    model = switch_to_deploy(randomize_(build_classifier('128s'), seed=2).eval())
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        reference = model(x, mode='tensor')
        model.half()
        half = model(x.half(), mode='tensor')
    assert half.dtype == torch.float16
    assert (half.float() - reference).abs().max() <= 0.05 * reference.abs().max()
    assert (half.float().argmax(1) == reference.argmax(1)).all()


def test_data_writes_are_seen_after_a_mode_switch():
    """``param.data.copy_`` (how mmengine's EMAHook swaps weights) bumps no version
    counter; the validation loop's ``eval()`` still drops the cached biases."""
    from levit_mm import LeViT
    model = randomize_(LeViT('128s'), seed=1).eval()
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        before = model(x)[0]
        for block in model.modules():
            if hasattr(block, 'attention_biases'):
                block.attention_biases.data.copy_(torch.randn_like(block.attention_biases))
        model.eval()
        after = model(x)[0]
    fresh = LeViT('128s').eval()
    fresh.load_state_dict(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(after, fresh(x)[0], atol=0, rtol=0)
    assert not torch.equal(before, after)


@pytest.mark.slow
def test_compile_for_inference_in_half_precision():
    """The fp16 deploy model compiles (the CUDA-graph option is ignored on the CPU, where
    this runs; the same call records and replays graphs on a GPU)."""
    from levit_mm.deploy import compile_for_inference
    from levit_mm.deploy import LogitsWrapper
    torch._dynamo.reset()
    model = switch_to_deploy(LogitsWrapper(randomize_(build_classifier('128s'), seed=2)))
    model = model.eval().to(torch.bfloat16)
    x = torch.randn(2, 3, 96, 96).to(torch.bfloat16)
    with torch.no_grad():
        eager = model(x)
        compiled = compile_for_inference(model, cuda_graphs=True)
        first, second = compiled(x).clone(), compiled(x)
    torch.testing.assert_close(first, second, atol=0, rtol=0)
    assert (first.float() - eager.float()).abs().max() <= 0.05 * eager.abs().max().float()
