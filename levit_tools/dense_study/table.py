"""The study's tables, as Markdown lines: one row per run (final metrics beside the
compute), the learning curves, and when LeViT-128S reaches ResNet-18's final metric."""
from typing import List, Optional

from levit_tools.measure import markdown_table

from .runs import METRICS


def fig(value, fmt: str = '{:.3f}') -> str:
    return '-' if value is None else fmt.format(value)


def final(row: dict, key: str) -> Optional[float]:
    curve = row.get('curve') or []
    return curve[-1].get(key) if curve else None


def results_table(rows: List[dict]) -> List[str]:
    header = ['task', 'model', 'backbone', 'GFLOPs backbone / total', 'iters x batch',
              'train s', 'run wall s', 'run CPU s'] + [METRICS[k] for k in METRICS]
    body = []
    for r in rows:
        flops = (f'{r["backbone_gflops"]:.2f} / {r["gflops"]:.2f}' if 'gflops' in r
                 else '-')
        curve = r.get('curve') or [{}]
        status = 'failed' if r.get('error') else fig(curve[-1].get('train_s'), '{:.0f}')
        body.append([r['task'], r['model'], r['backbone'], flops,
                     f'{r["iters"]} x {r["batch"]}', status, fig(r.get('wall_s'), '{:.0f}'),
                     fig(r.get('cpu_s'), '{:.0f}')] + [fig(final(r, k)) for k in METRICS])
    return markdown_table(header, body)


def curve_table(rows: List[dict]) -> List[str]:
    """Each run's headline metric at every validation: ``value @ iteration (train s)``."""
    body = []
    for r in rows:
        points = [f'{fig(p.get(r["metric"]))} @{p["iter"]} ({p["train_s"]:.0f} s)'
                  for p in r.get('curve') or []]
        body.append([r['task'], r['model'], r['backbone'], METRICS[r['metric']],
                     ' · '.join(points) or '-'])
    return markdown_table(['task', 'model', 'backbone', 'metric',
                           'value @ iteration (training seconds)'], body)


def time_to_reach(row: dict, target: float) -> Optional[dict]:
    """The first validation point of ``row`` whose headline metric reaches ``target``."""
    for point in row.get('curve') or []:
        if point.get(row['metric'], -1) >= target:
            return point
    return None


def speed_lines(rows: List[dict]) -> List[str]:
    """Per task: when LeViT-128S's RetinaNet first reaches ResNet-18's final metric, in
    training seconds, against ResNet-18's own."""
    lines = []
    for task in dict.fromkeys(r['task'] for r in rows):
        pair = {r['backbone']: r for r in rows if r['task'] == task and
                r['model'] == 'RetinaNet' and not r.get('error') and r.get('curve')}
        if {'LeViT-128S', 'ResNet-18'} - set(pair):
            continue
        levit, r18 = pair['LeViT-128S'], pair['ResNet-18']
        goal, r18_s = final(r18, r18['metric']), r18['curve'][-1]['train_s']
        hit = time_to_reach(levit, goal)
        where = ('not within its run' if hit is None else
                 f'at iteration {hit["iter"]} after {hit["train_s"]:.0f} s of training '
                 f'({hit["train_s"] / r18_s:.2f}x ResNet-18\'s {r18_s:.0f} s)')
        lines.append(f'- {task}: LeViT-128S reaches ResNet-18\'s final '
                     f'{METRICS[r18["metric"]]} ({goal:.3f}) {where}.')
    return lines
