"""Random timm LeViTs for parity tests, built fast.

The larger variants hold up to 95M parameters; timm's own initialisation of them takes
longer than the forward pass being tested.  Here the model is built on the meta device,
materialised, and filled from one seeded generator: every weight matrix/kernel with
PyTorch's default scale (std ``1 / sqrt(3 fan_in)``), then BN statistics and attention-bias
tables randomised (:func:`levit_tools.testing.randomize_`) and the classifier weights
spread (std 0.3) so logits differ clearly between inputs.
"""
import timm
import torch

from levit_tools.testing import randomize_


@torch.no_grad()
def random_timm(name: str, seed: int = 1, **kwargs) -> torch.nn.Module:
    """``timm.create_model(name, **kwargs)`` with random weights, in eval mode."""
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
