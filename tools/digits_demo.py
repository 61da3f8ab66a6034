"""LeViT learns offline: DeiT hard distillation on scikit-learn's bundled digits.

    python tools/digits_demo.py              # teacher, then the distilled LeViT-128S student
    python tools/digits_demo.py --baseline   # also the same student without a teacher
    python tools/digits_demo.py --ablation --jobs 2 --results   # docs/results/digits.md

1. writes the 1,797 real 8x8 scans as a 64x64 px ``CustomDataset`` folder, split 80/20
   train/val per class (``<work-dir>/data/{train,val}/<digit>/*.png``);
2. trains a small ResNet teacher with ``tools/train.py``;
3. trains LeViT-128S with hard distillation from that teacher (``tools/train.py``), with
   the recipe's AGC and weight EMA unless ``--no-agc`` / ``--no-ema``;
4. evaluates the student with ``tools/test.py``;
5. with ``--baseline``, trains the same student without a teacher, for comparison; with
   ``--ablation``, both students with AGC + EMA, AGC alone and neither (six runs);
6. classifies a few held-out digits with the distilled student.

Every stage is an ordinary mmengine run (logs and checkpoints under ``--work-dir``).
``--eval-every N`` validates every N epochs (the EMA and the raw weights when the EMA is
on), so the summary shows the curve, not only the end.
"""
import argparse
import os
import os.path as osp
import sys
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)  # this checkout's levit_mm and levit_tools, as in tools/train.py

from levit_tools.cli import check_output_dir, run_cli  # noqa: E402
from levit_tools.digits import (STUDENT_CFG, TEACHER_CFG, export_weights,  # noqa: E402
                                last_checkpoint, run_logged, summary_lines,
                                train, train_students, val_curve, write_digits_folder)
from levit_tools.results import add_results_arg, report  # noqa: E402

SPLIT_SEED = 0  # the 80/20 split of the scans per class


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
    parser.add_argument('--no-ema', action='store_true',
                        help='train the students without the weight EMA')
    parser.add_argument('--no-agc', action='store_true',
                        help='train the students without adaptive gradient clipping')
    parser.add_argument('--ablation', action='store_true',
                        help='train both students (teacher, none) with AGC + EMA, AGC alone '
                        'and neither')
    parser.add_argument('--eval-every', type=positive, metavar='N',
                        help="validate the students every N epochs (default: the config's "
                        '5, or only at the end with --student-epochs)')
    parser.add_argument('--threads', type=positive, default=1,
                        help='torch threads per run (1 is fastest on a busy 2-core machine)')
    parser.add_argument('--jobs', type=positive, default=1,
                        help='student runs side by side (each with --threads threads)')
    parser.add_argument('--show', type=int, default=10, help='held-out digits to classify')
    parser.add_argument('--verbose', action='store_true',
                        help="show the training runs' whole output (config dump included)")
    add_results_arg(parser, 'digits')
    args = parser.parse_args(argv)
    if args.ablation and (args.no_ema or args.no_agc):
        parser.error('--ablation trains every combination of AGC and EMA; leave out '
                     '--no-ema and --no-agc')
    return args


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'{value} is not a positive number')
    return value


def student_variants(args) -> list:
    """``(distilled, ema, agc)`` of each student to train; the distilled one with the
    demo's switches first (it is the one exported, tested and shown)."""
    if args.ablation:
        return [(distilled, ema, agc) for distilled in (True, False)
                for agc, ema in ((True, True), (True, False), (False, False))]
    first = (True, not args.no_ema, not args.no_agc)
    return [first] + ([(False, ) + first[1:]] if args.baseline else [])


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


def teacher_run(args, work: str, data: str, env: dict) -> dict:
    """Train the teacher, or take ``--teacher-checkpoint``'s; its top-1 and epochs."""
    if args.teacher_checkpoint:
        last = val_curve(osp.dirname(osp.abspath(args.teacher_checkpoint)))[-1]
        return dict(checkpoint=args.teacher_checkpoint, seconds=None, top1=last['top1'],
                    epochs=last['epoch'])
    teacher_dir = osp.join(work, 'teacher')
    seconds = train(TEACHER_CFG, teacher_dir, data, args.teacher_epochs, [], env,
                    'teacher: ResNet-18 (half width) from scratch', args.verbose)
    last = val_curve(teacher_dir)[-1]
    return dict(checkpoint=last_checkpoint(teacher_dir), seconds=seconds, top1=last['top1'],
                epochs=last['epoch'])


def main(argv=None):
    args = parse_args(argv)
    check_output_dir(args.work_dir)
    start = time.time()
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    work = osp.abspath(args.work_dir)
    data = osp.join(work, 'data')
    split = write_digits_folder(data, args.px, seed=SPLIT_SEED)
    print(f'digits: {split["train"]} train / {split["val"]} val images at {args.px}px in {data}')

    teacher = teacher_run(args, work, data, env)
    students = train_students(student_variants(args), work, data, teacher['checkpoint'], env,
                              args.student_epochs, args.eval_every, args.jobs, args.verbose)
    shown = students[0]
    student_ckpt = export_weights(last_checkpoint(shown['work_dir']),
                                  osp.join(work, 'levit-128s_digits.pth'))
    run_logged(['tools/test.py', shown['cfg'], student_ckpt, '--work-dir',
                osp.join(work, 'student_test'), '--cfg-options', 'model.teacher=None',
                f'test_dataloader.dataset.data_root={data}'],
               'evaluate the student with tools/test.py', env, args.verbose)
    classify_held_out(STUDENT_CFG, student_ckpt, data, args.show)

    from mmengine.config import Config
    shipped = Config.fromfile(shown['cfg'])
    setting = (f'Seed {shipped.randomness.seed} (the configs\' `randomness.seed`; the 80/20 '
               f'split per class is drawn with seed {SPLIT_SEED}): {split["train"]} training / '
               f'{split["val"]} held-out scans at {args.px} px; {args.threads} torch thread(s) '
               f'per run, {args.jobs} run(s) side by side; wall time '
               f'{time.time() - start:.0f} s in all.')
    if args.student_epochs and args.student_epochs != shipped.train_cfg.max_epochs:
        setting += (f' A shortened run: the students trained {args.student_epochs} epochs '
                    f'(--student-epochs), not the configs\' {shipped.train_cfg.max_epochs}.')
    print(f'\n=== digits summary (val top-1 on {split["val"]} held-out images)')
    report(summary_lines(teacher, students, split, setting), args.results,
           'Digits: LeViT-128S distilled and from scratch, with and without AGC and EMA')
    return {run['name']: run['curve'][-1]['top1'] for run in students}


if __name__ == '__main__':
    run_cli(main)
