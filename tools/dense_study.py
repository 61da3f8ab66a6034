"""LeViT detection and segmentation learning on real data, offline: the whole study.

    python tools/dense_study.py                 # data, classifier, every model, the table
    python tools/dense_study.py --bias-study    # also the attention-bias comparison
    python tools/dense_study.py --iters 0       # the configs' own (longer) schedules

The default schedule (120 iterations of 4 images per model) is what fits the whole study in
about half an hour on an idle 2-core CPU.

1. makes the digit-scenes dataset (``tools/dataset_converters/make_digit_scenes.py``);
2. trains the LeViT-128S digits classifier at 64 px with :mod:`levit_tools.digits`'s
   machinery (cached: a later run reuses it), whose backbone initialises the LeViT models;
3. trains every model with ``tools/train.py`` and evaluates its final checkpoint with
   ``tools/test.py`` (mmengine runs of the mmdet / mmseg configs: COCO bbox/segm mAP and
   mIoU from the packages' own metrics);
4. prints one table: model, backbone, init, GFLOPs at 384x640, train time, bbox mAP,
   mAP@0.5, segm mAP, mIoU (also written to ``<work-dir>/results.json`` and ``table.md``).

Runs go ``--jobs`` at a time, one torch thread each (fastest on a busy 2-core machine).
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time
from collections import deque
from typing import Dict, List, NamedTuple, Optional

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

from levit_tools.cli import check_output_dir, run_cli  # noqa: E402

DET = osp.join(REPO, 'configs', 'mmdet')
SEG = osp.join(REPO, 'configs', 'mmseg')
FLOPS_HW = (384, 640)


class Run(NamedTuple):
    name: str
    model: str
    backbone: str
    init: str  # 'digits' (from the classifier checkpoint) or 'scratch'
    config: str
    task: str  # 'det' or 'seg'


RUNS = [
    Run('retinanet_levit_digits', 'RetinaNet', 'LeViT-128S', 'digits',
        f'{DET}/retinanet_levit-128s_fpn_digit-scenes.py', 'det'),
    Run('retinanet_levit_scratch', 'RetinaNet', 'LeViT-128S', 'scratch',
        f'{DET}/retinanet_levit-128s_fpn_digit-scenes_scratch.py', 'det'),
    Run('retinanet_r18_scratch', 'RetinaNet', 'ResNet-18', 'scratch',
        f'{DET}/retinanet_r18_fpn_digit-scenes.py', 'det'),
    Run('mask-rcnn_levit_digits', 'Mask R-CNN', 'LeViT-128S', 'digits',
        f'{DET}/mask-rcnn_levit-128s_fpn_digit-scenes.py', 'det'),
    Run('fpn_levit_digits', 'Semantic FPN', 'LeViT-128S', 'digits',
        f'{SEG}/fpn_levit-128s_digit-scenes.py', 'seg'),
    Run('fpn_levit_scratch', 'Semantic FPN', 'LeViT-128S', 'scratch',
        f'{SEG}/fpn_levit-128s_digit-scenes_scratch.py', 'seg'),
]
# The same detector, its attention biases treated three ways (the first is RUNS[0]).
BIAS_RUNS = [
    Run('retinanet_levit_digits_bias-reinit', 'RetinaNet', 'LeViT-128S',
        'digits, biases new 40x40', f'{DET}/retinanet_levit-128s_fpn_digit-scenes_bias-reinit.py',
        'det'),
    Run('retinanet_levit_digits_bias-frozen', 'RetinaNet', 'LeViT-128S',
        'digits, biases frozen', f'{DET}/retinanet_levit-128s_fpn_digit-scenes_bias-frozen.py',
        'det'),
]
ALL_RUNS = {run.name: run for run in RUNS + BIAS_RUNS}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default=osp.join(REPO, 'work_dirs', 'dense_study'))
    parser.add_argument('--iters', type=int, default=120,
                        help='training iterations per model (default 120: the study in '
                        'about 30 minutes on 2 cores; 0: each config\'s own schedule)')
    parser.add_argument('--train-images', type=int, default=600)
    parser.add_argument('--val-images', type=int, default=150)
    parser.add_argument('--canvas', nargs='+', default=None,
                        help='canvas sizes HxW for the dataset (default 384x640 640x384)')
    parser.add_argument('--digit-px', type=int, nargs=2, default=(24, 96))
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--classifier-epochs', type=int, default=10,
                        help='epochs of the 64 px LeViT-128S digits classifier')
    parser.add_argument('--classifier-checkpoint',
                        help='use this LeViT-128S classifier checkpoint instead of training one')
    parser.add_argument('--only', nargs='+', choices=sorted(ALL_RUNS),
                        help='run only these models')
    parser.add_argument('--bias-study', action='store_true',
                        help='also train the detector with re-initialised / frozen biases')
    parser.add_argument('--batch-size', type=int, default=None)
    parser.add_argument('--jobs', type=int, default=2, help='runs at a time')
    parser.add_argument('--threads', type=int, default=1, help='torch threads per run')
    parser.add_argument('--no-flops', action='store_true', help='skip the GFLOP counts')
    parser.add_argument('--cfg-options', nargs='+', default=[], metavar='KEY=VALUE',
                        help='passed to every tools/train.py and tools/test.py run')
    return parser.parse_args(argv)


# ---------------------------------------------------------------- stages
def make_data(args, root: str) -> dict:
    from levit_tools.digit_scenes import DEFAULT_CANVASES, write_dataset
    canvases = DEFAULT_CANVASES
    if args.canvas:
        canvases = [tuple(int(v) for v in c.lower().split('x')) for c in args.canvas]
    return write_dataset(root, args.train_images, args.val_images, args.seed, canvases,
                         tuple(args.digit_px))


def classifier_checkpoint(args, work: str, env: dict) -> dict:
    """The 64 px LeViT-128S digits classifier (no teacher), trained once and cached."""
    if args.classifier_checkpoint:
        if not osp.isfile(args.classifier_checkpoint):
            raise FileNotFoundError(
                f'--classifier-checkpoint {args.classifier_checkpoint!r} does not exist.')
        return dict(checkpoint=osp.abspath(args.classifier_checkpoint), top1=None,
                    seconds=0.0, cached=True)
    from levit_tools import digits
    folder = osp.join(work, 'digits_classifier')
    out = osp.join(folder, 'levit-128s_digits.pth')
    stamp = osp.join(folder, 'classifier.json')
    want = dict(epochs=args.classifier_epochs, seed=args.seed)
    if osp.isfile(out) and osp.isfile(stamp):
        with open(stamp) as f:
            info = json.load(f)
        if info.get('want') == want:
            return dict(info, cached=True)
    data = osp.join(work, 'digits_64px')
    digits.write_digits_folder(data, 64, seed=args.seed)
    seconds = digits.train(
        digits.BASELINE_CFG, osp.join(folder, 'train'), data, args.classifier_epochs,
        [f'randomness.seed={args.seed}'], env,
        f'digits classifier: LeViT-128S at 64 px, {args.classifier_epochs} epochs')
    top1 = digits.final_val_top1(osp.join(folder, 'train'))
    digits.export_weights(digits.last_checkpoint(osp.join(folder, 'train')), out)
    info = dict(want=want, checkpoint=out, top1=top1, seconds=seconds)
    with open(stamp, 'w') as f:
        json.dump(info, f)
    return dict(info, cached=False)


def data_options(run: Run, data: str, split: str) -> List[str]:
    """Point one loader (``train`` or ``test``) of a config at the study's dataset."""
    root = data.rstrip('/') + '/'
    opts = [f'{split}_dataloader.dataset.data_root={root}']
    if run.task == 'det' and split == 'test':
        opts.append(f'test_evaluator.ann_file={root}annotations/instances_val.json')
    return opts


def train_options(run: Run, args, data: str, checkpoint: str) -> List[str]:
    # --no-validate: the final checkpoint is evaluated once, by tools/test.py
    opts = data_options(run, data, 'train')
    if run.init.startswith('digits'):
        opts.append(f'model.backbone.init_cfg.checkpoint={checkpoint}')
    if args.iters:
        n = args.iters
        opts += [f'train_cfg.max_iters={n}', f'train_cfg.val_interval={n}',
                 f'param_scheduler.1.end={n}', f'default_hooks.checkpoint.interval={n}',
                 f'param_scheduler.0.end={max(1, min(50, n // 4))}']
    if args.batch_size:
        opts.append(f'train_dataloader.batch_size={args.batch_size}')
    return opts + list(args.cfg_options)


class Job:
    """One model: ``tools/train.py`` then ``tools/test.py`` on its last checkpoint."""

    def __init__(self, run: Run, args, data: str, checkpoint: str, work: str, env: dict):
        self.run, self.env = run, env
        self.dir = osp.join(work, run.name)
        os.makedirs(self.dir, exist_ok=True)
        self.log_path = osp.join(self.dir, 'study.log')
        self.metrics_path = osp.join(self.dir, 'metrics.json')
        self.train_cmd = ['tools/train.py', run.config, '--work-dir', self.dir,
                          '--no-validate', '--cfg-options'] + train_options(
                              run, args, data, checkpoint)
        self.test_opts = data_options(run, data, 'test') + list(args.cfg_options)
        self.stage, self.proc, self.log = None, None, None
        self.train_seconds = None
        self.failed = None

    def start(self):
        self.log = open(self.log_path, 'w')
        self._launch('train', self.train_cmd)

    def _launch(self, stage, cmd):
        self.stage, self.started = stage, time.time()
        self.log.write(f'$ python {" ".join(cmd)}\n')
        self.log.flush()
        self.proc = subprocess.Popen([sys.executable] + cmd, cwd=REPO, env=self.env,
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def poll(self) -> bool:
        """Advance; True once finished (or failed)."""
        if self.proc.poll() is None:
            return False
        if self.proc.returncode != 0:
            self.failed = f'{self.stage} failed (exit {self.proc.returncode}); see ' \
                          f'{self.log_path}'
            self.log.close()
            return True
        if self.stage == 'train':
            self.train_seconds = time.time() - self.started
            with open(osp.join(self.dir, 'last_checkpoint')) as f:
                ckpt = f.read().strip()
            self._launch('test', ['tools/test.py', self.run.config, ckpt, '--work-dir',
                                  osp.join(self.dir, 'test'), '--out', self.metrics_path,
                                  '--cfg-options'] + self.test_opts)
            return False
        self.log.close()
        return True

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def run_jobs(jobs: List[Job], parallel: int) -> None:
    pending, active = deque(jobs), []
    try:
        while pending or active:
            while pending and len(active) < parallel:
                job = pending.popleft()
                print(f'  start {job.run.name}', flush=True)
                job.start()
                active.append(job)
            time.sleep(2)
            for job in list(active):
                if job.poll():
                    active.remove(job)
                    status = job.failed or f'done, trained in {job.train_seconds:.0f} s'
                    print(f'  {job.run.name}: {status}', flush=True)
    finally:
        for job in active:
            job.kill()


def loss_curve(work_dir: str) -> List[float]:
    """The ``loss`` values the run logged (mmengine's ``vis_data/scalars.json``)."""
    runs = sorted(d for d in os.listdir(work_dir) if d[:8].isdigit() and
                  osp.isfile(osp.join(work_dir, d, 'vis_data', 'scalars.json')))
    losses = []
    if runs:
        with open(osp.join(work_dir, runs[-1], 'vis_data', 'scalars.json')) as f:
            for line in f:
                record = json.loads(line)
                if 'loss' in record:
                    losses.append(record['loss'])
    return losses


def complexity(run: Run, hw=FLOPS_HW) -> Dict[str, float]:
    """Backbone and whole-model GFLOPs (multiply-adds, mmengine's counter) at ``hw``."""
    import torch
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmengine.utils import import_modules_from_strings

    from levit_tools.analysis import count_flops
    cfg = Config.fromfile(run.config)
    import_modules_from_strings(**cfg.custom_imports)
    cfg.model.backbone.init_cfg = None
    scope = 'mmdet' if run.task == 'det' else 'mmseg'
    with DefaultScope.overwrite_default_scope(scope):
        if scope == 'mmdet':
            from mmdet.registry import MODELS
        else:
            from mmseg.registry import MODELS
        cfg.model.pop('pretrained', None)
        model = MODELS.build(cfg.model)
        shape = (1, 3) + tuple(hw)
        with torch.no_grad():
            backbone = count_flops(model.backbone, shape)
            total = count_flops(model, shape, forward_fn=_whole_forward)
    return dict(backbone_gflops=backbone / 1e9, gflops=total / 1e9)


def _whole_forward(model, x):
    """Backbone, neck and heads without post-processing (``_forward``); a two-stage
    detector's RPN needs the image shape from a data sample."""
    import inspect
    if 'batch_data_samples' not in inspect.signature(model._forward).parameters:
        return model._forward(x)  # mmseg
    from mmdet.structures import DetDataSample
    hw = tuple(x.shape[-2:])
    sample = DetDataSample(metainfo=dict(img_shape=hw, ori_shape=hw, pad_shape=hw,
                                         batch_input_shape=hw, scale_factor=(1., 1.)))
    return model._forward(x, [sample])


def result_row(job: Job, flops: Optional[dict]) -> dict:
    run = job.run
    row = dict(name=run.name, model=run.model, backbone=run.backbone, init=run.init,
               train_s=job.train_seconds, error=job.failed)
    if flops:
        row.update(flops)
    losses = loss_curve(job.dir)
    if losses:
        k = max(1, min(5, len(losses) // 3))
        row['loss_first'] = sum(losses[:k]) / k
        row['loss_last'] = sum(losses[-k:]) / k
    if osp.isfile(job.metrics_path):
        with open(job.metrics_path) as f:
            metrics = json.load(f)
        row['metrics'] = metrics
        for key, name in (('coco/bbox_mAP', 'bbox_mAP'), ('coco/bbox_mAP_50', 'bbox_mAP_50'),
                          ('coco/segm_mAP', 'segm_mAP')):
            if key in metrics:
                row[name] = float(metrics[key])
        if 'mIoU' in metrics:
            row['mIoU'] = float(metrics['mIoU']) / 100.0  # mmseg reports percent
    return row


def format_table(rows: List[dict]) -> str:
    head = ('| model | backbone | init | GFLOPs backbone / total (384x640) | train time | '
            'bbox mAP | mAP@0.5 | segm mAP | mIoU |')
    lines = [head, '|' + '---|' * 9]

    def fig(value, fmt='{:.3f}'):
        return '-' if value is None else fmt.format(value)

    for r in rows:
        flops = (f'{r["backbone_gflops"]:.2f} / {r["gflops"]:.2f}'
                 if 'gflops' in r else '-')
        train = fig(r.get('train_s'), '{:.0f} s')
        if r.get('error'):
            train = 'failed'
        lines.append(f'| {r["model"]} | {r["backbone"]} | {r["init"]} | {flops} | {train} | '
                     f'{fig(r.get("bbox_mAP"))} | {fig(r.get("bbox_mAP_50"))} | '
                     f'{fig(r.get("segm_mAP"))} | {fig(r.get("mIoU"))} |')
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    check_output_dir(args.work_dir)
    if args.jobs < 1 or args.threads < 1:
        raise ValueError('--jobs and --threads must be at least 1.')
    if args.iters == 1 or args.iters < 0:
        raise ValueError(f'--iters {args.iters}: need at least 2 iterations (or 0).')
    start = time.time()
    work = osp.abspath(args.work_dir)
    os.makedirs(work, exist_ok=True)
    threads = str(args.threads)
    env = dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)

    data = osp.join(work, 'data')
    meta = make_data(args, data)
    for split, info in meta['splits'].items():
        print(f'digit scenes {split}: {info["images"]} images, {info["instances"]} digits '
              f'from {len(info["scans"])} scans', flush=True)
    shared = set(meta['splits']['train']['scans']) & set(meta['splits']['val']['scans'])
    if shared:  # the writer guarantees this; say so loudly if it ever breaks
        raise ValueError(f'{len(shared)} scans appear in both splits.')

    runs = RUNS + (BIAS_RUNS if args.bias_study else [])
    if args.only:
        runs = [ALL_RUNS[name] for name in args.only]
    classifier = {}
    if any(run.init.startswith('digits') for run in runs):
        classifier = classifier_checkpoint(args, work, env)
        top1 = classifier.get('top1')
        print(f'digits classifier: {classifier["checkpoint"]}'
              + (f' (val top-1 {top1:.2f}%)' if top1 is not None else '')
              + (' [cached]' if classifier.get('cached') else ''), flush=True)

    jobs = [Job(run, args, data, classifier.get('checkpoint'), work, env) for run in runs]
    print(f'\n=== training and testing {len(jobs)} models, {args.jobs} at a time '
          f'(logs in {work}/<model>/study.log)', flush=True)
    run_jobs(jobs, args.jobs)

    rows = []
    for job in jobs:
        flops = None
        if not args.no_flops:
            flops = complexity(job.run)
        rows.append(result_row(job, flops))
    table = format_table(rows)
    total = time.time() - start
    summary = dict(rows=rows, classifier=classifier, data=meta['params'],
                   iters=args.iters, seconds=total)
    with open(osp.join(work, 'results.json'), 'w') as f:
        json.dump(summary, f, indent=1)
    with open(osp.join(work, 'table.md'), 'w') as f:
        f.write(table + '\n')
    print('\n=== digit scenes: validation split, ' f'{meta["splits"]["val"]["images"]} images')
    print(table)
    print(f'total wall time {total / 60:.1f} min')
    failed = [job.run.name for job in jobs if job.failed]
    if failed:
        raise SystemExit(f'error: {", ".join(failed)} failed; see their study.log')
    return summary


if __name__ == '__main__':
    run_cli(main)
