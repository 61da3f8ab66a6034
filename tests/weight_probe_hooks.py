"""A hook that saves the raw weights after every training iteration (imported by test
configs), so that a test can recompute the EMA the way the official code defines it."""
import os.path as osp

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS


@HOOKS.register_module()
class RawWeightsProbeHook(Hook):
    """Rank 0 writes ``<work_dir>/raw_iter<N>.pth`` (N from 1) after each iteration."""

    priority = 'LOW'  # after the EMA update, which never touches the raw weights

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if get_rank() != 0:
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        torch.save(state, osp.join(runner.work_dir, f'raw_iter{runner.iter + 1}.pth'))
