"""A config as the deployment and precision tools see it: its classifier with checked weights,
and its dataset's images as that classifier's inputs.

Images go through the config's *test* pipeline (for every split: calibration images must look
like the images the model will meet) and the model's own data preprocessor (mean/std, RGB
order), so a tensor here is exactly what ``model(x, mode='tensor')`` gets in ``tools/test.py``.
"""
import os.path as osp
from typing import Iterator, Optional, Tuple

import torch


def load_config(config: str, cfg_options: Optional[dict] = None):
    from mmengine.config import Config

    from .validation import check_config_arch
    if not osp.isfile(config):
        raise FileNotFoundError(f'No config at {config!r}.')
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    check_config_arch(cfg, config)
    return cfg


def load_classifier(cfg, checkpoint: str) -> torch.nn.Module:
    """The config's model (no teacher: inference never needs one) with ``checkpoint`` loaded
    strictly; eval mode, CPU."""
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS

    from levit_mm.convert import load_checkpoint_strict
    init_default_scope('mmpretrain')
    model_cfg = cfg.model.copy()
    if 'teacher' in model_cfg:
        model_cfg.teacher = None
    if 'data_preprocessor' not in model_cfg and cfg.get('data_preprocessor'):
        model_cfg.data_preprocessor = cfg.data_preprocessor  # as mmengine's Runner does
    model = MODELS.build(model_cfg)
    load_checkpoint_strict(model, checkpoint)
    return model.eval()


def _dataset(cfg, split: str):
    from mmpretrain.registry import DATASETS
    if split not in ('train', 'test'):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}.")
    loader = cfg.get(f'{split}_dataloader') or {}
    if not loader.get('dataset'):
        raise ValueError(f'The config has no {split}_dataloader.dataset to draw images from.')
    dataset_cfg = loader['dataset'].copy()
    test_cfg = (cfg.get('test_dataloader') or cfg.get('val_dataloader') or {}).get('dataset')
    if split == 'train' and test_cfg is not None:
        dataset_cfg.pipeline = test_cfg.pipeline  # no augmentation
    data_root = dataset_cfg.get('data_root', '')
    if data_root and not osp.isdir(data_root):
        raise FileNotFoundError(
            f'The {split} data root {data_root!r} does not exist (set it with --cfg-options '
            f'{split}_dataloader.dataset.data_root=...).')
    dataset = DATASETS.build(dataset_cfg)
    if len(dataset) == 0:
        raise ValueError(f'The {split} dataset under {data_root!r} holds no images.')
    return dataset


def config_batches(cfg, model: torch.nn.Module, split: str, num: Optional[int] = None,
                   batch_size: int = 32, seed: int = 0
                   ) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
    """``(inputs, labels)`` batches from the config's ``split`` ('train' or 'test').

    ``num`` images drawn at random (seeded) when given, else all of them in order.  All
    images must come out of the pipeline at one size (a fixed-shape export needs it).
    """
    from mmengine.dataset import pseudo_collate
    dataset = _dataset(cfg, split)
    if num is not None:
        if num < 1:
            raise ValueError(f'Need at least one image, got {num}.')
        generator = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(dataset), generator=generator)[:num].tolist()
    else:
        order = list(range(len(dataset)))
    shape = None
    for start in range(0, len(order), batch_size):
        samples = [dataset[i] for i in order[start:start + batch_size]]
        with torch.no_grad():
            data = model.data_preprocessor(pseudo_collate(samples), False)
        inputs = data['inputs']
        if shape is None:
            shape = inputs.shape[1:]
        elif inputs.shape[1:] != shape:
            raise ValueError(
                f'The {split} pipeline gives images of different sizes ({tuple(shape)} and '
                f'{tuple(inputs.shape[1:])}); a fixed-shape export needs one size (add a '
                'Resize/CenterCrop to the test pipeline).')
        labels = torch.stack([s.gt_label.reshape(-1)[0] for s in data['data_samples']])
        yield inputs.float(), labels
