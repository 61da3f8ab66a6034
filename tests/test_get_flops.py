"""tools/analysis_tools/get_flops.py prints params and FLOPs within 2% of the metafile."""
import re

import pytest
import yaml
from conftest import REPO
from tool_loading import load_tool, run_tool_cli

with open(f'{REPO}/configs/levit/metafile.yml') as f:
    METAFILE = {m['Name']: m['Metadata'] for m in yaml.safe_load(f)['Models']}

ROW = re.compile(r'^(\S+)\s+([\d.]+)\s+([\d.]+)\s+([+-][\d.]+%)\s+([\d.]+)\s+([\d.]+)\s+'
                 r'([+-][\d.]+%)$', re.M)


@pytest.fixture(scope='module')
def get_flops():
    return load_tool('tools/analysis_tools/get_flops.py')


def test_figures_beside_the_metafile(get_flops, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    # A model name and a config path (it finds the metafile entry through the config).
    code, stdout, stderr = run_tool_cli(get_flops, [
        'levit-128s_3rdparty_in1k', 'configs/levit/levit-192_8xb256_in1k.py'], capsys)
    assert code == 0, stderr
    rows = {m.group(1): m.groups()[1:] for m in ROW.finditer(stdout)}
    assert set(rows) == {'levit-128s_3rdparty_in1k', 'configs/levit/levit-192_8xb256_in1k.py'}
    for model, name in [('levit-128s_3rdparty_in1k', 'levit-128s_3rdparty_in1k'),
                        ('configs/levit/levit-192_8xb256_in1k.py',
                         'levit-192_3rdparty_in1k')]:
        params, meta_params, _, flops, meta_flops, diff = rows[model]
        expected = METAFILE[name]
        assert float(meta_params) == pytest.approx(expected['Parameters'] / 1e6, abs=1e-3)
        assert float(meta_flops) == pytest.approx(expected['FLOPs'] / 1e9, abs=1e-4)
        assert float(params) == pytest.approx(expected['Parameters'] / 1e6, rel=0.02)
        assert float(flops) == pytest.approx(expected['FLOPs'] / 1e9, rel=0.02)
        assert abs(float(diff.rstrip('%'))) < 2


def test_unknown_model_is_refused_with_suggestions(get_flops, capsys):
    code, _, stderr = run_tool_cli(get_flops, ['levit-265_3rdparty_in1k'], capsys)
    assert code == 2
    assert "error: Unknown model name 'levit-265_3rdparty_in1k'. Closest models: " \
        "'levit-256_3rdparty_in1k'" in stderr


def test_linear_macs_and_roofline():
    import torch
    from levit_tools.analysis import linear_macs, roofline_images_per_s
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 5))
    assert linear_macs(model, (2, 4)) == 2 * 4 * 3 + 2 * 3 * 5
    # 1 GMAC per image = 2 GFLOP: 50 img/s at 100 GFLOP/s; half of it at 200 GOP/s -> 66.7.
    assert roofline_images_per_s(10**9, 0, 100.0) == pytest.approx(50.0)
    assert roofline_images_per_s(10**9, 5 * 10**8, 100.0, 200.0) == pytest.approx(200 / 3)
