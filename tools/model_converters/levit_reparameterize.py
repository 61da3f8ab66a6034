"""Fold a training-form LeViT checkpoint into the deploy layout.

    python tools/model_converters/levit_reparameterize.py SRC.pth DST.pth

The result loads into the configs of ``configs/levit/deploy/`` (BN folded, the two heads
merged into one Linear).  Equivalent to building the training form and calling
``levit_mm.deploy.switch_to_deploy(model)``; ``tests/test_deploy.py`` checks both agree.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from levit_mm.convert import (load_checkpoint_file, mmengine_checkpoint_globals,  # noqa: E402
                              unwrap_state_dict)
from levit_mm.fileio import save_torch_atomic  # noqa: E402
from levit_mm.finite import check_finite_weights  # noqa: E402
from levit_mm.folding import fold_state_dict  # noqa: E402
from levit_tools.cli import check_output_file, run_cli  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='training-form checkpoint (.pth)')
    parser.add_argument('dst', help='where to write the deploy-form checkpoint')
    parser.add_argument('--bn-eps', type=float, default=1e-5,
                        help='BatchNorm epsilon of the model (default: 1e-5)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    check_output_file(args.dst)
    # Read without running code from the file; mmengine's training checkpoints (message
    # hub included) are allowed, as the tools that wrote them are.
    with mmengine_checkpoint_globals():
        checkpoint = load_checkpoint_file(args.src)
    state_dict = unwrap_state_dict(checkpoint)
    check_finite_weights(state_dict, f'Checkpoint {args.src!r}')
    folded = fold_state_dict(state_dict, eps=args.bn_eps)
    meta = checkpoint.get('meta', {}) if isinstance(checkpoint, dict) else {}
    # The optimizer state and message hub mean nothing for the folded parameters.
    save_torch_atomic(dict(state_dict=folded, meta=meta), args.dst)
    print(f'Folded {len(state_dict)} -> {len(folded)} tensors; saved {args.dst}')


if __name__ == '__main__':
    run_cli(main)
