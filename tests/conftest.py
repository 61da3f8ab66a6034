import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
ARCHS = ['128s', '128', '192', '256', '384']
EMBED_OUT = {'128s': 384, '128': 384, '192': 384, '256': 512, '384': 768}

torch.set_num_threads(2)


@torch.no_grad()
def randomize_(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random weights *and* non-trivial BN statistics / attention biases, so parity tests
    cannot pass by accident on the identity-like default init."""
    g = torch.Generator().manual_seed(seed)
    for name, module in model.named_modules():
        if isinstance(module, _BatchNorm):
            n = module.num_features
            module.weight.copy_(torch.rand(n, generator=g) + 0.5)
            module.bias.copy_(torch.randn(n, generator=g) * 0.1)
            module.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            module.running_var.copy_(torch.rand(n, generator=g) + 0.5)
    for name, param in model.named_parameters():
        if 'attention_biases' in name:
            param.copy_(torch.randn(param.shape, generator=g))
    return model


def run_py(args, env=None, timeout=600, cwd=REPO):
    """Run ``python args...`` from the repo with the test interpreter."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable] + list(args), cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope='session')
def repo():
    return REPO
