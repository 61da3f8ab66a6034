"""Pretraining at the scenes' scale, in two stages, for LeViT-128S and ResNet-18 alike
(same data, same epochs, each with its own recipe), side by side, once; a later study with
the same data, epochs and seed reuses the weights.

1. ``digits``: the clean 64 px digits of the digits demo (scikit-learn's scans, white on
   black): the shapes, learnt in a few hundred cheap steps;
2. ``crops``: from there, 128 px photo crops holding one 48-112 px digit each, drawn as the
   scenes draw them (:func:`levit_tools.digit_scenes.write_crops`): the digits at the
   scenes' scale, in any ink, on photographs.  Learnt from scratch, this task stays near
   chance for hundreds of steps; from the clean digits it climbs at once.

Each exports its weights (``backbone.*`` keys) for the detectors' and segmentors'
``init_cfg``."""
import json
import os
import os.path as osp
from typing import Dict, List

from levit_mm.fileio import write_text_atomic
from levit_tools import digits

from .jobs import Job, run_jobs

#: key -> what to train: LeViT-128S with the digits demo's recipe (AGC, EMA) and bias
#: tables for the 256x256 scenes' grids (the 64 and 128 px inputs use the tables' first
#: offsets as they are); mmpretrain's ResNet-18 (full width: mmdet's keys) with the digits
#: teacher's recipe (AdamW, cosine).
CLASSIFIERS = {
    'levit': dict(label='LeViT-128S', options=['model.backbone.img_size=256']),
    'resnet18': dict(label='ResNet-18', options=[]),
}
STAGES = ('digits', 'crops')
LOADER_OPTIONS = [f'{split}_dataloader.{key}' for split in ('train', 'val', 'test')
                  for key in ('num_workers=0', 'persistent_workers=False')]


def resnet18_config(path: str) -> str:
    """The digits teacher's config at full ResNet-18 width, on the images as they are
    (no 32 px resize), written to ``path``."""
    from mmengine.config import Config
    cfg = Config.fromfile(digits.TEACHER_CFG)
    cfg.model.backbone = dict(type='ResNet', depth=18, out_indices=(3, ))
    cfg.model.head.in_channels = 512
    plain = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
    for split in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[split].dataset.pipeline = plain
    cfg.dump(path)
    return path


def stage_job(key: str, stage: str, data: str, folder: str, epochs: int, seed: int,
              env: dict) -> Job:
    """One stage of one classifier; the crops stage starts from the digits stage."""
    config = (digits.BASELINE_CFG if key == 'levit' else
              resnet18_config(osp.join(folder, 'resnet18_digits.py')))
    options = [f'{split}.dataset.data_root={data}' for split in
               ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    options += [f'train_cfg.max_epochs={epochs}', f'train_cfg.val_interval={epochs}',
                f'randomness.seed={seed}'] + LOADER_OPTIONS + CLASSIFIERS[key]['options']
    if stage == 'crops':
        options.append('load_from=' + digits.last_checkpoint(
            osp.join(folder, f'{key}_digits')))
    cmd = ['tools/train.py', config, '--work-dir', osp.join(folder, f'{key}_{stage}'),
           '--cfg-options'] + options
    return Job(f'pretrain {CLASSIFIERS[key]["label"]} on {stage}', cmd,
               osp.join(folder, f'{key}_{stage}', 'study.log'), digits.REPO, env)


def cached(folder: str, key: str, want: dict):
    stamp = osp.join(folder, f'{key}.json')
    if osp.isfile(stamp):
        with open(stamp) as f:
            info = json.load(f)
        if info.get('want') == want and osp.isfile(info['checkpoint']):
            return dict(info, cached=True)
    return None


def pretrain(keys: List[str], data: Dict[str, str], want: dict, folder: str,
             epochs: Dict[str, int], seed: int, env: dict,
             parallel: int) -> Dict[str, dict]:
    """``{key: dict(checkpoint, stage_checkpoints, top1, wall_s, cpu_s, cached)}``: each
    classifier's final (crops) weights and each stage's, training what is not cached, ``parallel`` at a time; ``data`` maps
    each stage to its image folder, ``want`` (with ``epochs`` and ``seed``) names what a
    cached result must have been made from."""
    want = dict(want, epochs=epochs, seed=seed)
    os.makedirs(folder, exist_ok=True)
    out = {key: cached(folder, key, want) for key in keys}
    todo = [key for key in keys if out[key] is None]
    times = {key: dict(wall_s=0.0, cpu_s=0.0) for key in todo}
    for stage in STAGES:
        jobs = {key: stage_job(key, stage, data[stage], folder, epochs[stage], seed, env)
                for key in todo}
        run_jobs(list(jobs.values()), parallel)
        for key, job in jobs.items():
            if job.error:
                raise SystemExit(f'error: {job.name} failed: {job.error}')
            times[key]['wall_s'] += job.wall_s
            times[key]['cpu_s'] += job.cpu_s
    for key in todo:
        # the final weights, and the first stage's (a lever of the study)
        weights = {stage: digits.export_weights(
            digits.last_checkpoint(osp.join(folder, f'{key}_{stage}')),
            osp.join(folder, f'{key}_{stage}.pth')) for stage in STAGES}
        info = dict(want=want, checkpoint=weights['crops'], stage_checkpoints=weights,
                    **times[key],
                    top1={stage: digits.final_val_top1(osp.join(folder, f'{key}_{stage}'))
                          for stage in STAGES})
        write_text_atomic(osp.join(folder, f'{key}.json'), json.dumps(info))
        out[key] = dict(info, cached=False)
    return out
