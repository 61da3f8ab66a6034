"""An unreadable image in the data (issue 22): by default the run stops with one line naming
the file and how many images were done; ``--skip-bad-images`` evaluates the readable ones,
logs each skipped file, and the metrics give both counts.  ``import levit_mm`` leaves
mmcv's ``LoadImageFromFile`` as it is."""
import re

import numpy as np
import pytest
import torch
from conftest import REPO, randomize_
from PIL import Image
from tiny_training import CLASSES, write_config
from tool_loading import load_tool, run_tool_cli


@pytest.fixture(scope='module')
def folder(tmp_path_factory):
    """``data/{train,val}/<class>/*.jpg`` JPEGs, one val JPEG truncated to half its bytes,
    a tiny config and its checkpoint."""
    from mmengine.config import Config
    from mmpretrain.registry import MODELS
    root = tmp_path_factory.mktemp('bad_images')
    rng = np.random.default_rng(0)
    for split, count in (('train', 2), ('val', 3)):
        for label, name in enumerate(CLASSES):
            for i in range(count):
                arr = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
                arr[..., label] //= 4
                path = root / 'data' / split / name / f'{i}.jpg'
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(arr).save(path, quality=95)
    bad = root / 'data' / 'val' / 'b' / '1.jpg'
    bad.write_bytes(bad.read_bytes()[:bad.stat().st_size // 2])
    config = write_config(root / 'tiny.py', REPO, root / 'data', max_iters=2, ckpt_interval=2)
    model = randomize_(MODELS.build(Config.fromfile(config).model), seed=3)
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, root / 'tiny.pth')
    return dict(root=root, bad=str(bad), config=config, ckpt=str(root / 'tiny.pth'))


def val_paths(folder):
    """The val images in the order the test loop reads them."""
    from mmpretrain.datasets import CustomDataset
    dataset = CustomDataset(data_root=str(folder['root'] / 'data'), data_prefix='val')
    return [dataset.get_data_info(i)['img_path'] for i in range(len(dataset))]


def run_test(folder, capsys, *extra):
    test = load_tool('tools/test.py')
    return run_tool_cli(test, [folder['config'], folder['ckpt'], '--work-dir',
                               str(folder['root'] / 'work'), *extra], capsys)


def metrics(stdout):
    return {k: float(v) for k, v in re.findall(r'^([\w/]+): ([\d.]+)$', stdout, re.M)}


def test_test_tool_stops_at_an_unreadable_image(folder, capsys):
    code, _, stderr = run_test(folder, capsys)
    assert code == 2 and 'Traceback' not in stderr, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith('error:')]
    assert len(errors) == 1 and errors[0] == stderr.strip().splitlines()[-1]
    paths = val_paths(folder)
    done = paths.index(folder['bad'])  # batches of 2 in order: all images before it
    assert errors[0].startswith(f"error: cannot read image {folder['bad']!r}: the file is "
                                'truncated or corrupt')
    assert f'stopped after {done} of the {len(paths)} test images' in errors[0]
    assert '--skip-bad-images' in errors[0]


def top1_of_readable_images(folder):
    """The model's top-1 on the val images that are readable, computed here directly."""
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmpretrain.registry import DATASETS, MODELS
    cfg = Config.fromfile(folder['config'])
    cfg.model.data_preprocessor = cfg.data_preprocessor
    model = MODELS.build(cfg.model).eval()
    model.load_state_dict(torch.load(folder['ckpt'])['state_dict'])
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    good = [dataset[i] for i in range(len(dataset))
            if dataset.get_data_info(i)['img_path'] != folder['bad']]
    with torch.no_grad():
        batch = model.data_preprocessor(pseudo_collate(good))
        pred = model(batch['inputs'], mode='tensor').argmax(1)
    labels = torch.tensor([int(s['data_samples'].gt_label) for s in good])
    return 100 * (pred == labels).float().mean().item(), len(good)


def test_skip_bad_images_evaluates_the_readable_ones(folder, capsys):
    code, stdout, stderr = run_test(folder, capsys, '--skip-bad-images')
    assert code == 0, stderr[-3000:]
    assert f"skipped unreadable image {folder['bad']!r}: the file is truncated" in stdout
    got = metrics(stdout)
    top1, readable = top1_of_readable_images(folder)
    assert got['images/evaluated'] == readable == len(val_paths(folder)) - 1
    assert got['images/skipped'] == 1
    assert got['accuracy/top1'] == pytest.approx(top1, abs=1e-3)
    # the final metrics line of the run's log gives the denominator too
    assert re.search(r'Iter\(test\).*accuracy/top1: [\d.]+\s+images/evaluated: '
                     rf'{readable}\s+images/skipped: 1', stdout)


def test_guard_rewrites_classification_pipelines_only():
    from mmengine.config import Config

    from levit_mm.engine import guard_image_loading
    cfg = Config.fromfile(f'{REPO}/configs/levit/levit-128s_8xb256_in1k.py')
    evaluator = cfg.val_evaluator.copy()
    assert guard_image_loading(cfg)
    for split, on_error in (('train', 'mark'), ('val', 'mark'), ('test', 'mark')):
        pipeline = cfg[f'{split}_dataloader'].dataset.pipeline
        assert pipeline[0].type == 'CheckedLoadImageFromFile', split
        assert pipeline[0].on_error == on_error
        assert 'unreadable_image' in pipeline[-1].meta_keys
    assert cfg.val_evaluator == evaluator  # stopping needs no other metric
    assert cfg.custom_hooks[-1] == dict(type='UnreadableImageHook', skip=False)
    skipping = Config.fromfile(f'{REPO}/configs/levit/levit-128s_8xb256_in1k.py')
    skipping.skip_bad_images = True
    assert guard_image_loading(skipping) and guard_image_loading(skipping)  # idempotent
    assert skipping.train_dataloader.dataset.pipeline[0].on_error == 'skip'
    assert skipping.val_evaluator == dict(type='SkipUnreadableImages', metric=evaluator)
    assert [h['type'] for h in skipping.custom_hooks].count('UnreadableImageHook') == 1
    dense = Config(dict(train_dataloader=dict(dataset=dict(pipeline=[
        dict(type='LoadImageFromFile'), dict(type='PackDetInputs')]))))
    before = dense.to_dict()
    assert not guard_image_loading(dense) and dense.to_dict() == before
    dense.skip_bad_images = True
    with pytest.raises(ValueError, match='no classification pipeline'):
        guard_image_loading(dense)


def test_import_levit_mm_leaves_mmcv_loading_alone(folder):
    """Other models keep mmcv's transform and its behaviour, broken file included."""
    import mmcv.transforms
    from mmpretrain.registry import TRANSFORMS

    import levit_mm  # noqa: F401
    assert TRANSFORMS.get('LoadImageFromFile') is mmcv.transforms.LoadImageFromFile
    load = TRANSFORMS.build(dict(type='LoadImageFromFile'))
    with pytest.raises(AssertionError, match='failed to load image'):
        load(dict(img_path=folder['bad']))


def test_training_skip_draws_another_image(folder, capsys):
    """Training with skip_bad_images: the broken file is replaced by another sample
    (mmengine's refetch), with a warning naming it."""
    from mmengine.logging import MMLogger
    from mmpretrain.datasets import CustomDataset
    # a logger of its own: mmengine shows a warning once per logger, and the test-tool run
    # above may have shown this one
    MMLogger.get_instance('skip-in-training', log_level='INFO')
    pipeline = [dict(type='CheckedLoadImageFromFile', on_error='skip'),
                dict(type='PackInputs')]
    dataset = CustomDataset(data_root=str(folder['root'] / 'data'), data_prefix='val',
                            pipeline=pipeline)
    index = val_paths(folder).index(folder['bad'])
    sample = dataset[index]
    assert sample['data_samples'].img_path != folder['bad']
    assert f"skipped unreadable image {folder['bad']!r}" in capsys.readouterr().out


def test_training_stops_at_an_unreadable_image(folder):
    """The hook's stop in training: the file, the cause and the images trained on."""
    from mmpretrain.structures import DataSample

    from levit_mm.datasets.checked_loading import (CheckedLoadImageFromFile,
                                                   UnreadableImageError)
    from levit_mm.engine import UnreadableImageHook
    load = CheckedLoadImageFromFile(on_error='mark')
    marked = load(dict(img_path=folder['bad']))
    assert marked['img'].shape == (1, 1, 3)
    good = DataSample(metainfo=dict(img_path='good.jpg'))
    bad = DataSample(metainfo=dict(img_path=folder['bad'],
                                   unreadable_image=marked['unreadable_image']))
    hook = UnreadableImageHook()
    hook.before_train_iter(None, 0, dict(data_samples=[good, good]))
    with pytest.raises(UnreadableImageError) as failure:
        hook.before_train_iter(None, 1, dict(data_samples=[good, bad]))
    assert str(failure.value).startswith(
        f"cannot read image {folder['bad']!r}: the file is truncated or corrupt")
    assert 'stopped after 3 training images' in str(failure.value)
