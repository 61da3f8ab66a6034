"""LeViT learns offline: DeiT hard distillation on scikit-learn's bundled digits.

    python tools/digits_demo.py              # teacher, then the distilled LeViT student
    python tools/digits_demo.py --baseline   # also the same student without a teacher

1. writes the 1,797 real 8x8 scans as a 64x64 px ``CustomDataset`` folder, split 80/20
   train/val per class (``<work-dir>/data/{train,val}/<digit>/*.png``);
2. trains a small ResNet teacher with ``tools/train.py``;
3. trains LeViT-128S with hard distillation from that teacher (``tools/train.py``);
4. evaluates the student with ``tools/test.py``;
5. with ``--baseline``, trains the same student without a teacher, for comparison;
6. classifies a few held-out digits with the distilled student.

Every stage is an ordinary mmengine run (logs and checkpoints under ``--work-dir``).
"""
import argparse
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
sys.path.insert(0, REPO)  # this checkout's levit_mm, as in tools/train.py
CONFIGS = osp.join(REPO, 'configs', 'levit', 'digits')
TEACHER_CFG = osp.join(CONFIGS, 'resnet18-w32_digits.py')
STUDENT_CFG = osp.join(CONFIGS, 'levit-128s_digits_distill.py')
BASELINE_CFG = osp.join(CONFIGS, 'levit-128s_digits.py')


def epochs(text: str) -> int:
    value = int(text)
    if value < 2:  # one warm-up epoch, then at least one of cosine decay
        raise argparse.ArgumentTypeError(
            f'{value} is too few: the schedule warms up for one epoch, then decays, so it '
            'needs at least 2 epochs')
    return value


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default=osp.join(REPO, 'work_dirs', 'digits'))
    parser.add_argument('--px', type=int, default=64, help='image side written to disk')
    parser.add_argument('--teacher-epochs', type=epochs, default=None)
    parser.add_argument('--student-epochs', type=epochs, default=None)
    parser.add_argument('--teacher-checkpoint',
                        help='reuse a trained digits teacher instead of training one')
    parser.add_argument('--baseline', action='store_true',
                        help='also train the student without a teacher, for comparison')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads per run (1 is fastest on a busy 2-core machine)')
    parser.add_argument('--show', type=int, default=10, help='held-out digits to classify')
    parser.add_argument('--verbose', action='store_true',
                        help="show the training runs' whole output (config dump included)")
    return parser.parse_args(argv)


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
        shutil.rmtree(root)
    digits = load_digits()
    rng = np.random.default_rng(seed)
    split = {'px': px, 'per_class': per_class, 'train': 0, 'val': 0}
    os.makedirs(osp.dirname(root) or '.', exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='.digits-', dir=osp.dirname(root) or '.')
    for label in range(10):
        idx = rng.permutation(np.flatnonzero(digits.target == label))[:per_class]
        n_val = int(round(len(idx) * val_fraction))
        for part, members in (('val', idx[:n_val]), ('train', idx[n_val:])):
            folder = osp.join(tmp, part, str(label))
            os.makedirs(folder, exist_ok=True)
            for i in members:
                pixels = (digits.images[i] * (255.0 / 16.0)).astype(np.uint8)  # 0..16 -> 0..255
                img = Image.fromarray(pixels, mode='L').resize((px, px), Image.BICUBIC)
                img.convert('RGB').save(osp.join(folder, f'{i:04d}.png'))
            split[part] += len(members)
    with open(osp.join(tmp, 'split.json'), 'w') as f:
        json.dump(split, f)
    os.replace(tmp, root)
    return split


#: Lines of a training/test run worth showing on the console: progress, metrics, where
#: checkpoints go, and anything that went wrong.  The rest (the full config dump, one line
#: per parameter group) stays in the run's log file under its work dir.
SHOWN = re.compile(r'Epoch\((train|val|test)\)|Saving checkpoint|best checkpoint|'
                   r'^(error|[A-Za-z.]*(Error|Warning))\b|^Traceback')


def run(args, title: str, env: dict, verbose: bool = False) -> float:
    """Run ``python args`` from the repo, echoing its progress lines (every line with
    ``verbose``); on failure print the end of its output.  Returns seconds."""
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
    options = [f'{split}.dataset.data_root={data}'
               for split in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    if epochs:
        options += [f'train_cfg.max_epochs={epochs}', f'train_cfg.val_interval={epochs}']
    return run(['tools/train.py', cfg, '--work-dir', work_dir, '--cfg-options'] + options +
               list(extra), title, env, verbose)


def classify_held_out(cfg: str, checkpoint: str, data: str, count: int) -> None:
    """Print the student's prediction for a few validation images, one per class first."""
    from mmengine.config import Config
    from mmpretrain import ImageClassificationInferencer

    import levit_mm  # noqa: F401

    model_cfg = Config.fromfile(cfg)
    model_cfg.model.teacher = None  # inference never needs the teacher
    inferencer = ImageClassificationInferencer(model_cfg, pretrained=checkpoint, device='cpu')
    val = osp.join(data, 'val')
    picks = []
    for rank in range(count):
        label = rank % 10
        files = sorted(os.listdir(osp.join(val, str(label))))
        picks.append((label, osp.join(val, str(label), files[rank // 10])))
    results = inferencer([p for _, p in picks])
    right = 0
    print('\n=== held-out digits classified by the distilled LeViT-128S')
    for (label, path), result in zip(picks, results):
        pred = int(result['pred_label'])
        right += pred == label
        print(f'  {osp.relpath(path, data):<18s} true {label}  predicted {pred}  '
              f'(p={result["pred_score"]:.3f}){"" if pred == label else "  <- wrong"}')
    print(f'  {right}/{len(picks)} correct')


def main(argv=None):
    args = parse_args(argv)
    start = time.time()
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    work = osp.abspath(args.work_dir)
    data = osp.join(work, 'data')
    split = write_digits_folder(data, args.px)
    print(f'digits: {split["train"]} train / {split["val"]} val images at {args.px}px in {data}')

    times = {}
    teacher_dir = osp.join(work, 'teacher')
    if args.teacher_checkpoint:
        teacher_ckpt = args.teacher_checkpoint
        teacher_dir = osp.dirname(osp.abspath(teacher_ckpt))
    else:
        times['teacher'] = train(TEACHER_CFG, teacher_dir, data, args.teacher_epochs, [], env,
                                 'teacher: ResNet-18 (half width) from scratch',
                                 args.verbose)
        teacher_ckpt = last_checkpoint(teacher_dir)
    student_dir = osp.join(work, 'student_distill')
    times['student'] = train(STUDENT_CFG, student_dir, data, args.student_epochs,
                             [f'model.teacher.checkpoint={teacher_ckpt}'], env,
                             'student: LeViT-128S with hard distillation', args.verbose)
    student_ckpt = export_weights(last_checkpoint(student_dir),
                                  osp.join(work, 'levit-128s_digits.pth'))
    times['test'] = run(['tools/test.py', STUDENT_CFG, student_ckpt, '--work-dir',
                         osp.join(work, 'student_test'), '--cfg-options', 'model.teacher=None'] +
                        [f'test_dataloader.dataset.data_root={data}'],
                        'evaluate the student with tools/test.py', env, args.verbose)
    figures = {'teacher': final_val_top1(teacher_dir),
               'student (hard distillation)': final_val_top1(student_dir)}
    if args.baseline:
        baseline_dir = osp.join(work, 'student_plain')
        times['baseline'] = train(BASELINE_CFG, baseline_dir, data, args.student_epochs, [],
                                  env, 'baseline: the same LeViT-128S, no teacher',
                                  args.verbose)
        figures['student (no distillation)'] = final_val_top1(baseline_dir)
    classify_held_out(STUDENT_CFG, student_ckpt, data, args.show)

    print('\n=== digits summary (val top-1 on %d held-out images)' % split['val'])
    for name, top1 in figures.items():
        print(f'  {name:<28s} {top1:6.2f}%')
    print('  wall time: ' + ', '.join(f'{k} {v:.0f}s' for k, v in times.items()) +
          f', total {time.time() - start:.0f}s')
    return figures


if __name__ == '__main__':
    main()
