"""Classify an image with a LeViT from the model zoo or a config + checkpoint.

    python demo/image_demo.py demo/chelsea.jpg levit-128s_3rdparty_in1k
    python demo/image_demo.py demo/chelsea.jpg configs/levit/levit-128s_8xb256_in1k.py \\
        --checkpoint my.pth --show-dir out/

Every input is checked first (levit_tools.validation): a bad image, an unknown model name, a
config with an unknown variant or a checkpoint that does not fit the model stops the demo
with one ``error: ...`` message and exit status 2.  Images of any mode (grayscale, RGBA,
palette, 16-bit) and any size are accepted.
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import levit_mm  # noqa: E402,F401
from levit_mm.fileio import atomic_output  # noqa: E402
from levit_tools.cli import build_checked_classifier, check_output_dir, run_cli  # noqa: E402
from levit_tools.images import load_rgb_image  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('img', help='image file')
    parser.add_argument('model', nargs='?', default='levit-128s_3rdparty_in1k',
                        help='model name (see model-index.yml) or config file')
    parser.add_argument('--checkpoint', help='weights file; default: the model-zoo weights')
    parser.add_argument('--topk', type=int, default=5)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--show-dir', help='write the image annotated with the prediction '
                        'to SHOW_DIR/<image name>.png')
    return parser.parse_args(argv)


def write_annotated(rgb, data_sample, classes, out_file: str) -> None:
    """Draw the prediction on the image with mmpretrain's visualizer; the PNG appears
    complete or not at all (temp file, then rename)."""
    from mmpretrain.visualization import UniversalVisualizer
    with atomic_output(out_file, '.png') as tmp:
        UniversalVisualizer().visualize_cls(rgb, data_sample, classes=classes,
                                            draw_gt=False, out_file=tmp)


def main(argv=None):
    args = parse_args(argv)
    from mmpretrain import ImageClassificationInferencer

    if args.topk < 1:
        raise ValueError(f'--topk must be at least 1, got {args.topk}.')
    check_output_dir(args.show_dir)
    rgb = load_rgb_image(args.img)
    model = build_checked_classifier(args.model, args.checkpoint, args.device)
    inferencer = ImageClassificationInferencer(model, device=args.device)
    # The inferencer treats arrays as OpenCV (BGR) images, like files it decodes itself.
    sample = inferencer(rgb[..., ::-1].copy(), return_datasamples=True)[0]
    scores = sample.pred_score.cpu().numpy()
    classes = inferencer.classes
    order = scores.argsort()[::-1][:args.topk]
    print(f'{args.img}: top-{len(order)} of {args.model}')
    for rank, idx in enumerate(order, 1):
        name = classes[idx] if classes else str(idx)
        print(f'  {rank}. {name:<40s} {scores[idx]:.4f}')
    if args.show_dir:
        os.makedirs(args.show_dir, exist_ok=True)
        out_file = osp.join(args.show_dir, osp.splitext(osp.basename(args.img))[0] + '.png')
        write_annotated(rgb, sample, classes, out_file)
        print(f'annotated image: {out_file}')
    return sample


if __name__ == '__main__':
    run_cli(main)
