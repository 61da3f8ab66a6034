"""Gradient checkpointing (``with_cp``) changes memory, not results; ``get_layer_depth``
numbers the stem, each attention+MLP layer and the head, so mmpretrain's layer-wise
learning-rate decay works, with the shipped fine-tune config."""
import copy

import pytest
import torch
from conftest import REPO, randomize_
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS

import levit_mm


def grads_and_stats(model, x, seed=0):
    """One training step's loss, parameter gradients and BN buffers after it."""
    model.train()
    torch.manual_seed(seed)  # drop path draws the same masks in both models
    outs = model(x)
    loss = sum((o.float()**2).mean() for o in outs)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    return loss.detach(), grads, buffers


@pytest.mark.parametrize('arch', ['128s', dict(
    embed_dims=[64, 96], num_heads=[2, 3], depths=[2, 1], key_dims=[16, 16],
    stem_stride=8, act='SiLU')], ids=['128s', 's8-silu'])
def test_with_cp_gradients_equal_plain(arch):
    torch.manual_seed(0)
    plain = randomize_(levit_mm.LeViT(arch, out_indices=('stem', 0, 1, -1),
                                      drop_path_rate=0.1), seed=4)
    checkpointed = copy.deepcopy(plain)
    checkpointed.with_cp = True
    x = torch.randn(2, 3, 64, 96)
    loss, grads, buffers = grads_and_stats(plain, x)
    loss_cp, grads_cp, buffers_cp = grads_and_stats(checkpointed, x)
    assert torch.equal(loss, loss_cp)
    assert grads.keys() == grads_cp.keys() == {n for n, _ in plain.named_parameters()}
    worst = max((grads[n] - grads_cp[n]).abs().max().item() for n in grads)
    print(f'with_cp: max |grad diff| {worst:.1e}')
    for name in grads:
        torch.testing.assert_close(grads_cp[name], grads[name], rtol=1e-5, atol=1e-6)
    # the recomputation in backward does not move BN statistics a second time
    for name in buffers:
        assert torch.equal(buffers[name], buffers_cp[name]), name


def test_with_cp_recomputes_each_layer_in_backward():
    """Every layer's forward runs twice with ``with_cp`` in training (once more in
    backward), once without it, and once in eval mode or under no_grad."""
    model = levit_mm.LeViT('128s', with_cp=True)
    calls = []
    for stage in model.stages:
        for module in stage:
            module.register_forward_pre_hook(lambda m, i: calls.append(m))
    layers = sum(len(stage) for stage in model.stages)
    model.train()
    model(torch.randn(2, 3, 64, 64))[0].sum().backward()
    assert len(calls) == 2 * layers
    calls.clear()
    with torch.no_grad():
        model(torch.randn(2, 3, 64, 64))
    model.eval()
    model(torch.randn(1, 3, 64, 64))
    assert len(calls) == 2 * layers


# ------------------------------------------------------------------------ layer depth
def test_layer_depths_of_128s():
    """128S: depths 2, 3, 4; stages 1 and 2 start with a shrinking attention + MLP layer,
    so 2 + 4 + 5 = 11 layers, depths 0 (stem) .. 12 (head)."""
    model = levit_mm.LeViT('128s')
    assert model.num_layers == 11
    depth = model.get_layer_depth
    assert depth('patch_embed.patch_embed.0.conv.weight') == (0, 13)
    assert depth('stages.0.0.block.qkv.linear.weight') == (1, 13)  # attention
    assert depth('stages.0.1.block.linear1.linear.weight') == (1, 13)  # its MLP
    assert depth('stages.0.3.block.linear2.bn.bias') == (2, 13)
    assert depth('stages.1.0.attention_biases') == (3, 13)  # shrinking attention
    assert depth('stages.1.1.block.linear1.bn.weight') == (3, 13)  # and its MLP
    assert depth('stages.1.2.block.attention_biases') == (4, 13)
    assert depth('stages.2.9.block.linear2.bn.weight') == (11, 13)
    assert depth('head.head.linear.weight') == (12, 13)
    # with a prefix (the classifier asks with 'backbone.'), other modules are the head
    assert depth('backbone.stages.2.0.kv.linear.weight', 'backbone.') == (7, 13)
    assert depth('neck.whatever', 'backbone.') == (12, 13)
    # every parameter gets a depth in range, and depths never decrease along the network
    depths = [depth(name)[0] for name, _ in model.named_parameters()]
    assert depths == sorted(depths) and set(depths) == set(range(12))


def test_layer_depths_of_a_deeper_arch():
    model = levit_mm.LeViT('256d')
    assert model.num_layers == 4 + 9 + 7
    assert model.get_layer_depth('stages.2.13.block.linear2.linear.weight') == (20, 22)


def test_lr_decay_finetune_config():
    """The shipped fine-tune config builds mmpretrain's layer-decay optimizer: the lr
    scale is ``rate ** (num_depths - 1 - depth)`` per parameter."""
    cfg = Config.fromfile(f'{REPO}/configs/levit/finetune/levit-128s_ft-lrdecay_custom.py')
    assert cfg.optim_wrapper.constructor == 'LearningRateDecayOptimWrapperConstructor'
    cfg.model.backbone.init_cfg = None  # no download
    model = MODELS.build(cfg.model)
    import mmpretrain.engine  # noqa: F401  (registers the constructor)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):  # as the Runner does
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    rate = cfg.optim_wrapper.paramwise_cfg.layer_decay_rate
    base_lr = cfg.optim_wrapper.optimizer.lr
    groups = {g['param_name']: g for g in wrapper.optimizer.param_groups}
    assert set(groups) == {n for n, p in model.named_parameters() if p.requires_grad}
    for name, group in groups.items():
        depth, num = model.get_layer_depth(name)
        assert group['lr'] == pytest.approx(base_lr * rate**(num - 1 - depth)), name
    assert groups['head.head.linear.weight']['lr'] == pytest.approx(base_lr)
    stem = groups['backbone.patch_embed.patch_embed.0.conv.weight']['lr']
    assert stem == pytest.approx(base_lr * rate**12)
    # no weight decay on BN, biases and the attention-bias tables
    assert groups['backbone.stages.0.0.block.attention_biases']['weight_decay'] == 0
    assert groups['backbone.stages.0.0.block.qkv.bn.weight']['weight_decay'] == 0
    assert groups['backbone.stages.0.0.block.qkv.linear.weight']['weight_decay'] > 0
