"""Draw the learned attention bias of every head of one LeViT block, as in the paper's figure:
for one query token (default: the centre of the grid), the bias it adds towards each key
position, one heat map per head.

    python tools/visualizations/vis_attention_bias.py levit-128s_3rdparty_in1k --block 3
    python tools/visualizations/vis_attention_bias.py configs/levit/levit-256_8xb256_in1k.py \\
        --checkpoint my.pth --block stages.1.0 --query 2 3 --out bias.png
    python tools/visualizations/vis_attention_bias.py levit-128s_3rdparty_in1k --list

Each panel is PANEL_PX x PANEL_PX pixels, laid out in a near-square grid under a title band
of TITLE_PX pixels, with its own colour scale; the query's own key position is marked +.
"""
import argparse
import math
import os
import os.path as osp
import sys
from typing import List, Tuple

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import matplotlib  # noqa: E402

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import levit_mm  # noqa: E402,F401
from levit_mm.attention_bias import subsampled_size  # noqa: E402
from levit_mm.backbones.layers import BiasedAttentionBase  # noqa: E402
from levit_tools.cli import build_checked_classifier, check_output_file, run_cli  # noqa: E402

DPI = 100
PANEL_PX = 200
TITLE_PX = 50


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('model', help='model name or config file')
    parser.add_argument('--checkpoint', help='weights; default: the model-zoo weights')
    parser.add_argument('--block', default='0', help='attention block: its index in '
                        '--list, or its module name (e.g. stages.1.0)')
    parser.add_argument('--query', type=int, nargs=2, metavar=('ROW', 'COL'),
                        help='query position on the block\'s query grid; default: centre')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input size that sets the token grids; default: the trained '
                        'img_size')
    parser.add_argument('--out', help='PNG file; default: attention_bias_<block>.png')
    parser.add_argument('--list', action='store_true', help='list the attention blocks')
    return parser.parse_args(argv)


def attention_blocks(backbone) -> List[Tuple[str, BiasedAttentionBase]]:
    """Every biased attention block, in forward order, with its module name."""
    return [(name.rsplit('.block', 1)[0] if name.endswith('.block') else name, module)
            for name, module in backbone.named_modules()
            if isinstance(module, BiasedAttentionBase)]


def key_grids(backbone, shape) -> dict:
    """The key grid each attention block sees for an input of ``shape`` (one forward)."""
    grids, handles = {}, []
    for _, module in attention_blocks(backbone):
        handles.append(module.register_forward_pre_hook(
            lambda mod, args: grids.__setitem__(id(mod), tuple(args[0].shape[1:3]))))
    try:
        with torch.no_grad():
            backbone(torch.zeros(1, 3, *shape))
    finally:
        for handle in handles:
            handle.remove()
    return grids


def select_block(blocks, spec: str):
    names = [name for name, _ in blocks]
    if spec.lstrip('-').isdigit():
        index = int(spec)
        if not -len(blocks) <= index < len(blocks):
            raise ValueError(f'--block {index} is out of range: this model has '
                             f'{len(blocks)} attention blocks (0..{len(blocks) - 1}); see '
                             '--list.')
        return blocks[index]
    if spec not in names:
        raise ValueError(f'No attention block named {spec!r}; the blocks are {names}.')
    return blocks[names.index(spec)]


@torch.no_grad()
def query_bias_maps(block: BiasedAttentionBase, key_grid, query) -> np.ndarray:
    """``(heads, H_k, W_k)``: the bias each head adds from ``query`` to every key."""
    q_grid = subsampled_size(key_grid, block.stride)
    row, col = query
    if not (0 <= row < q_grid[0] and 0 <= col < q_grid[1]):
        raise ValueError(f'--query {row} {col} is outside this block\'s query grid '
                         f'{q_grid[0]}x{q_grid[1]} (rows 0..{q_grid[0] - 1}, columns '
                         f'0..{q_grid[1] - 1}).')
    bias = block.attention_bias(q_grid, key_grid, torch.float32)
    return bias[:, row * q_grid[1] + col].reshape(-1, *key_grid).cpu().numpy()


def grid_shape(num_heads: int) -> Tuple[int, int]:
    """``(rows, cols)`` of a near-square panel grid."""
    cols = math.ceil(math.sqrt(num_heads))
    return math.ceil(num_heads / cols), cols


def draw_bias_grid(maps: np.ndarray, query_key_pos, title: str):
    """One heat map per head on a fixed pixel layout (see the module docstring)."""
    rows, cols = grid_shape(len(maps))
    width, height = cols * PANEL_PX, rows * PANEL_PX + TITLE_PX
    fig = plt.figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    fig.suptitle(title, fontsize=9, y=1 - 0.35 * TITLE_PX / height)
    for head, bias_map in enumerate(maps):
        r, c = divmod(head, cols)
        pad = 0.06
        ax = fig.add_axes([(c + pad) / cols, (rows - 1 - r + pad) * PANEL_PX / height,
                           (1 - 2 * pad) / cols, (1 - 2 * pad) * PANEL_PX / height])
        ax.imshow(bias_map, cmap='viridis', interpolation='nearest')
        ax.plot(query_key_pos[1], query_key_pos[0], marker='+', color='red', markersize=8)
        ax.set_title(f'head {head}  [{bias_map.min():.2f}, {bias_map.max():.2f}]',
                     fontsize=7, pad=2)
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def save_figure(fig, out: str) -> None:
    """The PNG appears complete or not at all."""
    tmp = f'{out}.tmp-{os.getpid()}.png'
    try:
        fig.savefig(tmp, dpi=DPI)
        os.replace(tmp, out)
    finally:
        plt.close(fig)
        if osp.exists(tmp):
            os.remove(tmp)


def main(argv=None):
    args = parse_args(argv)
    check_output_file(args.out)
    backbone = build_checked_classifier(args.model, args.checkpoint).backbone
    shape = tuple(args.shape) if args.shape else backbone.img_size
    if min(shape) < 1:
        raise ValueError(f'--shape needs positive sizes, got {list(shape)}.')
    blocks = attention_blocks(backbone)
    grids = key_grids(backbone, shape)
    if args.list:
        for i, (name, module) in enumerate(blocks):
            keys = grids[id(module)]
            queries = subsampled_size(keys, module.stride)
            print(f'{i:3d}  {name:<16s} heads {module.num_heads:2d}  queries '
                  f'{queries[0]}x{queries[1]}  keys {keys[0]}x{keys[1]}')
        return None
    name, block = select_block(blocks, args.block)
    key_grid = grids[id(block)]
    q_grid = subsampled_size(key_grid, block.stride)
    query = tuple(args.query) if args.query else (q_grid[0] // 2, q_grid[1] // 2)
    maps = query_bias_maps(block, key_grid, query)
    title = (f'{args.model}  {name}: attention bias of query {query} '
             f'(grid {q_grid[0]}x{q_grid[1]}) to each key ({key_grid[0]}x{key_grid[1]})')
    fig = draw_bias_grid(maps, (query[0] * block.stride, query[1] * block.stride), title)
    out = args.out or f'attention_bias_{name.replace(".", "_")}.png'
    if osp.dirname(out):
        os.makedirs(osp.dirname(out), exist_ok=True)
    save_figure(fig, out)
    rows, cols = grid_shape(len(maps))
    print(f'wrote {out}: {len(maps)} heads of {name} in a {rows}x{cols} grid')
    return out


if __name__ == '__main__':
    run_cli(main)
