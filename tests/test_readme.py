"""The README is a manual whose figures all come from results files: every measured number
it quotes appears in a file under docs/results/ that a shipped tool wrote (with the command,
the commit, the date and the machine at its top), or in the metafile (published accuracy);
and every results file and tool it names exists."""
import glob
import os.path as osp
import re

from conftest import REPO

README = osp.join(REPO, 'README.md')
RESULTS = sorted(glob.glob(osp.join(REPO, 'docs', 'results', '*.md')))
METAFILE = osp.join(REPO, 'configs', 'levit', 'metafile.yml')
#: a decimal number, or a whole one with a unit that marks it as measured
FIGURE = re.compile(r'(?<![\w.])(\d+\.\d+(?:e[-+]?\d+)?|\d+(?=\s?(?:%|x\b|ms\b|MB\b|GB\b|'
                    r'GiB\b|img/s|s\b|min\b)))(?![\w.]*\d)')
#: words after which a number is a version or a name, not a figure
NAMING_WORDS = r'(?:Python|python|torch|mmcv|mmengine|mmpretrain|mmdet|mmsegmentation|mmseg|' \
               r'timm|transformers|onnxruntime|opset|ICCV|arXiv|v)'
HEADER_KEYS = ('- command: `python ', '- commit: ', '- date: ', '- CPU: ', '- GPU: ',
               '- versions: ')


def prose(text: str) -> str:
    """The README without code (fenced blocks, inline spans), link targets, HTML comments
    and version numbers: what remains are the figures it states."""
    text = re.sub(r'```.*?```', ' ', text, flags=re.S)
    text = re.sub(r'`[^`\n]*`', ' ', text)
    text = re.sub(r'\]\([^)]*\)', ']', text)
    text = re.sub(r'<!--.*?-->', ' ', text, flags=re.S)
    text = re.sub(r'\d+(?:\.\d+){2,}', ' ', text)  # x.y.z versions
    return re.sub(NAMING_WORDS + r' \d+(?:\.\d+)?', ' ', text)


def figures(text: str):
    return sorted(set(FIGURE.findall(prose(text))))


def test_figure_extraction():
    text = ('LeViT-256: 49.6 img/s (1.16x), 34% saved, 2.1e-6 max diff, 318 s, torch 2.14.1, '
            'Python 3.11, `levit-128s_8xb256_in1k.py`, [paper](https://arxiv.org/abs/2104.01136)'
            ', 224x224 and 1000 epochs\n```\n12.5 in code\n```')
    assert figures(text) == ['1.16', '2.1e-6', '318', '34', '49.6']


def test_every_readme_figure_is_in_a_results_file():
    assert RESULTS, 'no results files under docs/results'
    corpus = '\n'.join(open(p).read() for p in RESULTS + [METAFILE])
    with open(README) as f:
        readme = f.read()
    missing = [fig for fig in figures(readme)
               if not re.search(r'(?<![\w.])' + re.escape(fig) + r'(?![\d])', corpus)]
    assert not missing, f'README figures found in no results file: {missing}'


def test_results_files_say_how_they_were_made():
    for path in RESULTS:
        with open(path) as f:
            head = f.read().split('\n\n', 2)[1]
        for key in HEADER_KEYS:
            assert key in head, (osp.basename(path), key)


def test_named_files_exist():
    with open(README) as f:
        readme = f.read()
    named = set(re.findall(r'(?<![\w/])(?:docs|tools|configs|demo)/[\w./-]+\.(?:md|py|sh|png|yml)',
                           readme))
    assert named
    assert not [p for p in named if not osp.exists(osp.join(REPO, p))]
