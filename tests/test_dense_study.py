"""The digit-scenes study (``tools/dense_study.py``), small: its scheduler times children
by wall and CPU clock and leaves none behind, its learning curves sum the logged iteration
times, its config patcher points the shipped configs at another folder, and one short
training run on a few scenes learns what no untrained or background-only model can."""
import pytest
import torch
from conftest import REPO

from levit_tools.dense_study import curves, jobs, options, runs
from levit_tools.digit_scenes import write_dataset

BUSY = 'import time\nt = time.process_time()\nwhile time.process_time() - t < {}: pass\n'


def test_jobs_run_side_by_side_with_cpu_time(tmp_path):
    """Two children that each burn ~0.3 s of CPU: both finish, each with its own CPU time
    (not its waiting), and a failing one is reported with its log."""
    made = [jobs.Job(name, ['-c', code], str(tmp_path / name / 'log'), REPO, {})
            for name, code in (('busy', BUSY.format(0.3)), ('fails', 'raise SystemExit(3)'))]
    jobs.run_jobs(made, parallel=2, poll_s=0.05)
    busy, fails = made
    assert busy.error is None and 0.25 < busy.cpu_s < busy.wall_s + 0.1
    assert 'exit code 3' in fails.error and fails.error.endswith('log')
    assert (tmp_path / 'busy' / 'log').read_text().startswith('$ python -c')


def test_interrupted_jobs_are_killed(tmp_path, monkeypatch):
    job = jobs.Job('sleeper', ['-c', 'import time; time.sleep(60)'],
                   str(tmp_path / 'log'), REPO, {})
    calls = []

    def interrupt(_):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(jobs.time, 'sleep', interrupt)
    with pytest.raises(KeyboardInterrupt):
        jobs.run_jobs([job], parallel=1)
    assert job.proc.returncode is not None
    with pytest.raises(ChildProcessError):
        import os
        os.waitpid(job.proc.pid, os.WNOHANG)  # reaped, not a zombie left behind


def test_learning_curve_sums_iteration_times():
    records = [dict(loss=2.0, iter=10, time=0.5), dict(loss=1.5, iter=20, time=0.7),
               {'coco/bbox_mAP_50': 0.4, 'coco/bbox_mAP': 0.2, 'step': 20, 'time': 9.0},
               dict(loss=1.0, iter=30, time=0.6), {'mIoU': 55.0, 'step': 30, 'time': 3.0}]
    curve = curves.learning_curve(records)
    assert [p['iter'] for p in curve] == [20, 30]
    # validation time (9 s, 3 s) is not training time
    assert curve[0]['train_s'] == pytest.approx(10 * 0.5 + 10 * 0.7)
    assert curve[1]['train_s'] == pytest.approx(10 * 0.5 + 10 * 0.7 + 10 * 0.6)
    assert curve[0]['coco/bbox_mAP_50'] == 0.4 and curve[1]['mIoU'] == pytest.approx(0.55)
    assert curves.losses(records) == [2.0, 1.5, 1.0]


def test_data_options_keep_each_evaluator_file_name():
    by_name = runs.ALL_RUNS
    agnostic = options.data_options(by_name['retinanet_levit_agnostic'], '/d')
    assert 'val_evaluator.ann_file=/d/annotations/instances_val_agnostic.json' in agnostic
    assert 'train_dataloader.dataset.data_root=/d/' in agnostic
    ten = options.data_options(by_name['retinanet_r18'], '/d')
    assert 'test_evaluator.ann_file=/d/annotations/instances_val.json' in ten
    seg = options.data_options(by_name['fpn_levit'], '/d')
    assert not any('evaluator' in o for o in seg)


def test_table_says_when_levit_reaches_resnet18():
    """The speed line finds LeViT's first validation at ResNet-18's final metric and
    states it as a fraction of ResNet-18's training time; failed runs stay in the table."""
    from levit_tools.dense_study import table

    def row(backbone, points, error=None):
        return dict(task='10 digits', model='RetinaNet', backbone=backbone, iters=200,
                    batch=4, wall_s=100., cpu_s=90., error=error,
                    metric='coco/bbox_mAP_50',
                    curve=[{'iter': i, 'train_s': s, 'coco/bbox_mAP_50': m}
                           for i, s, m in points])
    r18 = row('ResNet-18', [(100, 80., 0.2), (200, 160., 0.4)])
    levit = row('LeViT-128S', [(100, 30., 0.3), (200, 60., 0.5)])
    [line] = table.speed_lines([levit, r18])
    assert 'iteration 200 after 60 s' in line and f'{60 / 160:.2f}x' in line
    lines = table.results_table([levit, dict(r18, error='exit code 1', curve=[])])
    assert len(lines) == 4 and 'failed' in lines[-1] and '0.500' in lines[2]


@pytest.mark.slow  # ~70 s of one core
def test_short_training_run_segments_digits_on_its_scenes(tmp_path):
    """The shipped class-agnostic Semantic FPN, from a random backbone, 120 steps on eight
    128x128 scenes, then evaluated (eval mode: the BN statistics it will be used with) on
    those scenes. Background IoU is at most 1, so mIoU >= 0.65 needs a digit IoU >= 0.3;
    a background-only model scores below 0.5, an all-digit one the ink fraction (~0.06)."""
    from mmengine.config import Config
    from mmengine.runner import Runner
    root = str(tmp_path / 'scenes') + '/'
    write_dataset(root, num_train=8, num_val=1, seed=0, canvases=((128, 128), ),
                  size_range=(40, 60), num_digits=(1, 2))
    cfg = Config.fromfile(f'{runs.SEG}/fpn_levit-128s_digit-scenes-agnostic.py')
    cfg.work_dir = str(tmp_path / 'work')
    cfg.model.backbone.update(init_cfg=None, drop_path_rate=0.)
    for split in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[split].dataset.update(data_root=root, data_prefix=dict(
            img_path='images/train', seg_map_path='seg/train'))
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=120, val_interval=120)
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=10),
        dict(type='CosineAnnealingLR', eta_min_ratio=0.01, by_epoch=False, end=120)]
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small steps: a second thread mostly waits, more on a busy CPU
    try:
        runner = Runner.from_cfg(cfg)
        runner.train()
        assert runner.val()['mIoU'] >= 65.0
    finally:
        torch.set_num_threads(threads)
