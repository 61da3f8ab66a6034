"""Params and FLOPs of LeViT models beside the figures in the metafile.

    python tools/analysis_tools/get_flops.py                       # the five zoo models
    python tools/analysis_tools/get_flops.py levit-256_3rdparty_in1k --shape 320 320
    python tools/analysis_tools/get_flops.py configs/levit/levit-128s_8xb256_in1k.py

FLOPs follow mmengine's counter (one multiply-add counts once; LeViT's fused attention is
counted by levit_tools.analysis).  Like the metafile, the counts cover one classification
head; ``--with-distillation-head`` counts the model exactly as its config builds it.
"""
import argparse
import os.path as osp
import sys
from typing import Dict, List, Optional

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import levit_mm  # noqa: E402,F401
from levit_mm.model_zoo import package_root  # noqa: E402
from levit_tools.analysis import classifier_complexity  # noqa: E402
from levit_tools.cli import run_cli  # noqa: E402
from levit_tools.results import add_results_arg, report  # noqa: E402
from levit_tools.validation import check_model_source  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('models', nargs='*', help='model names or config files; default: '
                        'every model in configs/levit/metafile.yml')
    parser.add_argument('--shape', type=int, nargs=2, default=[224, 224],
                        metavar=('H', 'W'), help='input size (default 224 224)')
    parser.add_argument('--with-distillation-head', action='store_true',
                        help='count the distillation head too (the training model)')
    add_results_arg(parser, 'model_zoo')
    return parser.parse_args(argv)


def metafile_entries() -> List[dict]:
    import yaml
    with open(package_root() / 'configs' / 'levit' / 'metafile.yml') as f:
        return yaml.safe_load(f)['Models']


def find_entry(model: str, entries: List[dict]) -> Optional[dict]:
    """The metafile entry of a model name or config path (None if it has none)."""
    for entry in entries:
        if entry['Name'].lower() == model.lower():
            return entry
        if model.endswith('.py') and osp.abspath(model) == osp.abspath(
                osp.join(package_root(), entry['Config'])):
            return entry
    return None


def measure(model: str, shape, with_distillation_head: bool) -> Dict[str, int]:
    from mmpretrain import get_model
    # One head, as the metafile counts; a teacher needs the distillation head, and is never
    # part of the student's figures anyway.
    overrides = {} if with_distillation_head else dict(
        head=dict(distillation=False), teacher=None)
    net = get_model(model, pretrained=False, **overrides)
    return classifier_complexity(net, (1, 3, *shape))


def relative(value: int, reference) -> str:
    if not reference:
        return '-'
    return f'{100.0 * (value - reference) / reference:+.2f}%'


def main(argv=None):
    args = parse_args(argv)
    if min(args.shape) < 1:
        raise ValueError(f'--shape needs positive sizes, got {args.shape}.')
    entries = metafile_entries()
    models = args.models or [entry['Name'] for entry in entries]
    rows = []
    for model in models:
        check_model_source(model)
        figures = measure(model, args.shape, args.with_distillation_head)
        entry = find_entry(model, entries)
        meta = entry['Metadata'] if entry and tuple(args.shape) == (224, 224) else {}
        rows.append((model, figures, meta))

    title = (f'Params and FLOPs, input 1x3x{args.shape[0]}x{args.shape[1]}, '
             f'{"both heads" if args.with_distillation_head else "one head (as the metafile)"}')
    header = (f'{"model":<44s} {"params(M)":>10s} {"metafile":>10s} {"diff":>8s} '
              f'{"FLOPs(G)":>10s} {"metafile":>10s} {"diff":>8s}')
    lines = [header, '-' * len(header)]
    for model, figures, meta in rows:
        params, flops = figures['params'], figures['flops']
        meta_params, meta_flops = meta.get('Parameters'), meta.get('FLOPs')
        lines.append(f'{model:<44s} {params / 1e6:>10.3f} '
                     f'{meta_params / 1e6 if meta_params else float("nan"):>10.3f} '
                     f'{relative(params, meta_params):>8s} {flops / 1e9:>10.4f} '
                     f'{meta_flops / 1e9 if meta_flops else float("nan"):>10.4f} '
                     f'{relative(flops, meta_flops):>8s}')
    report(lines, args.results, title, preformatted=True)
    return rows


if __name__ == '__main__':
    run_cli(main)
