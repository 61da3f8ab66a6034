"""The digit-scenes dataset tool: what it writes is a correct detection / segmentation
dataset (boxes inside the image and equal to the masks' extents, masks the digits' own
ink, classes those of the scans, label maps that agree, splits disjoint by scan), and a
missing, empty or broken folder stops mmdet's and mmseg's datasets with one clear message."""
import glob
import json
import os.path as osp
import shutil

import numpy as np
import pytest
from PIL import Image
from tool_loading import load_tool, run_tool_cli

from levit_mm.datasets.digit_scenes import CLASSES, check_coco_split, check_seg_split
from levit_tools import digit_scenes as ds

CANVASES = ((96, 160), (160, 96))


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('scenes') / 'digit_scenes')
    meta = ds.write_dataset(root, num_train=12, num_val=6, seed=3, canvases=CANVASES,
                            size_range=(16, 40), num_digits=(3, 6))
    return root, meta


def load_coco(root, split):
    with open(osp.join(root, 'annotations', f'instances_{split}.json')) as f:
        return json.load(f)


def decode(segmentation):
    from pycocotools import mask as mask_utils
    rle = dict(segmentation, counts=segmentation['counts'].encode('ascii'))
    return mask_utils.decode(rle).astype(bool)


def test_boxes_masks_classes_and_label_maps(dataset):
    root, meta = dataset
    scans, labels = ds.load_scans()
    seen_sizes, cut_by_border = set(), 0
    for split in ('train', 'val'):
        coco = load_coco(root, split)
        assert [c['name'] for c in coco['categories']] == list(CLASSES)
        assert len(coco['images']) == meta['splits'][split]['images']
        by_image = {im['id']: [] for im in coco['images']}
        for ann in coco['annotations']:
            by_image[ann['image_id']].append(ann)
        for im in coco['images']:
            h, w = im['height'], im['width']
            seen_sizes.add((h, w))
            img = Image.open(osp.join(root, 'images', split, im['file_name']))
            assert img.size == (w, h) and img.mode == 'RGB'
            label_map = np.asarray(Image.open(
                osp.join(root, 'seg', split, im['file_name'].replace('.jpg', '.png'))))
            assert label_map.shape == (h, w)
            anns = by_image[im['id']]
            assert 3 <= len(anns) <= 6
            union = np.zeros((h, w), bool)
            for ann in anns:
                x, y, bw, bh = ann['bbox']
                # inside the image, not degenerate
                assert 0 <= x and 0 <= y and x + bw <= w and y + bh <= h and bw > 0 < bh
                mask = decode(ann['segmentation'])
                assert mask.shape == (h, w)
                assert not (union & mask).any(), 'instance masks overlap'
                union |= mask
                ys, xs = np.nonzero(mask)
                # the box is the mask's tight extent
                assert [xs.min(), ys.min(), xs.max() + 1 - xs.min(),
                        ys.max() + 1 - ys.min()] == [x, y, bw, bh]
                # a digit's ink, not its box: it fills only part of the box
                assert mask.sum() < 0.9 * bw * bh
                # the class is the scan's label, and the label map agrees with the mask
                assert ann['category_id'] == labels[ann['scan']] + 1
                assert (label_map[mask] == labels[ann['scan']] + 1).all()
                cut_by_border += x == 0 or y == 0 or x + bw == w or y + bh == h
            assert (label_map[~union] == 0).all()
    assert seen_sizes == set(CANVASES)
    assert cut_by_border > 0, 'no digit touches the border'


def test_class_agnostic_task_is_the_same_instances_as_one_class(dataset):
    """The agnostic COCO files hold the same instances under one 'digit' category, and
    mmseg's dataset given the classes (background, digit) maps every digit's ink to 1."""
    from mmengine.registry import DefaultScope

    import levit_mm.datasets.mmseg_digit_scenes  # noqa: F401
    root, _ = dataset
    ten, one = load_coco(root, 'val'), load_coco(root, 'val_agnostic')
    assert one['categories'] == [dict(id=1, name='digit')]
    assert one['images'] == ten['images']
    assert [dict(a, category_id=1) for a in ten['annotations']] == one['annotations']
    from mmseg.registry import DATASETS
    with DefaultScope.overwrite_default_scope('mmseg'):
        seg = DATASETS.build(dict(
            type='DigitScenesSegDataset', data_root=root,
            data_prefix=dict(img_path='images/val', seg_map_path='seg/val'),
            metainfo=dict(classes=('background', 'digit')),
            pipeline=[dict(type='LoadAnnotations')]))
        assert seg.metainfo['classes'] == ('background', 'digit')
        for i in range(2):
            item = seg[i]
            raw = np.asarray(Image.open(item['seg_map_path']))
            assert raw.max() > 1  # digit d is d + 1 on disk
            assert np.array_equal(item['gt_seg_map'], (raw > 0).astype(raw.dtype))


def test_crops_folder_one_digit_each(tmp_path):
    """The pretraining crops: a CustomDataset folder, px x px images, each holding one
    digit of the requested sizes, the class its folder; reused when asked again."""
    root = str(tmp_path / 'crops')
    meta = ds.write_crops(root, num_train=20, num_val=10, px=64, size_range=(24, 56),
                          seed=3)
    assert meta['images'] == {'train': 20, 'val': 10}
    for split, count in meta['images'].items():
        files = sorted(glob.glob(osp.join(root, split, '*', '*.jpg')))
        assert len(files) == count
        assert {osp.basename(osp.dirname(f)) for f in files} <= set(CLASSES)
        for f in files[:5]:
            img = np.asarray(Image.open(f))
            assert img.shape == (64, 64, 3)
    stamp = osp.getmtime(osp.join(root, 'meta.json'))
    ds.write_crops(root, num_train=20, num_val=10, px=64, size_range=(24, 56), seed=3)
    assert osp.getmtime(osp.join(root, 'meta.json')) == stamp
    with pytest.raises(ValueError, match='too small'):
        ds.write_crops(str(tmp_path / 'bad'), px=48, size_range=(24, 56))


def test_splits_disjoint_by_scan_and_match_the_classifier_split(dataset, tmp_path):
    root, meta = dataset
    used = {split: {a['scan'] for a in load_coco(root, split)['annotations']}
            for split in ('train', 'val')}
    assert used['train'] and used['val']
    assert not used['train'] & used['val']
    assert sorted(used['train']) == meta['splits']['train']['scans']
    # the val scans are those digits_demo holds out from the digits classifier (same seed)
    from levit_tools.digits import write_digits_folder
    split = write_digits_folder(str(tmp_path / 'digits'), 8, seed=3)
    held_out = {int(p.stem) for p in (tmp_path / 'digits' / 'val').glob('*/*.png')}
    assert len(held_out) == split['val']
    _, labels = ds.load_scans()
    train_pool, val_pool = ds.split_scans(labels, seed=3)
    assert set(val_pool.tolist()) == held_out
    assert used['val'] <= held_out and not used['train'] & held_out


def test_deterministic_and_reused(dataset, tmp_path):
    root, meta = dataset
    again = ds.write_dataset(str(tmp_path / 'again'), num_train=12, num_val=6, seed=3,
                             canvases=CANVASES, size_range=(16, 40), num_digits=(3, 6))
    assert again['digest'] == meta['digest']
    for name in ('000000.jpg', '000005.jpg'):
        a = np.asarray(Image.open(osp.join(root, 'images', 'train', name)))
        b = np.asarray(Image.open(str(tmp_path / 'again' / 'images' / 'train' / name)))
        assert np.array_equal(a, b)
    # same parameters: the folder is reused, not rewritten
    stamp = osp.getmtime(osp.join(root, 'meta.json'))
    ds.write_dataset(root, num_train=12, num_val=6, seed=3, canvases=CANVASES,
                     size_range=(16, 40), num_digits=(3, 6))
    assert osp.getmtime(osp.join(root, 'meta.json')) == stamp


def test_tool_command_line(tmp_path, capsys):
    tool = load_tool('tools/dataset_converters/make_digit_scenes.py')
    out = str(tmp_path / 'scenes')
    code, stdout, stderr = run_tool_cli(tool, ['--out', out, '--train', '3', '--val', '2',
                                               '--canvas', '128x192', '--digit-px', '16',
                                               '32'], capsys)
    assert code == 0, stderr
    assert 'train: 3 images' in stdout and 'val: 2 images' in stdout
    assert check_coco_split(osp.join(out, 'annotations', 'instances_val.json'),
                            osp.join(out, 'images', 'val')) == 2
    code, _, stderr = run_tool_cli(tool, ['--out', out, '--canvas', '100x20'], capsys)
    assert code == 2 and 'too small' in stderr
    code, _, stderr = run_tool_cli(tool, ['--out', out, '--digit-px', '40', '20'], capsys)
    assert code == 2 and stderr.startswith('error:') and 'exceeds' in stderr


def broken_copies(root, tmp_path):
    """(case, folder) pairs: missing, empty, and broken in three ways."""
    cases = {'missing': str(tmp_path / 'nowhere')}
    empty = tmp_path / 'empty'
    empty.mkdir()
    cases['empty'] = str(empty)
    for case, text in (('not json', '{"images": ['), ('empty file', ''),
                       ('no images key', '{"annotations": [], "categories": []}')):
        copy = tmp_path / case.replace(' ', '_')
        shutil.copytree(root, copy)
        (copy / 'annotations' / 'instances_val.json').write_text(text)
        cases[case] = str(copy)
    return cases


@pytest.mark.parametrize('task', ['det', 'seg'])
def test_bad_folders_give_one_clear_message(dataset, tmp_path, task):
    """Through the registered datasets (what the configs build), one readable error each,
    raised before pycocotools or mmengine meet the files."""
    from mmengine.registry import DefaultScope
    root, _ = dataset
    if task == 'det':
        import levit_mm.datasets.mmdet_digit_scenes  # noqa: F401
        from mmdet.registry import DATASETS
        scope = 'mmdet'
        build = dict(type='DigitScenesDataset', ann_file='annotations/instances_val.json',
                     data_prefix=dict(img='images/val/'), test_mode=True, pipeline=[])
    else:
        import levit_mm.datasets.mmseg_digit_scenes  # noqa: F401
        from mmseg.registry import DATASETS
        scope = 'mmseg'
        build = dict(type='DigitScenesSegDataset', pipeline=[],
                     data_prefix=dict(img_path='images/val', seg_map_path='seg/val'))
    with DefaultScope.overwrite_default_scope(scope):
        good = DATASETS.build(dict(build, data_root=root))
        assert len(good) == 6
        for case, folder in broken_copies(root, tmp_path).items():
            if task == 'seg' and case not in ('missing', 'empty'):
                continue  # the label-map folder does not read the json
            with pytest.raises((FileNotFoundError, ValueError)) as err:
                DATASETS.build(dict(build, data_root=folder))
            message = str(err.value)
            assert '\n' not in message, message
            if case == 'missing':
                assert 'does not exist' in message and 'make_digit_scenes.py' in message
            elif case == 'empty':
                assert 'missing' in message and 'make_digit_scenes.py' in message
            elif case in ('not json', 'empty file'):
                assert 'not valid JSON' in message
            else:
                assert '"images"' in message


def test_check_functions_name_the_problem(dataset, tmp_path):
    root, _ = dataset
    val = osp.join(root, 'images', 'val')
    ann = osp.join(root, 'annotations', 'instances_val.json')
    assert check_coco_split(ann, val) == 6
    assert check_seg_split(val, osp.join(root, 'seg', 'val')) == 6
    bad = tmp_path / 'bad'
    shutil.copytree(root, bad)
    coco = load_coco(root, 'val')
    (bad / 'images' / 'val' / coco['images'][0]['file_name']).unlink()
    with pytest.raises(FileNotFoundError, match='1 of the 6 images'):
        check_coco_split(str(bad / 'annotations' / 'instances_val.json'),
                         str(bad / 'images' / 'val'))
    (bad / 'annotations' / 'instances_val.json').write_text(json.dumps(
        dict(coco, categories=[dict(id=1, name='person')])))
    with pytest.raises(ValueError, match='categories'):
        check_coco_split(str(bad / 'annotations' / 'instances_val.json'))
    (bad / 'annotations' / 'instances_val.json').write_text(json.dumps(
        dict(coco, images=[])))
    with pytest.raises(ValueError, match='lists no images'):
        check_coco_split(str(bad / 'annotations' / 'instances_val.json'))
