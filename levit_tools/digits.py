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


def run_logged(args, title: str, env: dict, verbose: bool = False) -> float:
    """Run ``python args`` from the repo, echoing its progress lines (every line with
    ``verbose``); on failure pass on the tool's one ``error:`` line (exit status 2 through
    ``run_cli``), or print the end of its output.  Returns seconds."""
    print(f'\n=== {title}\n$ python {" ".join(args)}', flush=True)
    start = time.time()
    tail = collections.deque(maxlen=40)
    with subprocess.Popen([sys.executable] + args, cwd=REPO, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as proc:
        for line in proc.stdout:
            tail.append(line)
            if verbose or SHOWN.search(line):
                print('  ' + line.rstrip(), flush=True)
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


def final_val_top1(work_dir: str) -> float:
    """The last ``accuracy/top1`` the run logged (mmengine's ``vis_data/scalars.json``)."""
    runs = sorted(d for d in os.listdir(work_dir) if re.fullmatch(r'\d{8}_\d{6}', d))
    top1 = None
    with open(osp.join(work_dir, runs[-1], 'vis_data', 'scalars.json')) as f:
        for line in f:
            record = json.loads(line)
            if 'accuracy/top1' in record:
                top1 = record['accuracy/top1']
    if top1 is None:
        raise ValueError(f'No validation accuracy logged in {work_dir}.')
    return top1


def train(cfg: str, work_dir: str, data: str, epochs, extra, env, title,
          verbose: bool = False) -> float:
    """``tools/train.py cfg`` on the digits folder ``data`` (every split), ``epochs``
    overriding the config's (validated once, at the end); returns seconds."""
    options = [f'{split}.dataset.data_root={data}'
               for split in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    if epochs:
        options += [f'train_cfg.max_epochs={epochs}', f'train_cfg.val_interval={epochs}']
    return run_logged(['tools/train.py', cfg, '--work-dir', work_dir, '--cfg-options'] + options +
               list(extra), title, env, verbose)
