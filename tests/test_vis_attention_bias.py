"""tools/visualizations/vis_attention_bias.py: one heat map per head, the paper's figure."""
import numpy as np
import pytest
import torch
from conftest import randomize_
from PIL import Image
from tool_loading import load_tool, run_tool_cli

CONFIG = 'configs/levit/levit-128s_8xb256_in1k.py'
BLOCK = 'stages.1.2'  # LeViT-128S: 6 heads on a 7x7 grid at 224x224


@pytest.fixture(scope='module')
def vis():
    return load_tool('tools/visualizations/vis_attention_bias.py')


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    from mmpretrain import get_model
    root = tmp_path_factory.mktemp('vis')
    model = randomize_(get_model('levit-128s_3rdparty_in1k'), seed=1)
    state = model.state_dict()
    torch.save({'state_dict': state, 'meta': {}}, root / 'a.pth')
    changed = {k: v.clone() for k, v in state.items()}
    key = f'backbone.{BLOCK}.block.attention_biases'
    changed[key][4] = -changed[key][4] * 3  # head 4 only
    torch.save({'state_dict': changed, 'meta': {}}, root / 'b.pth')
    return root, state[key]


def draw(vis, capsys, ckpt, out):
    code, stdout, stderr = run_tool_cli(
        vis, [CONFIG, '--checkpoint', str(ckpt), '--block', BLOCK, '--out', str(out)], capsys)
    assert code == 0, stderr
    assert out.exists() and f'6 heads of {BLOCK} in a 2x3 grid' in stdout
    return np.asarray(Image.open(out).convert('RGB'))


def panel(img, index, cols=3):
    r, c = divmod(index, cols)
    top = 50 + r * 200  # TITLE_PX + row * PANEL_PX
    return img[top:top + 200, c * 200:(c + 1) * 200]


def test_png_has_one_panel_per_head_and_follows_the_biases(vis, checkpoints, capsys):
    root, _ = checkpoints
    a = draw(vis, capsys, root / 'a.pth', root / 'a.png')
    b = draw(vis, capsys, root / 'b.pth', root / 'b.png')
    assert a.shape == (2 * 200 + 50, 3 * 200, 3)  # 6 heads: 2 rows x 3 columns
    for head in range(6):  # every panel shows a heat map, not a blank
        assert len(np.unique(panel(a, head).reshape(-1, 3), axis=0)) > 10
    # Changing head 4's biases changes head 4's panel, and nothing else.
    assert not np.array_equal(panel(a, 4), panel(b, 4))
    for head in (0, 1, 2, 3, 5):
        assert np.array_equal(panel(a, head), panel(b, head)), head


def test_maps_are_the_table_around_the_query(vis, checkpoints):
    _, table = checkpoints
    from levit_mm.backbones.layers import Attention
    block = Attention(256, 16, num_heads=6, attn_ratio=2, resolution=7)
    block.attention_biases.data.copy_(table)
    maps = vis.query_bias_maps(block, (7, 7), (3, 3))  # the centre query
    assert maps.shape == (6, 7, 7)
    for y in range(7):
        for x in range(7):
            expected = table[:, abs(y - 3) * 7 + abs(x - 3)].numpy()
            np.testing.assert_array_equal(maps[:, y, x], expected)


@pytest.mark.parametrize('argv, message', [
    (['--block', '11'], '--block 11 is out of range: this model has 11 attention blocks'),
    (['--block', 'stages.9.0'], "No attention block named 'stages.9.0'"),
    (['--block', '3', '--query', '7', '0'], "outside this block's query grid 7x7"),
])
def test_bad_block_or_query(vis, checkpoints, capsys, argv, message):
    root, _ = checkpoints
    code, _, stderr = run_tool_cli(vis, [CONFIG, '--checkpoint', str(root / 'a.pth'), '--out',
                                         str(root / 'x.png')] + argv, capsys)
    assert code == 2 and message in stderr, stderr
    assert not (root / 'x.png').exists()
