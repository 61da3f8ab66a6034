"""Fold a training-form LeViT checkpoint into the deploy layout.

    python tools/model_converters/levit_reparameterize.py SRC.pth DST.pth

The result loads into the configs of ``configs/levit/deploy/`` (BN folded, the two heads
merged into one Linear).  Equivalent to building the training form and calling
``levit_mm.deploy.switch_to_deploy(model)``; ``tests/test_deploy.py`` checks both agree.
"""
import argparse
import os
import os.path as osp
import sys
import tempfile

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402

from levit_mm.deploy import fold_state_dict  # noqa: E402
from levit_mm.tools_common import run_cli  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='training-form checkpoint (.pth)')
    parser.add_argument('dst', help='where to write the deploy-form checkpoint')
    parser.add_argument('--bn-eps', type=float, default=1e-5,
                        help='BatchNorm epsilon of the model (default: 1e-5)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not osp.isfile(args.src):
        raise FileNotFoundError(f'No checkpoint at {args.src!r}.')
    checkpoint = torch.load(args.src, map_location='cpu', weights_only=False)
    if not isinstance(checkpoint, dict):
        raise ValueError(f'{args.src!r} holds a {type(checkpoint).__name__}, expected a '
                         'state dict or a dict with "state_dict".')
    has_wrapper = 'state_dict' in checkpoint
    state_dict = checkpoint['state_dict'] if has_wrapper else checkpoint
    folded = fold_state_dict(state_dict, eps=args.bn_eps)
    out = dict(checkpoint, state_dict=folded) if has_wrapper else folded
    if has_wrapper:
        out.pop('optimizer', None)  # meaningless for the folded parameters
        out.pop('message_hub', None)
    dst_dir = osp.dirname(osp.abspath(args.dst))
    os.makedirs(dst_dir, exist_ok=True)
    # Write next to the target and rename, so a failure never leaves a half-written file.
    fd, tmp = tempfile.mkstemp(dir=dst_dir, suffix='.tmp')
    os.close(fd)
    try:
        torch.save(out, tmp)
        os.replace(tmp, args.dst)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    print(f'Folded {len(state_dict)} -> {len(folded)} tensors; saved {args.dst}')


if __name__ == '__main__':
    run_cli(main)
