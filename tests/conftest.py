import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from levit_tools.testing import randomize_  # noqa: F401  (tests import it from here)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
ARCHS = ['128s', '128', '192', '256', '384']
EMBED_OUT = {'128s': 384, '128': 384, '192': 384, '256': 512, '384': 768}

torch.set_num_threads(2)


def run_py(args, env=None, timeout=600, cwd=REPO):
    """Run ``python args...`` from the repo with the test interpreter."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable] + list(args), cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope='session')
def repo():
    return REPO


@pytest.fixture(autouse=True)
def restore_default_scope():
    """Tests that build mmdet / mmseg models or runners switch mmengine's default scope;
    every test starts in mmpretrain's and leaves the scopes as it found them, so no test
    depends on which ran before it."""
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield
