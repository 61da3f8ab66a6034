"""Regenerate ``official_levit_layout.json``: the key names, order and shapes of the
official facebookresearch/LeViT models, as that repository's own code builds them.

The converter tests use this file as the independent reference for the official layout
(the official code is not a pip package).  Run with a checkout of the official repository:

    python tests/data/dump_official_layout.py /path/to/facebookresearch/LeViT
"""
import json
import os.path as osp
import sys

import torch


def main(official_repo: str) -> None:
    sys.path.insert(0, official_repo)
    import levit  # noqa: E402  (the official module)
    import utils  # noqa: E402

    layout = {}
    for arch in ('128S', '128', '192', '256', '384'):
        model = getattr(levit, f'LeViT_{arch}')()
        plain = [[k, list(v.shape)] for k, v in model.state_dict().items()]
        utils.replace_batchnorm(model)
        fused = [[k, list(v.shape)] for k, v in model.state_dict().items()]
        layout[arch.lower()] = dict(plain=plain, fused=fused)
    out = osp.join(osp.dirname(osp.abspath(__file__)), 'official_levit_layout.json')
    with open(out, 'w') as f:
        json.dump(layout, f, separators=(',', ':'))
    print(f'wrote {out}')


if __name__ == '__main__':
    torch.manual_seed(0)
    main(sys.argv[1])
