"""What the speed benchmarks share: the training steps levit_mm and timm are compared on,
and the GPU inference paths (timed with :func:`levit_mm.deploy.timing.time_interleaved`).
"""
import copy
from typing import Callable, Dict, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from levit_mm.deploy import LogitsWrapper, compile_for_inference, switch_to_deploy

from .models import PEERS, build_classifier, build_timm


# ----------------------------------------------------------------------------- training
class TrainingStep:
    """One training step of a two-head LeViT: forward (both heads learn the labels, as
    without a teacher), cross-entropy, backward, AdamW step, with optional autocast.
    ``compiled`` compiles the forward (and with it the backward)."""

    def __init__(self, model: nn.Module, forward: Callable, labels: torch.Tensor,
                 amp_dtype: Optional[torch.dtype], compiled: bool):
        self.model = model
        self.forward = torch.compile(forward) if compiled else forward
        self.labels = labels
        self.amp_dtype = amp_dtype
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def __call__(self, x: torch.Tensor) -> None:
        with torch.autocast(x.device.type, self.amp_dtype or torch.float32,
                            enabled=self.amp_dtype is not None):
            cls, dist = self.forward(x)
            loss = (F.cross_entropy(cls, self.labels) + F.cross_entropy(dist, self.labels)) / 2
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)


def training_steps(arch: str, batch: int, device: str = 'cpu',
                   amp_dtype: Optional[torch.dtype] = None, compiled=(False, ),
                   drop_path_rate: float = 0.1) -> Dict[str, TrainingStep]:
    """``{'levit_mm eager': step, 'timm eager': step, ...}`` on the same labels."""
    labels = torch.randint(0, 1000, (batch, ), device=device,
                           generator=torch.Generator(device).manual_seed(0))
    steps = {}
    for mode in compiled:
        suffix = 'compiled' if mode else 'eager'
        ours = build_classifier(arch, drop_path_rate=drop_path_rate).to(device).train()
        steps[f'levit_mm {suffix}'] = TrainingStep(
            ours, lambda x, m=ours: m.head.head_logits(m.extract_feat(x)), labels, amp_dtype,
            mode)
        peer = build_timm(arch, fused=False, drop_path_rate=drop_path_rate)
        peer = peer.to(device).train()
        peer.set_distilled_training(True)
        steps[f'timm {suffix}'] = TrainingStep(peer, peer, labels, amp_dtype, mode)
    return steps


# ----------------------------------------------------------------------------- GPU inference
def gpu_inference_models(arch: str, device: str = 'cuda', compiled: bool = True
                         ) -> Dict[str, Callable]:
    """levit_mm's GPU inference paths beside the peers', under the paper's protocol (fp16
    autocast), each as ``x -> logits`` for an fp32 input ``x`` on ``device``.
    ``compiled=False`` leaves out the ``torch.compile`` paths (levit_mm's, its CUDA
    graphs, timm's)."""

    weights = switch_to_deploy(LogitsWrapper(build_classifier(arch)).eval()).to(device)

    def deployed():  # one set of (random) weights for every levit_mm path
        return copy.deepcopy(weights)

    def autocast(fn):
        def run(x):
            with torch.autocast(torch.device(device).type, torch.float16):
                return fn(x)
        return run

    def on_half(fn):
        return lambda x: fn(x.half())

    def conv_form(model):  # the same weights as LeViT-C (1x1 convolutions)
        model.model.backbone.to_form('conv')
        return model

    models = {'levit_mm deploy (autocast)': autocast(deployed()),
              'levit_mm fp16 weights': on_half(deployed().half()),
              'levit_mm conv fp16 weights': on_half(conv_form(deployed()).half())}
    if compiled:
        models['levit_mm compiled fp16'] = on_half(compile_for_inference(deployed().half()))
        models['levit_mm CUDA graphs fp16'] = on_half(
            compile_for_inference(deployed().half(), cuda_graphs=True))
        # timm's conv form is its faster one under torch.compile on recent GPUs
        models['levit_mm conv compiled fp16'] = on_half(
            compile_for_inference(conv_form(deployed()).half()))
    models['mmpretrain'] = autocast(PEERS['mmpretrain'](arch).to(device))
    models['timm'] = autocast(PEERS['timm'](arch).to(device))
    if compiled:
        models['timm compiled fp16'] = on_half(
            torch.compile(PEERS['timm'](arch).to(device).half()))
        models['timm conv compiled fp16'] = on_half(
            torch.compile(PEERS['timm conv'](arch).to(device).half()))
    models['hf'] = autocast(PEERS['hf'](arch).to(device))
    return models
