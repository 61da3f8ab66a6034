"""Convert a LeViT checkpoint (official, timm, Hugging Face or mmpretrain layout) to levit_mm.

    python tools/model_converters/levit2mmpretrain.py SRC DST [--arch 128s]

The format, the variant, distilled/single head and training/fused form are read from the
file's keys and shapes; ``--arch`` makes a different variant an error.  SRC is read with
``torch.load(weights_only=True)`` (or safetensors); DST appears only when the whole
conversion succeeded.  Exit code 2 and one ``error:`` line on any problem (a DST that
cannot be written is found before the conversion starts).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from levit_mm.arch import ARCH_SETTINGS  # noqa: E402
from levit_mm.convert import convert_state_dict, read_state_dict  # noqa: E402
from levit_mm.convert.converter import mmpretrain_index_buffers  # noqa: E402
from levit_mm.fileio import save_torch_atomic  # noqa: E402
from levit_tools.cli import check_output_file, run_cli  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert an official/timm/Hugging Face/mmpretrain LeViT checkpoint '
        'to levit_mm (mmpretrain 1.2.0) keys.')
    parser.add_argument('src', help='input checkpoint (.pth/.pt/.bin/.safetensors)')
    parser.add_argument('dst', help='output checkpoint (.pth)')
    parser.add_argument('--arch', choices=sorted(ARCH_SETTINGS), type=str.lower,
                        help='expected variant; a file of another variant is refused')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if osp.abspath(args.src) == osp.abspath(args.dst):
        raise ValueError('Output path must differ from the input path.')
    check_output_file(args.dst)
    converted, info = convert_state_dict(read_state_dict(args.src), args.arch)
    converted.update(mmpretrain_index_buffers(info))  # mmpretrain's LeViT persists them
    meta = dict(levit_mm_conversion=dict(
        source=osp.basename(args.src), format=info.format, arch=info.arch,
        fused=info.fused, distilled=info.distilled, num_classes=info.num_classes,
        img_size=info.img_size))
    save_torch_atomic(dict(state_dict=converted, meta=meta), args.dst)
    deploy = ' (load into a deploy=True model)' if info.fused or info.head_fused else ''
    print(f'Converted {info.describe()}\n  -> {args.dst}: {len(converted)} tensors in '
          f'levit_mm layout{deploy}.')


if __name__ == '__main__':
    run_cli(main)
