"""The paper's headline picture from measured figures: published top-1 (the metafile's)
against images/s, one curve per implementation, each at its fastest path on this machine.
Every implementation runs the same arch with the same weights' accuracy, so at one arch
the points share a height and only their speed differs."""
import os.path as osp
from typing import Dict, Tuple

from levit_tools.results import REPO

from .runs import LEVIT_MM

METAFILE = osp.join(REPO, 'configs', 'levit', 'metafile.yml')


def published_top1(metafile: str = METAFILE) -> Dict[str, float]:
    """``{arch: ImageNet top-1}`` of the released ``levit-<arch>_3rdparty_in1k`` models."""
    import yaml
    with open(metafile) as f:
        models = yaml.safe_load(f)['Models']
    found = {}
    for model in models:
        name = model['Name']
        if name.endswith('_3rdparty_in1k') and model.get('Results'):
            arch = name[len('levit-'):-len('_3rdparty_in1k')]
            found[arch] = float(model['Results'][0]['Metrics']['Top 1 Accuracy'])
    return found


def fastest_per_model(ips: Dict[Tuple[str, str], float]) -> Dict[str, Tuple[str, float]]:
    """``{implementation: (its fastest path, img/s)}``; levit_mm's two graphs count as
    one implementation."""
    best: Dict[str, Tuple[str, float]] = {}
    for (model, path), value in ips.items():
        name = 'levit_mm' if model in LEVIT_MM else model
        if name not in best or value > best[name][1]:
            best[name] = (path, value)
    return best


def plot_top1_vs_speed(results: Dict[str, dict], path: str, title: str) -> str:
    """Draw the picture to ``path`` (PNG) from :func:`levit_tools.bench.cpu.measure_arch`
    results; returns ``path``."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from levit_mm.fileio import atomic_output
    top1 = published_top1()
    archs = [a for a in results if a in top1]
    curves: Dict[str, list] = {}
    for arch in archs:
        for name, (best_path, value) in fastest_per_model(results[arch]['ips']).items():
            curves.setdefault(name, []).append((value, top1[arch], arch, best_path))
    fig, ax = plt.subplots(figsize=(8, 5.5))
    for name, points in curves.items():
        points.sort()
        ax.plot([p[0] for p in points], [p[1] for p in points], marker='o',
                linewidth=2.5 if name == 'levit_mm' else 1.2,
                label=f'{name} (fastest path per arch)')
        if name == 'levit_mm':
            for value, acc, arch, best_path in points:
                ax.annotate(f'{arch.upper()}\n{best_path}', (value, acc), fontsize=7,
                            textcoords='offset points', xytext=(4, -14))
    ax.set_xlabel('images/s (measured here)')
    ax.set_ylabel('ImageNet top-1 % (published, metafile)')
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_output(path, '.png') as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
    return path
