"""The digits dataset (scikit-learn's bundled 8x8 scans as an image folder) and the runs
built on it: the digits demo, the dense study's pretraining and the tests share these.

Runs go through ``tools/train.py`` / ``tools/test.py`` in a subprocess, as a user would run
them, with their progress lines echoed.
"""
import collections
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Optional

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = osp.join(REPO, 'configs', 'levit', 'digits')
TEACHER_CFG = osp.join(CONFIGS, 'resnet18-w32_digits.py')
STUDENT_CFG = osp.join(CONFIGS, 'levit-128s_digits_distill.py')
BASELINE_CFG = osp.join(CONFIGS, 'levit-128s_digits.py')
#: the same students without the weight EMA (tiny configs that drop the hook)
NO_EMA_CFG = {STUDENT_CFG: osp.join(CONFIGS, 'levit-128s_digits_distill_no-ema.py'),
              BASELINE_CFG: osp.join(CONFIGS, 'levit-128s_digits_no-ema.py')}
#: ``--cfg-options`` that replace adaptive gradient clipping by mmengine's plain wrapper
NO_AGC_OPTIONS = ('optim_wrapper.type=OptimWrapper', 'optim_wrapper.clip_grad=None')


def student_run(distilled: bool, ema: bool = True, agc: bool = True):
    """``(config, extra cfg-options)`` of the digits LeViT-128S with or without a teacher,
    the weight EMA and AGC (the shipped configs have both)."""
    cfg = STUDENT_CFG if distilled else BASELINE_CFG
    return (cfg if ema else NO_EMA_CFG[cfg]), ([] if agc else list(NO_AGC_OPTIONS))


def write_digits_folder(root: str, px: int, val_fraction: float = 0.2, seed: int = 0,
                        per_class: Optional[int] = None) -> dict:
    """Write the digits as ``root/{train,val}/<digit>/<index>.png`` (built in a temporary
    directory and renamed into place, so an interrupted run never leaves half a dataset).
    ``per_class`` keeps only that many scans of each digit (for quick tests)."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    marker = osp.join(root, 'split.json')
    if osp.isfile(marker):
        with open(marker) as f:
            split = json.load(f)
        if split.get('px') == px and split.get('per_class') == per_class:
            return split
    digits = load_digits()
    rng = np.random.default_rng(seed)
    split = {'px': px, 'per_class': per_class, 'train': 0, 'val': 0}
    os.makedirs(osp.dirname(root) or '.', exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='.digits-', dir=osp.dirname(root) or '.')
    try:
        for label in range(10):
            idx = rng.permutation(np.flatnonzero(digits.target == label))[:per_class]
            n_val = int(round(len(idx) * val_fraction))
            for part, members in (('val', idx[:n_val]), ('train', idx[n_val:])):
                folder = osp.join(tmp, part, str(label))
                os.makedirs(folder, exist_ok=True)
                for i in members:
                    # 0..16 -> 0..255
                    pixels = (digits.images[i] * (255.0 / 16.0)).astype(np.uint8)
                    img = Image.fromarray(pixels, mode='L').resize((px, px), Image.BICUBIC)
                    img.convert('RGB').save(osp.join(folder, f'{i:04d}.png'))
                split[part] += len(members)
        with open(osp.join(tmp, 'split.json'), 'w') as f:
            json.dump(split, f)
        if osp.isdir(root):  # the previous copy goes only once the new one is complete
            shutil.rmtree(root)
        os.replace(tmp, root)
    finally:  # a failed write (disk full) leaves no half-written copy
        if osp.isdir(tmp):
            shutil.rmtree(tmp)
    return split


#: Lines of a training/test run worth showing on the console: progress, metrics, where
#: checkpoints go, and anything that went wrong.  The rest (the full config dump, one line
#: per parameter group) stays in the run's log file under its work dir.
SHOWN = re.compile(r'Epoch\((train|val|test)\)|Saving checkpoint|best checkpoint|'
                   r'^(error|[A-Za-z.]*(Error|Warning))\b|^Traceback')


class StepFailed(ValueError):
    """A step's tool stopped with its own one-line ``error:`` (passed on as it is)."""


def run_logged(args, title: str, env: dict, verbose: bool = False, tag: str = '') -> float:
    """Run ``python args`` from the repo, echoing its progress lines (every line with
    ``verbose``; each after ``tag``, which tells runs side by side apart); on failure pass
    on the tool's one ``error:`` line (exit status 2 through ``run_cli``), or print the end
    of its output.  Returns seconds."""
    print(f'\n{tag}=== {title}\n{tag}$ python {" ".join(args)}', flush=True)
    start = time.time()
    tail = collections.deque(maxlen=40)
    with subprocess.Popen([sys.executable] + args, cwd=REPO, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as proc:
        for line in proc.stdout:
            tail.append(line)
            if verbose or SHOWN.search(line):
                print(f'{tag}  {line.rstrip()}', flush=True)
    if proc.returncode != 0:
        said = [line.strip() for line in tail if line.startswith('error: ')]
        if said:  # e.g. a full disk while training: the tool already said it in one line
            raise StepFailed(f'{said[-1][len("error: "):]} (step: {title})')
        sys.stderr.write(''.join(tail))
        raise SystemExit(f'error: "{title}" failed with exit code {proc.returncode}')
    return time.time() - start


def last_checkpoint(work_dir: str) -> str:
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def export_weights(checkpoint: str, out: str) -> str:
    """The student's weights and class names only, written atomically: a release file that
    loads with ``torch.load(weights_only=True)`` (a training checkpoint also carries the
    optimizer and mmengine's message hub).  The teacher is never in it."""
    from levit_mm.convert import load_checkpoint_file, mmengine_checkpoint_globals
    from levit_mm.fileio import save_torch_atomic
    with mmengine_checkpoint_globals():
        ckpt = load_checkpoint_file(checkpoint)
    meta = {'dataset_meta': ckpt.get('meta', {}).get('dataset_meta', {})}
    save_torch_atomic({'state_dict': ckpt['state_dict'], 'meta': meta}, out)
    return out


def val_curve(work_dir: str) -> list:
    """Every validation of the run's last attempt (mmengine's ``vis_data/scalars.json``):
    ``[{'epoch', 'top1', 'top1_origin'}]``, ``top1_origin`` (the raw weights) only when the
    EMA hook validated them beside the EMA weights' ``top1``."""
    runs = sorted(d for d in os.listdir(work_dir) if re.fullmatch(r'\d{8}_\d{6}', d))
    curve = []
    with open(osp.join(work_dir, runs[-1], 'vis_data', 'scalars.json')) as f:
        for line in f:
            record = json.loads(line)
            if 'accuracy/top1' in record:
                point = dict(epoch=record['step'], top1=record['accuracy/top1'])
                if 'accuracy/top1_origin' in record:
                    point['top1_origin'] = record['accuracy/top1_origin']
                curve.append(point)
    if not curve:
        raise ValueError(f'No validation accuracy logged in {work_dir}.')
    return curve


def final_val_top1(work_dir: str) -> float:
    """The last ``accuracy/top1`` the run logged."""
    return val_curve(work_dir)[-1]['top1']


def train(cfg: str, work_dir: str, data: str, epochs, extra, env, title,
          verbose: bool = False, eval_every: Optional[int] = None, tag: str = '') -> float:
    """``tools/train.py cfg`` on the digits folder ``data`` (every split), ``epochs``
    overriding the config's, validated every ``eval_every`` epochs and at the end (by
    default: the config's interval, or once at the end when ``epochs`` is given); returns
    seconds."""
    options = [f'{split}.dataset.data_root={data}'
               for split in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    if epochs:
        options.append(f'train_cfg.max_epochs={epochs}')
    if eval_every or epochs:
        options.append(f'train_cfg.val_interval={eval_every or epochs}')
    return run_logged(['tools/train.py', cfg, '--work-dir', work_dir, '--cfg-options'] + options +
                      list(extra), title, env, verbose, tag)


def variant_name(distilled: bool, ema: bool, agc: bool) -> str:
    """The run's folder under the demo's work dir (the shipped recipe has no suffix)."""
    return (('student_distill' if distilled else 'student_no_teacher') +
            ('' if agc else '_no-agc') + ('' if ema else '_no-ema'))


def describe(distilled: bool, ema: bool, agc: bool) -> str:
    used = ' + '.join(name for name, on in (('AGC', agc), ('EMA', ema)) if on)
    return (f'student ({"hard distillation" if distilled else "no teacher"}), '
            f'{used or "neither AGC nor EMA"}')


def train_students(variants, work: str, data: str, teacher_ckpt: str, env: dict,
                   epochs=None, eval_every=None, jobs: int = 1, verbose: bool = False):
    """Train the LeViT-128S ``variants`` (``(distilled, ema, agc)`` each), ``jobs`` at a
    time (each its own ``tools/train.py``; lines tagged with the run when side by side).
    Returns ``[{name, label, variant, cfg, work_dir, seconds, curve}]`` in order."""
    from concurrent.futures import ThreadPoolExecutor

    def one(variant):
        cfg, extra = student_run(*variant)
        if variant[0]:
            extra.append(f'model.teacher.checkpoint={teacher_ckpt}')
        name, label = variant_name(*variant), describe(*variant)
        work_dir = osp.join(work, name)
        seconds = train(cfg, work_dir, data, epochs, extra, env, f'LeViT-128S {label}',
                        verbose, eval_every, f'[{name}] ' if jobs > 1 else '')
        return dict(name=name, label=label, variant=variant, cfg=cfg, work_dir=work_dir,
                    seconds=seconds, curve=val_curve(work_dir))

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(one, variant) for variant in variants]
        try:
            return [future.result() for future in futures]
        finally:  # a failed run: the queued ones do not start (running ones finish)
            for future in futures:
                future.cancel()


def _percent(value) -> str:
    return '-' if value is None else f'{value:.2f}'


def summary_lines(teacher: dict, students, split: dict, setting: str) -> list:
    """Markdown: the final top-1 of the teacher and each student, then each student's
    top-1 at every validation (EMA weights / raw weights where the EMA is on)."""
    lines = [setting, '',
             f'Top-1 on the {split["val"]} held-out scans at the end of training (EMA '
             'weights where the EMA is on, as checkpoints and `tools/test.py` hold them; '
             '"raw": the trained weights themselves):', '',
             '| run | teacher | AGC | EMA | top-1 | raw top-1 | epochs | train time |',
             '|---|---|---|---|---|---|---|---|',
             f'| ResNet-18 (32 base channels, 32 px) | - | no | no | '
             f'{_percent(teacher["top1"])} | - | {teacher["epochs"]} | '
             + ('(given) |' if teacher['seconds'] is None else f'{teacher["seconds"]:.0f} s |')]
    for run in students:
        distilled, ema, agc = run['variant']
        last = run['curve'][-1]
        raw = None if ema else last['top1']  # without the EMA, validation saw the raw weights
        lines.append(f'| LeViT-128S | {"hard distillation" if distilled else "none"} | '
                     f'{"yes" if agc else "no"} | {"yes" if ema else "no"} | '
                     f'{_percent(last["top1"])} | {_percent(last.get("top1_origin", raw))} | '
                     f'{last["epoch"]} | {run["seconds"]:.0f} s |')
    epochs = sorted({point['epoch'] for run in students for point in run['curve']})
    lines += ['', 'Top-1 at each validation, by epoch (EMA / raw where the EMA is on):', '',
              '| run | ' + ' | '.join(f'epoch {e}' for e in epochs) + ' |',
              '|---|' + '---|' * len(epochs)]
    for run in students:
        at = {point['epoch']: point for point in run['curve']}
        cells = [('-' if e not in at else _percent(at[e]['top1']) +
                  (f' / {_percent(at[e]["top1_origin"])}' if 'top1_origin' in at[e] else ''))
                 for e in epochs]
        lines.append(f'| {run["label"]} | ' + ' | '.join(cells) + ' |')
    return lines
