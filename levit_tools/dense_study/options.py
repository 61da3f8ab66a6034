"""The config patcher: ``--cfg-options`` that point a shipped config at the study's data,
checkpoint and schedule, without editing the config (the run's ``vis_data/config.py`` is
then exactly what ran)."""
import os.path as osp
from typing import List, Optional

from .runs import Run


def data_options(run: Run, data: str) -> List[str]:
    """Every loader of the config, and a COCO evaluator's annotation file, on ``data``
    (the file keeps its name: ``instances_val.json`` or ``instances_val_agnostic.json``)."""
    from mmengine.config import Config
    root = data.rstrip('/') + '/'
    opts = [f'{split}_dataloader.dataset.data_root={root}' for split in ('train', 'val',
                                                                         'test')]
    if run.task_kind == 'det':
        cfg = Config.fromfile(run.config)
        for evaluator in ('val_evaluator', 'test_evaluator'):
            name = osp.basename(cfg[evaluator]['ann_file'])
            opts.append(f'{evaluator}.ann_file={root}annotations/{name}')
    return opts


def schedule_options(iters: int, val_interval: int, warmup: int = 50) -> List[str]:
    """``iters`` iterations (cosine to the end, warm-up ``min(warmup, iters // 4)``),
    validated every ``val_interval`` (the learning curve) and checkpointed at the end."""
    return [f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={val_interval}',
            f'param_scheduler.0.end={max(1, min(warmup, iters // 4))}',
            f'param_scheduler.1.end={iters}', f'default_hooks.checkpoint.interval={iters}']


def run_options(run: Run, data: str, checkpoint: Optional[str], iters: int,
                val_interval: int, batch_size: Optional[int] = None,
                extra: List[str] = ()) -> List[str]:
    """All the ``--cfg-options`` of one study run (later ones win)."""
    opts = data_options(run, data)
    if checkpoint:
        opts.append(f'model.backbone.init_cfg.checkpoint={checkpoint}')
    if iters:
        opts += schedule_options(iters, val_interval)
    if batch_size:
        opts.append(f'train_dataloader.batch_size={batch_size}')
    return opts + list(run.options) + list(extra)
