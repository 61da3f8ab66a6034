"""Learning curves from mmengine's ``vis_data/scalars.json``: the validation metrics
logged every ``val_interval`` iterations, each with the training time spent to reach it
(the logged per-iteration times summed: validation time is not training time)."""
import json
import os
import os.path as osp
import re
from typing import Dict, List

from .runs import METRICS


def scalars(work_dir: str) -> List[dict]:
    """The records of the run's latest ``<timestamp>/vis_data/scalars.json`` ([] if none)."""
    if not osp.isdir(work_dir):
        return []
    runs = sorted(d for d in os.listdir(work_dir) if re.fullmatch(r'\d{8}_\d{6}', d)
                  and osp.isfile(osp.join(work_dir, d, 'vis_data', 'scalars.json')))
    if not runs:
        return []
    with open(osp.join(work_dir, runs[-1], 'vis_data', 'scalars.json')) as f:
        return [json.loads(line) for line in f if line.strip()]


def learning_curve(records: List[dict]) -> List[Dict[str, float]]:
    """``[{'iter', 'train_s', <metric>: value, ...}]`` at each validation, in order.

    A training record (one per logging interval) carries ``time``, the mean seconds of the
    iterations since the previous one; the time to a validation at ``step`` is the sum of
    ``time x iterations`` of the records up to it.  mIoU (mmseg logs percent) is a fraction
    here, like COCO's mAPs."""
    points, train_s, last_iter = [], 0.0, 0
    for record in records:
        if 'loss' in record and 'iter' in record:
            train_s += record['time'] * (record['iter'] - last_iter)
            last_iter = record['iter']
        elif any(key in record for key in METRICS):
            point = dict(iter=record['step'], train_s=train_s)
            for key in METRICS:
                if key in record:
                    point[key] = record[key] / (100.0 if key == 'mIoU' else 1.0)
            points.append(point)
    return points


def losses(records: List[dict]) -> List[float]:
    return [r['loss'] for r in records if 'loss' in r and 'iter' in r]
