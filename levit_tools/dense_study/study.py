"""One study run from start to row: its ``tools/train.py`` job (validating every
``val_interval`` iterations, which gives the learning curve) and the row read back."""
import os.path as osp
from typing import Dict, List, Optional

from mmengine.config import Config

from . import curves
from .jobs import Job
from .options import run_options
from .runs import REPO, Run


def study_job(run: Run, work: str, data: str, checkpoints: Dict[str, str], iters: int,
              val_interval: int, batch_size: Optional[int], extra: List[str],
              env: dict) -> Job:
    folder = osp.join(work, run.name)
    options = run_options(run, data, checkpoints.get(run.pretrained), iters, val_interval,
                          batch_size, extra)
    cmd = ['tools/train.py', run.config, '--work-dir', folder, '--cfg-options'] + options
    return Job(run.name, cmd, osp.join(folder, 'study.log'), REPO, env)


def resolved_schedule(run: Run, iters: int, batch_size: Optional[int]) -> Dict[str, int]:
    """The iterations and batch size the run trains with (the config's unless given)."""
    cfg = Config.fromfile(run.config)
    return dict(iters=iters or cfg.train_cfg.max_iters,
                batch=batch_size or cfg.train_dataloader.batch_size)


def result_row(run: Run, job: Job, schedule: Dict[str, int],
               flops: Optional[dict]) -> dict:
    records = curves.scalars(osp.join(osp.dirname(job.log_path)))
    loss = curves.losses(records)
    row = dict(name=run.name, task=run.task, model=run.model, backbone=run.backbone,
               metric=run.metric, note=run.note, options=list(run.options),
               wall_s=job.wall_s, cpu_s=job.cpu_s, error=job.error,
               curve=curves.learning_curve(records), **schedule, **(flops or {}))
    if loss:
        row.update(loss_first=loss[0], loss_last=loss[-1])
    return row
