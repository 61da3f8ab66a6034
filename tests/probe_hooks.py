"""A hook that records, per rank, which samples each process saw (imported by test configs)."""
import json
import os.path as osp

from mmengine.dist import get_rank, get_world_size
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS


@HOOKS.register_module()
class RankProbeHook(Hook):
    """Append ``{rank, world_size, stage, iter, samples}`` lines to
    ``<work_dir>/probe_rank<r>.jsonl``."""

    def _record(self, runner, stage, batch_idx, data_batch):
        samples = [osp.basename(osp.dirname(s.img_path)) + '/' + osp.basename(s.img_path)
                   for s in data_batch['data_samples']]
        line = dict(rank=get_rank(), world_size=get_world_size(), stage=stage,
                    iter=batch_idx, samples=samples)
        with open(osp.join(runner.work_dir, f'probe_rank{get_rank()}.jsonl'), 'a') as f:
            f.write(json.dumps(line) + '\n')

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self._record(runner, 'train', runner.iter, data_batch)

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self._record(runner, 'test', batch_idx, data_batch)
