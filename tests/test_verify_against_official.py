"""verify_against_official.py's exit status follows the bounds: run on a stand-in for the
official code (timm's LeViT behind the official factory names; the official code cannot
ship here), once as it is and once with its logits shifted past the bound."""
import os.path as osp

import pytest
from conftest import REPO, run_py

from levit_tools import parity

TOOL = osp.join(REPO, 'tools', 'model_converters', 'verify_against_official.py')
#: the official module names and factories, over timm's port (same weights, other key names)
STAND_IN = {
    'levit.py': '''import os
import timm
SHIFT = float(os.environ.get('STAND_IN_SHIFT', '0'))

def LeViT_128S(distillation=True):
    model = timm.create_model('levit_128s', distilled=distillation)
    model.register_forward_hook(lambda module, args, out: out + SHIFT)
    return model
''',
    'levit_c.py': '''import timm

def LeViT_c_128S():
    return timm.create_model('levit_conv_128s')
''',
    'utils.py': 'from levit_mm.backbones.layers import fuse_modules as replace_batchnorm\n',
}


@pytest.fixture(scope='module')
def stand_in(tmp_path_factory):
    root = tmp_path_factory.mktemp('official')
    for name, text in STAND_IN.items():
        (root / name).write_text(text)
    return root


@pytest.mark.parametrize('shift, status', [(0.0, 0), (10 * parity.OFFICIAL, 1)])
def test_exit_status_follows_the_bound(stand_in, tmp_path, shift, status):
    results = tmp_path / 'official_parity.md'
    result = run_py([TOOL, str(stand_in), '--archs', '128s', '--source', 'a stand-in',
                     '--results', str(results)], env={'STAND_IN_SHIFT': str(shift)})
    assert result.returncode == status, result.stderr
    text = results.read_text()
    assert 'Measured against a stand-in' in text
    row = next(line for line in text.splitlines() if line.startswith('| LeViT-128S'))
    # the shift moves the levit.py forms (not LeViT-C): three figures over, in bold
    assert row.count('**') == (6 if status else 0), row
    if status:
        assert result.stderr.strip().endswith('error: 3 figure(s) over their bound')


def test_not_the_official_code_is_one_line(tmp_path):
    result = run_py([TOOL, str(tmp_path)])
    assert result.returncode == 2
    assert 'is not a copy of facebookresearch/LeViT: no levit.py, levit_c.py, utils.py' in \
        result.stderr
