"""Running mmengine's ``pytorch`` launcher on hosts without CUDA.

mmengine 0.10's ``init_dist('pytorch')`` calls ``torch.cuda.set_device`` and its Runner wraps
the model in DDP with ``device_ids=[LOCAL_RANK]``; both fail on a CPU-only host.  Everything
else (samplers, DDP with gloo, checkpointing) works, so the tools start the process group
themselves (mmengine then skips its own ``init_dist``) and ask for a DDP without device ids.
"""
import os

import torch
import torch.distributed as dist


def prepare_cpu_distributed(cfg) -> None:
    """Adapt ``cfg`` and start the process group for a CPU-only distributed run.

    Does nothing with CUDA available, without a launcher, or if the group already exists.
    """
    if cfg.get('launcher', 'none') != 'pytorch' or torch.cuda.is_available() \
            or dist.is_initialized():
        return
    backend = cfg.get('env_cfg', {}).get('dist_cfg', {}).get('backend', 'nccl')
    if backend != 'gloo':
        raise ValueError(f'Distributed backend {backend!r} needs GPUs and this host has '
                         'none; for CPU processes add --cfg-options '
                         'env_cfg.dist_cfg.backend=gloo.')
    if 'RANK' not in os.environ:
        raise ValueError('--launcher pytorch expects the environment set by torchrun (RANK, '
                         'WORLD_SIZE, MASTER_ADDR, ...); start it with tools/dist_train.sh '
                         'or tools/dist_test.sh.')
    dist.init_process_group(backend='gloo')
    wrapper = cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel',
                                                   broadcast_buffers=False)
    wrapper['device_ids'] = None  # CPU modules: DDP takes no device ids
    cfg.model_wrapper_cfg = wrapper
