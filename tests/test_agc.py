"""Adaptive gradient clipping: a hand computation, timm's ``adaptive_clip_grad`` (the
function the official recipe calls) on every LeViT parameter, and the optimizer wrappers."""
import pytest
import torch
from conftest import randomize_
from mmpretrain.registry import MODELS, OPTIM_WRAPPERS
from timm.utils.agc import adaptive_clip_grad

from levit_mm.engine.agc import AGCOptimWrapper, adaptive_clip_grad_


def test_hand_computation_unitwise_and_whole_tensor():
    # A 2x2 weight: row 0 has norm 5, its gradient norm 1 > 0.1 * 5 -> scaled to 0.5;
    # row 1 has norm 1, its gradient norm 0.05 < 0.1 * 1 -> untouched.
    w = torch.nn.Parameter(torch.tensor([[3., 4.], [0., 1.]]))
    w.grad = torch.tensor([[0.6, 0.8], [0.03, 0.04]])
    # A 1-D tensor is one unit: norm 2, gradient norm 10 > 0.1 * 2 -> scaled to 0.2.
    b = torch.nn.Parameter(torch.tensor([2., 0.]))
    b.grad = torch.tensor([6., 8.])
    # A zero weight: its norm is floored at eps = 1e-3, so the gradient may be 1e-4 at most.
    z = torch.nn.Parameter(torch.zeros(3))
    z.grad = torch.tensor([0., 3e-4, 4e-4])
    no_grad = torch.nn.Parameter(torch.ones(2))
    assert adaptive_clip_grad_([w, b, z, no_grad], clip_factor=0.1, eps=1e-3) == 3
    torch.testing.assert_close(w.grad, torch.tensor([[0.3, 0.4], [0.03, 0.04]]))
    torch.testing.assert_close(b.grad, torch.tensor([0.12, 0.16]))
    torch.testing.assert_close(z.grad, torch.tensor([0., 0.6e-4, 0.8e-4]))
    assert no_grad.grad is None


def tiny_levit():
    model = MODELS.build(dict(
        type='LeViTClassifier',
        backbone=dict(type='LeViT', arch='128s', img_size=64),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LeViTClsHead', num_classes=10, in_channels=384, distillation=True,
                  loss=dict(type='CrossEntropyLoss'))))
    randomize_(model)  # BN statistics and affine parameters away from their init
    return model


def real_gradients(model, seed=0):
    torch.manual_seed(seed)
    model.train()
    out = model(torch.randn(4, 3, 64, 64), mode='tensor')
    (out.square().mean() * 1e3).backward()  # large enough that many units clip


@pytest.mark.parametrize('clip_factor', [0.01, 0.1])
def test_matches_timm_on_every_levit_parameter(clip_factor):
    """Same result as timm's AGC (what the official code calls) on every tensor of a LeViT:
    weights, 1-D BatchNorm/bias tensors and the (heads, offsets) attention-bias tables."""
    model = tiny_levit()
    real_gradients(model)
    params = [p for p in model.parameters() if p.grad is not None]
    kinds = {p.ndim for p in params}
    assert kinds >= {1, 2, 4}  # BN/bias, Linear/bias tables, Conv
    assert any(n.endswith('attention_biases') for n, _ in model.named_parameters())
    reference = [p.grad.clone() for p in params]
    ref_params = [torch.nn.Parameter(p.detach().clone()) for p in params]
    for ref, grad in zip(ref_params, reference):
        ref.grad = grad.clone()
    adaptive_clip_grad(ref_params, clip_factor=clip_factor)  # timm: eps 1e-3 by default
    clipped = adaptive_clip_grad_(params, clip_factor=clip_factor)
    changed = 0
    for p, ref, before in zip(params, ref_params, reference):
        assert torch.equal(p.grad, ref.grad)  # bit for bit
        changed += not torch.equal(p.grad, before)
    assert clipped > 0 and changed > 0


def test_optim_wrapper_clips_before_the_step_and_logs_the_count():
    model = tiny_levit()
    real_gradients(model)
    expected = [p.detach().clone() for p in model.parameters()]
    grads = [p.grad.clone() for p in model.parameters()]
    sgd_ref = torch.optim.SGD([torch.nn.Parameter(e) for e in expected], lr=0.1)
    for ref, g in zip(sgd_ref.param_groups[0]['params'], grads):
        ref.grad = g.clone()
    adaptive_clip_grad(sgd_ref.param_groups[0]['params'], clip_factor=0.01)
    sgd_ref.step()

    wrapper = OPTIM_WRAPPERS.build(dict(
        type='AGCOptimWrapper', clip_grad=dict(type='agc', clip_factor=0.01),
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1)))
    assert isinstance(wrapper, AGCOptimWrapper)
    wrapper.step()
    for p, ref in zip(model.parameters(), sgd_ref.param_groups[0]['params']):
        torch.testing.assert_close(p.detach(), ref.detach(), rtol=1e-6, atol=1e-7)
    assert wrapper.message_hub.get_scalar('train/agc_clipped_units').current() > 0


def test_norm_and_value_clipping_still_work_and_bad_agc_options_fail():
    p = torch.nn.Parameter(torch.ones(4))
    wrapper = AGCOptimWrapper(torch.optim.SGD([p], lr=1.0), clip_grad=dict(max_norm=1.0))
    p.grad = torch.full((4, ), 10.)
    wrapper.step()
    torch.testing.assert_close(p.detach(), torch.full((4, ), 0.5))  # grad norm 20 -> 1
    with pytest.raises(ValueError, match='clip_factor'):
        AGCOptimWrapper(torch.optim.SGD([p], lr=1.0), clip_grad=dict(type='agc'))
    with pytest.raises(ValueError, match='clip_factor'):
        AGCOptimWrapper(torch.optim.SGD([p], lr=1.0),
                        clip_grad=dict(type='agc', clip_factor=0.01, max_norm=1))


def test_train_amp_flag_keeps_agc():
    from mmengine.config import Config
    from conftest import REPO
    from tool_loading import load_tool
    train = load_tool('tools/train.py')
    config = f'{REPO}/configs/levit/levit-128s_8xb256_in1k.py'
    cfg = train.merge_args(Config.fromfile(config), train.parse_args([config, '--amp']))
    assert cfg.optim_wrapper.type == 'AmpAGCOptimWrapper'
    assert cfg.optim_wrapper.clip_grad.type == 'agc'
    assert OPTIM_WRAPPERS.get('AmpAGCOptimWrapper') is not None


# ---------------------------------------------------------------------------------------
# AMP: AmpAGCOptimWrapper (what `--amp` selects with the recipe), through the loss scaler


def amp_agc_wrapper(params, monkeypatch, init_scale=2.**12):
    """``AmpAGCOptimWrapper`` on the CPU: mmengine refuses to build it without a GPU, and
    its CUDA ``GradScaler`` disables itself there, so the check is waived and the scaler
    is PyTorch's own ``GradScaler`` for CPU tensors (same class, same unscale/skip logic)."""
    import mmengine.optim.optimizer.amp_optimizer_wrapper as amp
    from levit_mm.engine.agc import AmpAGCOptimWrapper
    monkeypatch.setattr(amp, 'is_cuda_available', lambda: True)
    wrapper = OPTIM_WRAPPERS.build(dict(
        type='AmpAGCOptimWrapper', clip_grad=dict(type='agc', clip_factor=0.01),
        optimizer=torch.optim.SGD(params, lr=0.1)))
    assert isinstance(wrapper, AmpAGCOptimWrapper)
    wrapper.loss_scaler = torch.amp.GradScaler('cpu', init_scale=init_scale)
    return wrapper


def spy_on_clipping(wrapper):
    """Record the gradients the clipping function receives (before it clips them)."""
    seen = []
    clip = wrapper.clip_func

    def recording(params, **kwargs):
        params = list(params)
        seen.append([p.grad.clone() for p in params])
        return clip(params, **kwargs)

    wrapper.clip_func = recording
    return seen


def test_amp_unscales_then_clips_like_fp32_agc(monkeypatch):
    fp32_model, amp_model = tiny_levit(), tiny_levit()
    amp_model.load_state_dict(fp32_model.state_dict())
    fp32 = OPTIM_WRAPPERS.build(dict(
        type='AGCOptimWrapper', clip_grad=dict(type='agc', clip_factor=0.01),
        optimizer=torch.optim.SGD(fp32_model.parameters(), lr=0.1)))
    amp = amp_agc_wrapper(amp_model.parameters(), monkeypatch)
    fp32_seen, amp_seen = spy_on_clipping(fp32), spy_on_clipping(amp)
    for model, wrapper in ((fp32_model, fp32), (amp_model, amp)):
        torch.manual_seed(0)
        model.train()
        out = model(torch.randn(4, 3, 64, 64), mode='tensor')
        wrapper.update_params(out.square().mean() * 1e3)
    # the loss scale (a power of two) is exact in fp32, so the unscaled gradients are the
    # fp32 ones bit for bit, and so are the clipped updates
    assert len(fp32_seen) == len(amp_seen) == 1
    for got, want in zip(amp_seen[0], fp32_seen[0]):
        assert torch.equal(got, want)
    for p, q in zip(amp_model.parameters(), fp32_model.parameters()):
        assert torch.equal(p, q)
    assert amp.message_hub.get_scalar('train/agc_clipped_units').current() > 0
    assert amp.loss_scaler.get_scale() == 2.**12  # finite: no back-off


@pytest.mark.parametrize('bad', [float('inf'), float('nan')])
def test_amp_skips_the_step_on_non_finite_gradients(bad, monkeypatch):
    model = tiny_levit()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    wrapper = amp_agc_wrapper(model.parameters(), monkeypatch)
    model.train()
    out = model(torch.randn(4, 3, 64, 64), mode='tensor')
    wrapper.backward(out.square().mean())
    next(model.parameters()).grad.view(-1)[0] = bad
    wrapper.step()
    after = model.state_dict()
    params = {n for n, _ in model.named_parameters()}
    for name in params:
        assert torch.equal(after[name], before[name]), name
    assert wrapper.loss_scaler.get_scale() == 2.**11  # backed off by the growth factor
