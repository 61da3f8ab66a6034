"""Check levit_mm against the official LeViT code itself (not a pip package, not shipped here):
exit status 1 when a variant's max |logit diff| exceeds its bound.

    python tools/model_converters/verify_against_official.py /path/to/facebookresearch/LeViT
        [--archs 128s 256] [--results]        # docs/results/official_parity.md

For each variant: the official ``levit.py`` model with random weights and BN statistics, its
training form, single-head form and fused form (``utils.replace_batchnorm``) saved as
``{'model': ...}``, converted by levit_mm and compared on one 224x224 image; then the
official LeViT-C (``levit_c.py``, 1x1 convolutions) into levit_mm's conv and linear forms,
and fused into the conv deploy form.  Each figure is printed beside its bound, the one the
tests assert (``levit_tools/parity.py``).  The results file names the code measured: the
checkout's git commit, or ``--source`` for a copy without ``.git``.
"""
import argparse
import importlib
import os.path as osp
import subprocess
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from levit_tools import parity  # noqa: E402
from levit_tools.cli import run_cli  # noqa: E402
from levit_tools.results import add_results_arg, report  # noqa: E402
from levit_tools.testing import randomize_  # noqa: E402

ARCHS = ['128s', '128', '192', '256', '384']
OFFICIAL_FILES = ('levit.py', 'levit_c.py', 'utils.py')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('official_repo', help='a copy of facebookresearch/LeViT')
    parser.add_argument('--archs', nargs='+', default=ARCHS, choices=ARCHS, metavar='ARCH')
    parser.add_argument('--source', help='what the copy is, for the results file (default: '
                        "'facebookresearch/LeViT at <its git commit>')")
    parser.add_argument('--threads', type=int, default=1, help='torch threads')
    add_results_arg(parser, 'official_parity')
    args = parser.parse_args(argv)
    missing = [f for f in OFFICIAL_FILES if not osp.isfile(osp.join(args.official_repo, f))]
    if missing:
        parser.error(f'{args.official_repo} is not a copy of facebookresearch/LeViT: no '
                     + ', '.join(missing))
    return args


def describe_source(repo: str, given=None) -> str:
    """``given``, or the checkout's commit; says so when neither is known."""
    if given:
        return given
    found = subprocess.run(['git', '-C', repo, 'rev-parse', 'HEAD'], capture_output=True,
                           text=True)
    if found.returncode == 0:
        return f'facebookresearch/LeViT at commit {found.stdout.strip()} ({repo})'
    return f'{repo} (not a git checkout and no --source given: version unknown)'


def official_figures(levit, utils, arch, x):
    """``[(name, diff, bound)]``: training, single-head and fused forms of ``levit.py``."""
    build = getattr(levit, f'LeViT_{arch.upper()}')
    model = randomize_(build(), 0, classifier_std=0.3).eval()
    ref = model(x)
    state = model.state_dict()
    figures = [('official', parity.max_diff(parity.levit_mm_logits({'model': state}, x), ref),
                parity.OFFICIAL)]
    single = build(distillation=False)
    single.load_state_dict({k: v for k, v in state.items() if not k.startswith('head_dist.')})
    single.eval()  # after loading: the official blocks cache their biases in eval()
    figures.append(('single head', parity.max_diff(parity.levit_mm_logits(
        {'model': single.state_dict()}, x), single(x)), parity.OFFICIAL))
    utils.replace_batchnorm(model)
    figures.append(('fused', parity.max_diff(parity.levit_mm_logits(
        {'model': model.state_dict()}, x, deploy=True), ref), parity.FUSED))
    return figures


def levit_c_figures(levit_c, utils, arch, x):
    """``[(name, diff, bound)]``: LeViT-C into both forms, and fused into the conv deploy."""
    model = getattr(levit_c, f'LeViT_c_{arch.upper()}')()
    model = randomize_(model, 0, classifier_std=0.3).eval()
    ref = model(x)
    state = {'model': model.state_dict()}
    figures = [(f'LeViT-C -> {form}', parity.max_diff(parity.levit_mm_logits(state, x, form),
                                                       ref), parity.OFFICIAL_C)
               for form in ('conv', 'linear')]
    utils.replace_batchnorm(model)
    figures.append(('LeViT-C fused -> conv deploy', parity.max_diff(parity.levit_mm_logits(
        {'model': model.state_dict()}, x, 'conv', deploy=True), ref), parity.FUSED))
    return figures


def main(argv=None):
    import torch
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    sys.path.insert(0, osp.abspath(args.official_repo))  # the official files import utils
    levit, levit_c, utils = (importlib.import_module(f[:-3]) for f in OFFICIAL_FILES)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    lines, over = None, 0
    with torch.no_grad():
        for arch in args.archs:
            figures = official_figures(levit, utils, arch, x)
            figures += levit_c_figures(levit_c, utils, arch, x)
            if lines is None:
                lines = [f'Measured against {describe_source(args.official_repo, args.source)}'
                         '. Max |logit diff| (fp32, random weights and BN statistics, one '
                         '224x224 image) beside the bound the tests assert '
                         '(`levit_tools/parity.py`).', '',
                         '| variant | ' + ' | '.join(f[0] for f in figures) + ' |',
                         '|---|' + '---|' * len(figures)]
            over += sum(diff > bound for _, diff, bound in figures)
            lines.append(f'| LeViT-{arch.upper()} | ' +
                         ' | '.join(parity.cell(d, b) for _, d, b in figures) + ' |')
            print(lines[-1], flush=True)
    lines += ['', 'All figures within their bounds.' if not over else
              f'{over} figure(s) over their bound.']
    report(lines, args.results, 'Parity of levit_mm with the official LeViT code')
    if over:
        print(f'error: {over} figure(s) over their bound', file=sys.stderr)
        sys.exit(1)


if __name__ == '__main__':
    run_cli(main)
