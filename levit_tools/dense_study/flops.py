"""Backbone and whole-model GFLOPs of a study config (mmengine's counter: one multiply-add
counts once), at the scenes' size."""
import inspect
from typing import Dict, Tuple

from .runs import Run

SCENE_HW = (256, 256)


def complexity(run: Run, hw: Tuple[int, int] = SCENE_HW) -> Dict[str, float]:
    """``{'backbone_gflops', 'gflops'}`` of the run's model on one ``hw`` image: backbone,
    neck and heads without post-processing."""
    import torch
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmengine.utils import import_modules_from_strings

    from levit_tools.analysis import count_flops
    cfg = Config.fromfile(run.config)
    import_modules_from_strings(**cfg.custom_imports)
    cfg.model.backbone.init_cfg = None
    cfg.model.pop('pretrained', None)
    scope = 'mmdet' if run.task_kind == 'det' else 'mmseg'
    with DefaultScope.overwrite_default_scope(scope):
        if scope == 'mmdet':
            from mmdet.registry import MODELS
        else:
            from mmseg.registry import MODELS
        model = MODELS.build(cfg.model)
        shape = (1, 3) + tuple(hw)
        with torch.no_grad():
            backbone = count_flops(model.backbone, shape)
            total = count_flops(model, shape, forward_fn=_whole_forward)
    return dict(backbone_gflops=backbone / 1e9, gflops=total / 1e9)


def _whole_forward(model, x):
    """``_forward`` (backbone, neck, heads); a two-stage detector's RPN needs the image
    shape from a data sample."""
    if 'batch_data_samples' not in inspect.signature(model._forward).parameters:
        return model._forward(x)  # mmseg
    from mmdet.structures import DetDataSample
    hw = tuple(x.shape[-2:])
    sample = DetDataSample(metainfo=dict(img_shape=hw, ori_shape=hw, pad_shape=hw,
                                         batch_input_shape=hw, scale_factor=(1., 1.)))
    return model._forward(x, [sample])
