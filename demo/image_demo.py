"""Classify an image with a LeViT from the model zoo or a config + checkpoint.

    python demo/image_demo.py demo/chelsea.jpg levit-128s_3rdparty_in1k
    python demo/image_demo.py demo/chelsea.jpg configs/levit/levit-128s_8xb256_in1k.py \\
        --checkpoint my.pth --show-dir out/
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import levit_mm  # noqa: E402,F401
from levit_mm.tools_common import run_cli  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('img', help='image file')
    parser.add_argument('model', nargs='?', default='levit-128s_3rdparty_in1k',
                        help='model name (see model-index.yml) or config file')
    parser.add_argument('--checkpoint', help='weights file; default: the model-zoo weights')
    parser.add_argument('--topk', type=int, default=5)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--show-dir', help='write the image annotated with the prediction')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from mmpretrain import ImageClassificationInferencer

    if not osp.isfile(args.img):
        raise FileNotFoundError(f'Image not found: {args.img}')
    pretrained = args.checkpoint if args.checkpoint else True
    inferencer = ImageClassificationInferencer(args.model, pretrained=pretrained,
                                               device=args.device)
    result = inferencer(args.img, show_dir=args.show_dir)[0]
    scores = result['pred_scores']
    classes = inferencer.classes
    order = scores.argsort()[::-1][:args.topk]
    print(f'{args.img}: top-{len(order)} of {args.model}')
    for rank, idx in enumerate(order, 1):
        name = classes[idx] if classes else str(idx)
        print(f'  {rank}. {name:<40s} {scores[idx]:.4f}')
    return result


if __name__ == '__main__':
    run_cli(main)
