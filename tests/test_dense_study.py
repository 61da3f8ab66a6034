"""The dense study's pipeline, small: digit scenes made, a LeViT-128S classifier checkpoint
as the backbone's init (bias tables for a 64 px grid), RetinaNet and semantic FPN trained
for tens of iterations with tools/train.py (the loss falls), their checkpoints written and
reloaded strictly by tools/test.py, and mmdet's / mmseg's own metrics computed.  The full
study is ``python tools/dense_study.py`` (about 30 minutes)."""
import json
import os.path as osp

import pytest
import torch
from conftest import run_py
from tool_loading import load_tool

from levit_tools.digit_scenes import write_dataset


def classifier_checkpoint(path):
    """A LeViT-128S classifier as tools/digits_demo.py exports it (64 px tables)."""
    from mmpretrain.registry import MODELS

    import levit_mm  # noqa: F401
    torch.manual_seed(0)
    backbone = MODELS.build(dict(type='LeViT', arch='128s', img_size=64))
    state = {'backbone.' + k: v for k, v in backbone.state_dict().items()}
    torch.save({'state_dict': state, 'meta': {}}, path)
    return state


@pytest.mark.slow
def test_small_study_learns_and_evaluates(tmp_path):
    work = tmp_path / 'study'
    ckpt = tmp_path / 'levit-128s_digits.pth'
    state = classifier_checkpoint(ckpt)
    assert state['backbone.stages.0.0.block.attention_biases'].shape == (4, 16)  # 4x4 grid
    result = run_py(['tools/dense_study.py', '--work-dir', str(work), '--train-images', '8',
                     '--val-images', '4', '--canvas', '128x192', '192x128',
                     '--digit-px', '20', '48', '--iters', '20', '--batch-size', '2',
                     '--classifier-checkpoint', str(ckpt), '--no-flops',
                     '--only', 'retinanet_levit_digits', 'fpn_levit_digits',
                     # keep every box: after 20 iterations no score reaches the 0.05
                     # default, and COCO metrics of no boxes are not computed
                     '--cfg-options', 'model.test_cfg.score_thr=0.0'],
                    timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with open(work / 'results.json') as f:
        rows = {row['name']: row for row in json.load(f)['rows']}
    for name, metric in (('retinanet_levit_digits', 'coco/bbox_mAP_50'),
                         ('fpn_levit_digits', 'mIoU')):
        row = rows[name]
        assert row['error'] is None
        # learns: on 8 images, 20 iterations take the loss well down
        assert row['loss_last'] < 0.9 * row['loss_first'], row
        # a checkpoint was written, and tools/test.py reloaded it strictly and evaluated
        with open(work / name / 'last_checkpoint') as f:
            assert osp.isfile(f.read().strip())
        assert metric in row['metrics'] and row['metrics'][metric] >= 0
        assert row['train_s'] > 0
    assert 0 <= rows['retinanet_levit_digits']['bbox_mAP_50'] <= 1
    assert 0 <= rows['fpn_levit_digits']['mIoU'] <= 1
    table = (work / 'table.md').read_text()
    assert 'RetinaNet' in table and 'Semantic FPN' in table
    assert 'Semantic FPN' in result.stdout  # the table is printed


def test_backbone_flops_levit_below_resnet18():
    study = load_tool('tools/dense_study.py')
    runs = {run.name: run for run in study.RUNS}
    levit = study.complexity(runs['retinanet_levit_digits'])
    r18 = study.complexity(runs['retinanet_r18_scratch'])
    # LeViT-128S at 384x640 (mmengine's counter): ~1.9 GMAC; ResNet-18 ~8.5
    assert 1.5 < levit['backbone_gflops'] < 2.5
    assert r18['backbone_gflops'] > 3 * levit['backbone_gflops']
    # same neck and head: the difference is the backbone's
    assert levit['gflops'] - levit['backbone_gflops'] == pytest.approx(
        r18['gflops'] - r18['backbone_gflops'], rel=0.25)


def test_bad_dataset_folder_stops_the_tools_with_one_line(tmp_path):
    """levit_mm's tools/train.py on a digit-scenes config whose folder is missing or holds
    a broken annotation file: exit 2 and one `error:` line, no traceback."""
    root = tmp_path / 'scenes'
    write_dataset(str(root), num_train=2, num_val=1, canvases=((128, 192), ),
                  size_range=(16, 32))
    (root / 'annotations' / 'instances_train.json').write_text('{"images": [')
    config = 'configs/mmdet/retinanet_levit-128s_fpn_digit-scenes_scratch.py'
    for folder, expected in ((tmp_path / 'nowhere', 'does not exist'),
                             (root, 'not valid JSON')):
        result = run_py(['tools/train.py', config, '--work-dir', str(tmp_path / 'wd'),
                         '--cfg-options', f'train_dataloader.dataset.data_root={folder}/'],
                        timeout=300)
        assert result.returncode == 2, result.stderr[-2000:]
        lines = result.stderr.strip().splitlines()
        assert lines[-1].startswith('error:') and expected in lines[-1], lines[-5:]
        assert 'Traceback' not in result.stderr
