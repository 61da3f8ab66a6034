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
import os
import os.path as osp
import sys
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)  # this checkout's levit_mm and levit_tools, as in tools/train.py

from levit_tools.cli import check_output_dir, run_cli  # noqa: E402
from levit_tools.digits import (BASELINE_CFG, STUDENT_CFG, TEACHER_CFG,  # noqa: E402
                                export_weights, final_val_top1, last_checkpoint, run_logged,
                                train, write_digits_folder)


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
    check_output_dir(args.work_dir)
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
    times['test'] = run_logged(['tools/test.py', STUDENT_CFG, student_ckpt, '--work-dir',
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
    run_cli(main)
