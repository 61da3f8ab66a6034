"""Static int8 ONNX model of a trained LeViT, calibrated on its config's training images.

    python tools/deployment/onnx_quantize_static.py CONFIG CHECKPOINT \\
        --output-file levit-int8.onnx [--calib-images 256] [--check-images 512]

The deploy form (BN folded, heads merged) is exported at the test pipeline's image size with
constant attention biases (batch stays dynamic), then quantised by
:func:`levit_mm.deploy.static_int8.quantize_static_int8`: the weight matmuls (and with
``--int8-convs`` the stem convolutions) in int8 with per-channel weights, activation scales
from ``--calib-images`` training images
(drawn at random, seeded, through the test pipeline).  The check runs the fp32 and int8
models on ``--check-images`` test images and prints top-1 of both, their agreement and the
largest logit difference.  The output file appears complete or not at all.
"""
import argparse
import os
import os.path as osp
import sys
import tempfile

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402
from mmengine.config import DictAction  # noqa: E402

import levit_mm  # noqa: E402,F401  (registers the LeViT modules)
from levit_mm.fileio import output_errors, publish_file  # noqa: E402
from levit_tools.cli import check_output_file, run_cli  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='model config (training form)')
    parser.add_argument('checkpoint', help='weights for the config (training or fused form)')
    parser.add_argument('--output-file', default='levit-int8.onnx')
    parser.add_argument('--calib-images', type=int, default=256,
                        help='training images whose activation ranges set the scales')
    parser.add_argument('--check-images', type=int, default=512,
                        help='test images for the fp32 vs int8 check (0: skip)')
    parser.add_argument('--int8-convs', action='store_true',
                        help='the stem convolutions in int8 too (slower on the CPUs measured: '
                        'the hardswish between them can no longer be fused)')
    parser.add_argument('--per-tensor', action='store_true',
                        help='one weight scale per tensor instead of per output channel')
    parser.add_argument('--reduce-range', choices=['auto', 'on', 'off'], default='auto',
                        help='7-bit weights; auto: on where the CPU has no int8 dot product '
                        '(no VNNI/AMX), which avoids 16-bit saturation in its int8 GEMM')
    parser.add_argument('--seed', type=int, default=0, help='draw of the calibration images')
    parser.add_argument('--batch', type=int, default=32)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def check(fp32_path, int8_path, batches):
    """Top-1 of both models, their agreement (%) and max |logit diff| on ``batches``."""
    from levit_mm.deploy.onnx import ort_runner, ort_session
    from levit_tools.sample_images import agreement
    fp32, int8 = ort_runner(ort_session(fp32_path, 2)), ort_runner(ort_session(int8_path, 2))
    batches = list(batches)
    labels = torch.cat([y for _, y in batches])
    a = torch.cat([fp32(x) for x, _ in batches])
    b = torch.cat([int8(x) for x, _ in batches])
    agree, worst, _ = agreement(a, b)
    return {'images': len(labels),
            'fp32 top-1': 100 * (a.argmax(1) == labels).float().mean().item(),
            'int8 top-1': 100 * (b.argmax(1) == labels).float().mean().item(),
            'agreement': 100 * agree, 'max |dlogit|': worst}


def main(argv=None):
    args = parse_args(argv)
    from levit_mm.deploy import switch_to_deploy
    from levit_mm.deploy import LogitsWrapper
    from levit_mm.deploy.onnx import export_onnx
    from levit_tools.config_data import config_batches, load_classifier, load_config
    from levit_mm.deploy.static_int8 import cpu_has_vnni, quantize_static_int8
    if args.calib_images < 1:
        raise ValueError(f'--calib-images must be at least 1, got {args.calib_images}.')
    if args.check_images < 0:
        raise ValueError(f'--check-images must be 0 or more, got {args.check_images}.')
    check_output_file(args.output_file)
    cfg = load_config(args.config, args.cfg_options)
    model = load_classifier(cfg, args.checkpoint)
    calibration = [x for x, _ in config_batches(cfg, model, 'train', num=args.calib_images,
                                                 batch_size=args.batch, seed=args.seed)]
    shape = tuple(calibration[0].shape[2:])
    reduce_range = {'on': True, 'off': False, 'auto': not cpu_has_vnni()}[args.reduce_range]
    deploy = switch_to_deploy(LogitsWrapper(model).eval())
    out_dir = osp.dirname(osp.abspath(args.output_file))
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix='.quantize-') as work:
        with output_errors(args.output_file):  # a failed write names the user's output
            fp32_path = export_onnx(deploy, osp.join(work, 'fp32.onnx'), shape,
                                    dynamic_hw=False)
            int8_path = quantize_static_int8(
                fp32_path, osp.join(work, 'int8.onnx'), calibration,
                per_channel=not args.per_tensor, reduce_range=reduce_range,
                int8_convs=args.int8_convs)
        print(f'Quantised {args.config} at {shape[0]}x{shape[1]} (dynamic batch), calibrated '
              f'on {sum(len(c) for c in calibration)} training images; int8 Linears'
              f'{" and convolutions" if args.int8_convs else ""}, per-'
              f'{"tensor" if args.per_tensor else "channel"} '
              f'{"7" if reduce_range else "8"}-bit weights')
        if args.check_images:
            test = config_batches(cfg, model, 'test', num=args.check_images,
                                  batch_size=args.batch, seed=args.seed)
            result = check(fp32_path, int8_path, test)
            print(f'check on {result["images"]} test images: top-1 fp32 '
                  f'{result["fp32 top-1"]:.2f}%, int8 {result["int8 top-1"]:.2f}%; '
                  f'agreement {result["agreement"]:.2f}%, max |dlogit| '
                  f'{result["max |dlogit|"]:.3e}')
        with output_errors(args.output_file):
            publish_file(int8_path, args.output_file)
    print(f'Wrote {args.output_file}')


if __name__ == '__main__':
    run_cli(main)
