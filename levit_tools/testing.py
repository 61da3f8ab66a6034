"""Helpers for checking numerical parity, shared by the tests and the verification tools.

A freshly built LeViT has identity-like BatchNorms (weight 1, bias 0, mean 0, var 1) and
zero attention biases, so a converter that dropped them would still match.  Randomising
them makes parity checks meaningful.
"""
from typing import Optional

import torch
from torch.nn.modules.batchnorm import _BatchNorm


@torch.no_grad()
def randomize_(model: torch.nn.Module, seed: int = 0,
               classifier_std: Optional[float] = None) -> torch.nn.Module:
    """Give every BatchNorm random affine parameters and running statistics, and every
    attention-bias table random values, in place (seeded, so runs repeat).

    Args:
        classifier_std: if set, also redraw the weights of 1000-way Linear classifiers
            with this std, so their logits are spread enough to compare rankings.
    """
    g = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            n = module.num_features
            module.weight.copy_(torch.rand(n, generator=g) + 0.5)
            module.bias.copy_(torch.randn(n, generator=g) * 0.1)
            module.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            module.running_var.copy_(torch.rand(n, generator=g) + 0.5)
        if (classifier_std is not None and isinstance(module, torch.nn.Linear)
                and module.out_features == 1000):
            module.weight.normal_(0, classifier_std, generator=g)
    for name, param in model.named_parameters():
        if name.endswith('attention_biases'):
            param.copy_(torch.randn(param.shape, generator=g))
    return model


@torch.no_grad()
def random_timm(name: str, seed: int = 1, **kwargs) -> torch.nn.Module:
    """``timm.create_model(name, **kwargs)`` with random weights, in eval mode, built fast.

    The larger variants hold up to 95M parameters; timm's own initialisation of them takes
    longer than the forward pass being tested.  So the model is built on the meta device,
    materialised and filled from one seeded generator: every weight matrix/kernel with
    PyTorch's default scale (std ``1 / sqrt(3 fan_in)``), then BN statistics and
    attention-bias tables randomised (:func:`randomize_`) and the classifier weights spread
    (std 0.3) so logits differ clearly between inputs."""
    import timm
    with torch.device('meta'):
        model = timm.create_model(name, pretrained=False, **kwargs)
    model.to_empty(device='cpu')
    for module in model.modules():  # the index buffers are derived, not random
        if hasattr(module, 'init_non_persistent_buffers'):
            module.init_non_persistent_buffers()
    generator = torch.Generator().manual_seed(seed)
    for pname, param in model.named_parameters():
        if pname.startswith(('head.', 'head_dist.')) and param.dim() == 2:
            param.normal_(0, 0.3, generator=generator)
        elif param.dim() > 1:
            param.normal_(0, (3 * param[0].numel())**-0.5, generator=generator)
        else:
            param.zero_()
    for bname, buffer in model.named_buffers():
        if bname.endswith('num_batches_tracked'):
            buffer.zero_()
    return randomize_(model, seed=seed).eval()
