"""LeViT detection and segmentation learning on real data, offline: the digit-scenes study.

    python tools/dense_study.py --results          # everything, and docs/results/dense_study.md
    python tools/dense_study.py --only retinanet_levit_agnostic --iters 200

1. writes the digit scenes (256x256, 1-3 digits of 48-112 px, 600 train / 150 val) and
   a folder of 128 px digit crops drawn the same way (:mod:`levit_tools.digit_scenes`);
2. pretrains LeViT-128S and ResNet-18 classifiers side by side, on the clean 64 px digits
   and then on the crops (cached: a later study reuses them);
3. trains every run with ``tools/train.py`` (the shipped mmdet / mmseg configs, validated
   every 200 iterations: the learning curve; mmdet's COCO mAP and mmseg's mIoU), two at a
   time at one torch thread each, recording wall and CPU time;
4. prints the tables (and writes them with ``--results``; also ``<work-dir>/results.json``).
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

from levit_mm.fileio import write_text_atomic  # noqa: E402
from levit_tools.cli import check_output_dir, run_cli  # noqa: E402
from levit_tools.dense_study.runs import ALL_RUNS, RUNS  # noqa: E402
from levit_tools.results import add_results_arg, report  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default=osp.join(REPO, 'work_dirs', 'dense_study'))
    parser.add_argument('--only', nargs='+', choices=sorted(ALL_RUNS), metavar='RUN',
                        help=f'run only these (of {", ".join(ALL_RUNS)})')
    parser.add_argument('--iters', type=int, default=0,
                        help='training iterations per run (default: the configs\' own)')
    parser.add_argument('--val-interval', type=int, default=200,
                        help='validate every this many iterations (with --iters)')
    parser.add_argument('--batch-size', type=int, default=None,
                        help='images per training batch (default: the configs\' own)')
    parser.add_argument('--train-images', type=int, default=600)
    parser.add_argument('--val-images', type=int, default=150)
    parser.add_argument('--crops', type=int, nargs=2, default=(3000, 500),
                        metavar=('TRAIN', 'VAL'), help='digit crops for the pretraining')
    parser.add_argument('--pretrain-epochs', type=int, nargs=2, default=(10, 8),
                        metavar=('DIGITS', 'CROPS'),
                        help='epochs on the clean 64 px digits, then on the crops')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--jobs', type=int, default=2, help='runs side by side')
    parser.add_argument('--threads', type=int, default=1, help='torch threads per run')
    parser.add_argument('--no-flops', action='store_true', help='skip the GFLOP counts')
    parser.add_argument('--cfg-options', nargs='+', default=[], metavar='KEY=VALUE',
                        help='passed to every run\'s tools/train.py')
    add_results_arg(parser, 'dense_study')
    return parser.parse_args(argv)


def check_args(args) -> None:
    if args.jobs < 1 or args.threads < 1:
        raise ValueError('--jobs and --threads must be at least 1.')
    if args.iters < 0 or args.iters == 1:
        raise ValueError(f'--iters {args.iters}: need at least 2 iterations (or 0).')
    if args.iters and not 0 < args.val_interval <= args.iters:
        raise ValueError(f'--val-interval {args.val_interval}: need 1 .. --iters.')
    if args.batch_size is not None and args.batch_size < 1:
        raise ValueError(f'--batch-size {args.batch_size}: need at least 1.')


def make_data(args, work: str):
    """The scenes, and the pretraining's digits and crops, written (or reused) under
    ``work``; returns the scenes' folder and what the pretraining needs."""
    from levit_tools.digit_scenes import write_crops, write_dataset
    from levit_tools.digits import write_digits_folder
    data = osp.join(work, 'data')
    meta = write_dataset(data, args.train_images, args.val_images, args.seed)
    for split, info in meta['splits'].items():
        print(f'digit scenes {split}: {info["images"]} images, {info["instances"]} digits '
              f'from {len(info["scans"])} scans', flush=True)
    folders = dict(digits=osp.join(work, 'digits_64px'), crops=osp.join(work, 'crops'))
    digits_meta = write_digits_folder(folders['digits'], 64, seed=args.seed)
    crops_meta = write_crops(folders['crops'], *args.crops, seed=args.seed)
    print(f'pretraining: {digits_meta["train"]} + {digits_meta["val"]} clean digits, '
          f'{crops_meta["images"]["train"]} + {crops_meta["images"]["val"]} digit crops',
          flush=True)
    return data, dict(folders=folders, want=dict(digits=digits_meta,
                                                 crops=crops_meta['params']))


def pretrained(args, runs, work: str, pretraining: dict, env: dict) -> dict:
    from levit_tools.dense_study.pretrain import CLASSIFIERS, STAGES, pretrain
    keys = [key for key in CLASSIFIERS if any(run.pretrained == key for run in runs)]
    print(f'\n=== pretraining: {", ".join(keys) or "none needed"}', flush=True)
    found = pretrain(keys, pretraining['folders'], pretraining['want'],
                     osp.join(work, 'pretrain'), dict(zip(STAGES, args.pretrain_epochs)),
                     args.seed, env, args.jobs)
    for key, info in found.items():
        print(f'  {CLASSIFIERS[key]["label"]}: val top-1 {info["top1"]["crops"]:.1f}% '
              'on crops' + (' [cached]' if info['cached'] else ''), flush=True)
    return found


def train_all(args, runs, work: str, data: str, classifiers: dict, env: dict) -> list:
    from levit_tools.dense_study.flops import complexity
    from levit_tools.dense_study.jobs import run_jobs
    from levit_tools.dense_study.study import result_row, resolved_schedule, study_job
    checkpoints = {key: info['checkpoint'] for key, info in classifiers.items()}
    jobs = [study_job(run, work, data, checkpoints, args.iters, args.val_interval,
                      args.batch_size, args.cfg_options, env) for run in runs]
    print(f'\n=== training {len(jobs)} runs, {args.jobs} at a time '
          f'(logs: {work}/<run>/study.log)', flush=True)
    run_jobs(jobs, args.jobs)
    return [result_row(run, job, resolved_schedule(run, args.iters, args.batch_size),
                       None if args.no_flops else complexity(run))
            for run, job in zip(runs, jobs)]


def report_lines(rows, classifiers, meta_line: str) -> list:
    from levit_tools.dense_study import table
    from levit_tools.dense_study.pretrain import CLASSIFIERS
    lines = [meta_line, ''] + table.results_table(rows) + ['', '### Learning curves', '']
    lines += table.curve_table(rows) + [''] + table.speed_lines(rows)
    lines += ['', '### Pretraining (once; later studies reuse it)', '']
    for key, info in classifiers.items():
        lines.append(f'- {CLASSIFIERS[key]["label"]}: val top-1 {info["top1"]["digits"]:.1f}%'
                     f' on the clean digits, then {info["top1"]["crops"]:.1f}% on the crops; '
                     f'{info["wall_s"]:.0f} s wall, {info["cpu_s"]:.0f} s CPU')
    return lines


def main(argv=None):
    args = parse_args(argv)
    check_args(args)
    check_output_dir(args.work_dir)
    start = time.time()
    work = osp.abspath(args.work_dir)
    os.makedirs(work, exist_ok=True)
    threads = str(args.threads)
    env = dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    runs = [ALL_RUNS[name] for name in args.only] if args.only else RUNS
    data, pretraining = make_data(args, work)
    classifiers = pretrained(args, runs, work, pretraining, env)
    rows = train_all(args, runs, work, data, classifiers, env)
    total = time.time() - start
    write_text_atomic(osp.join(work, 'results.json'), json.dumps(
        dict(rows=rows, classifiers=classifiers, seconds=total), indent=1))
    meta_line = (f'Validation split ({args.val_images} scenes of held-out scans); '
                 f'{args.jobs} runs side by side at {args.threads} thread(s) each; whole '
                 f'study {total / 60:.1f} min wall.')
    report(report_lines(rows, classifiers, meta_line), args.results,
           'Digit scenes: LeViT-128S detection and segmentation on CPU')
    failed = [row['name'] for row in rows if row['error']]
    if failed:
        raise SystemExit(f'error: {", ".join(failed)} failed; see their study.log')
    return rows


if __name__ == '__main__':
    run_cli(main)
