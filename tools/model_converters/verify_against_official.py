"""Check the converter against the official LeViT code itself (not a pip package).

    python tools/model_converters/verify_against_official.py /path/to/facebookresearch/LeViT
        [--archs 128s 256]

For each variant: the official model with random weights and BN statistics, its training
form, single-head form and fused form (``utils.replace_batchnorm``) saved as ``{'model': ...}``,
converted by levit_mm and compared on one 224x224 input.  Then the same for the official
LeViT-C (``levit_c.py``: 1x1 convolutions), loaded into levit_mm's conv form and its linear
form.  Prints max |logit diff|.
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402

import levit_mm  # noqa: E402,F401
from levit_mm.convert import convert_state_dict  # noqa: E402
from levit_tools.models import build_classifier  # noqa: E402
from levit_tools.testing import randomize_  # noqa: E402


@torch.no_grad()
def levit_mm_logits(state, arch, x, deploy=False, distillation=True, form='linear'):
    converted, info = convert_state_dict(state)
    assert info.arch == arch, info.describe()
    model = build_classifier(arch, deploy=deploy, distillation=distillation,
                             form=form).eval()
    model.load_state_dict(converted, strict=True)
    return model(x, mode='tensor')


@torch.no_grad()
def main(official_repo, archs):
    sys.path.insert(0, official_repo)
    import levit  # the official module
    import utils
    torch.set_num_threads(2)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    print('| variant | official | official single head | official fused |')
    print('|---|---|---|---|')
    for arch in archs:
        model = getattr(levit, f'LeViT_{arch.upper()}')()
        model = randomize_(model, 0, classifier_std=0.3).eval()
        ref = model(x)
        diffs = [(levit_mm_logits({'model': model.state_dict()}, arch, x) - ref).abs().max()]
        single = getattr(levit, f'LeViT_{arch.upper()}')(distillation=False)
        single.load_state_dict({k: v for k, v in model.state_dict().items()
                                if not k.startswith('head_dist.')})
        single.eval()  # after loading: the official blocks cache their biases in eval()
        diffs.append((levit_mm_logits({'model': single.state_dict()}, arch, x,
                                      distillation=False) - single(x)).abs().max())
        utils.replace_batchnorm(model)
        diffs.append((levit_mm_logits({'model': model.state_dict()}, arch, x, deploy=True)
                      - ref).abs().max())
        print(f'| {arch.upper()} | ' + ' | '.join(f'{d:.1e}' for d in diffs) + ' |')
    verify_levit_c(archs, x, utils)


@torch.no_grad()
def verify_levit_c(archs, x, utils):
    import levit_c  # the official conv form
    print('\n| variant | LeViT-C -> conv form | LeViT-C -> linear form | '
          'LeViT-C fused -> conv deploy |')
    print('|---|---|---|---|')
    for arch in archs:
        model = getattr(levit_c, f'LeViT_c_{arch.upper()}')()
        model = randomize_(model, 0, classifier_std=0.3).eval()
        ref = model(x)
        state = {'model': model.state_dict()}
        diffs = [(levit_mm_logits(state, arch, x, form=form) - ref).abs().max()
                 for form in ('conv', 'linear')]
        utils.replace_batchnorm(model)
        diffs.append((levit_mm_logits({'model': model.state_dict()}, arch, x, deploy=True,
                                      form='conv') - ref).abs().max())
        print(f'| {arch.upper()} | ' + ' | '.join(f'{d:.1e}' for d in diffs) + ' |')


if __name__ == '__main__':
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('official_repo', help='a checkout of facebookresearch/LeViT')
    parser.add_argument('--archs', nargs='+', default=['128s', '128', '192', '256', '384'])
    args = parser.parse_args()
    main(args.official_repo, args.archs)
