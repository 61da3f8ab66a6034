"""LeViT's classification head: a class head and a distillation head, averaged at test time.

Training follows DeiT: the class head learns from the labels (with whatever label loss is
configured, so label smoothing and Mixup/CutMix soft targets apply), the distillation head
from a teacher's logits, mixed with weight ``distill_alpha``.  Where the teacher is built and
run is the classifier's business (:class:`levit_mm.LeViTClassifier`'s ``teacher``); the head
only receives its logits.
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.models.heads import ClsHead
from mmpretrain.structures import DataSample

from ..folding import average_linears, bn_module_scale_shift, fold_bn_before, fold_on_load

DISTILL_TYPES = ('none', 'soft', 'hard')
#: the official ``BN_Linear``: ``trunc_normal_(linear.weight, std=0.02)`` (timm's, whose
#: bounds a=-2, b=2 are absolute) and a zero bias
OFFICIAL_HEAD_INIT = dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.)


class BNLinear(nn.Module):
    """BatchNorm followed by a Linear classifier (LeViT's head); folds into one Linear."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.bn = nn.BatchNorm1d(in_features)
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.bn(x))

    @torch.no_grad()
    def fuse(self) -> nn.Linear:
        weight = self.linear.weight
        fused = nn.Linear(weight.shape[1], weight.shape[0], bias=True,
                          device=weight.device, dtype=weight.dtype)
        folded_weight, folded_bias = fold_bn_before(weight, self.linear.bias,
                                                    *bn_module_scale_shift(self.bn))
        fused.weight.copy_(folded_weight)
        fused.bias.copy_(folded_bias)
        return fused


def _check_pair(student: torch.Tensor, teacher: torch.Tensor) -> None:
    if student.shape != teacher.shape:
        raise ValueError(f'Teacher logits {tuple(teacher.shape)} do not match the student\'s '
                         f'{tuple(student.shape)}: the teacher must predict the same classes.')


def hard_distillation_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the student against the teacher's top-1 class (DeiT, hard)."""
    _check_pair(student, teacher)
    return F.cross_entropy(student, teacher.argmax(dim=1))


def soft_distillation_loss(student: torch.Tensor, teacher: torch.Tensor,
                           tau: float) -> torch.Tensor:
    """DeiT's soft distillation loss, exactly: ``KL(softmax(teacher / tau) ||
    softmax(student / tau))`` summed over batch and classes, times ``tau^2`` (Hinton et
    al.: the gradient scale does not depend on ``tau``), divided by ``batch x classes``
    (``s.numel()`` in DeiT's ``losses.py``), so it keeps the official balance with the
    label loss at ``distill_alpha``."""
    _check_pair(student, teacher)
    if tau <= 0:
        raise ValueError(f'distill_tau must be > 0, got {tau}.')
    log_p_student = F.log_softmax(student / tau, dim=1)
    log_p_teacher = F.log_softmax(teacher / tau, dim=1)
    kl = F.kl_div(log_p_student, log_p_teacher, reduction='sum', log_target=True)
    return kl * (tau * tau) / student.numel()


class LeViTClsHead(ClsHead):
    """Two BN+Linear heads (class and distillation) on pooled LeViT features.

    Args:
        num_classes (int): number of classes.
        distillation (bool): build the distillation head.  Without it the model has one
            head (the "single-head" parameter counts of the model zoo).
        in_channels (int): feature channels (the last stage's embed dim).
        deploy (bool): build in the folded form (one merged Linear).
        distill_type (str): how the distillation head learns when teacher logits are
            given: ``'hard'`` (CE to the teacher's argmax), ``'soft'`` (KL at
            ``distill_tau``) or ``'none'`` (labels, as without a teacher).
        distill_alpha (float): weight of the distillation head's loss; the class head's
            label loss gets ``1 - distill_alpha``.  DeiT/LeViT use 0.5.
        distill_tau (float): temperature of the soft loss.
        loss (dict): the label loss (e.g. ``LabelSmoothLoss``); also used for the
            distillation head when it learns from labels.
        init_cfg (dict): the official initialisation of both heads' Linears by default:
            truncated normal, std 0.02, cut at +-2 (absolute, as the official code's
            ``trunc_normal_``), bias 0; the BatchNorms keep PyTorch's.
    """

    def __init__(self,
                 num_classes: int = 1000,
                 distillation: bool = True,
                 in_channels: Optional[int] = None,
                 deploy: bool = False,
                 distill_type: str = 'hard',
                 distill_alpha: float = 0.5,
                 distill_tau: float = 1.0,
                 init_cfg: Optional[dict] = OFFICIAL_HEAD_INIT,
                 **kwargs):
        super().__init__(init_cfg=init_cfg, **kwargs)
        if in_channels is None:
            raise ValueError('LeViTClsHead needs in_channels (the last embed dim, e.g. 384 '
                             'for LeViT-128S).')
        if distill_type not in DISTILL_TYPES:
            raise ValueError(f'distill_type must be one of {DISTILL_TYPES}, got '
                             f'{distill_type!r}.')
        if not 0 <= distill_alpha <= 1:
            raise ValueError(f'distill_alpha must be in [0, 1], got {distill_alpha}.')
        if distill_tau <= 0:
            raise ValueError(f'distill_tau must be > 0, got {distill_tau}.')
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.distillation = distillation
        self.distill_type = distill_type
        self.distill_alpha = distill_alpha
        self.distill_tau = distill_tau
        self.head = BNLinear(in_channels, num_classes)
        if distillation:
            self.head_dist = BNLinear(in_channels, num_classes)
        self.deploy = False
        if deploy:
            self.switch_to_deploy()
        # a training-form checkpoint folds as it loads into the deployed form
        self.register_load_state_dict_pre_hook(fold_on_load)

    def pre_logits(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        x = feats[-1]
        return x.mean(dim=(2, 3)) if x.dim() == 4 else x

    def head_logits(self, feats) -> Tuple[torch.Tensor, ...]:
        """``(class_logits, distillation_logits)``, or ``(logits,)`` with one head."""
        x = self.pre_logits(feats)
        if self.deploy or not self.distillation:
            return (self.head(x), )
        return self.head(x), self.head_dist(x)

    def forward(self, feats) -> torch.Tensor:
        """Inference logits: the average of the two heads (or the single head)."""
        logits = self.head_logits(feats)
        return logits[0] if len(logits) == 1 else (logits[0] + logits[1]) / 2

    def loss(self, feats, data_samples: List[DataSample],
             teacher_logits: Optional[torch.Tensor] = None, **kwargs) -> dict:
        """``loss_cls`` for the class head and, with two heads, ``loss_dist``."""
        if self.deploy:
            raise RuntimeError('A deployed (folded) LeViT head cannot be trained; build the '
                               'model without deploy=True.')
        if teacher_logits is not None and not self.distillation:
            raise ValueError('Teacher logits were given but this head has no distillation '
                             'head (distillation=False).')
        logits = self.head_logits(feats)
        target = self._targets(data_samples)
        label_loss = self.loss_module(logits[0], target, avg_factor=logits[0].size(0),
                                      **kwargs)
        if len(logits) == 1:
            losses = dict(loss_cls=label_loss)
        elif teacher_logits is None or self.distill_type == 'none':
            # No teacher: both heads learn the labels, so their average stays meaningful.
            dist_loss = self.loss_module(logits[1], target, avg_factor=logits[1].size(0),
                                         **kwargs)
            losses = dict(loss_cls=label_loss * (1 - self.distill_alpha),
                          loss_dist=dist_loss * self.distill_alpha)
        else:
            teacher_logits = teacher_logits.detach().to(logits[1].dtype)
            if self.distill_type == 'hard':
                dist_loss = hard_distillation_loss(logits[1], teacher_logits)
            else:
                dist_loss = soft_distillation_loss(logits[1], teacher_logits,
                                                   self.distill_tau)
            losses = dict(loss_cls=label_loss * (1 - self.distill_alpha),
                          loss_dist=dist_loss * self.distill_alpha)
        return losses

    @staticmethod
    def _targets(data_samples: List[DataSample]) -> torch.Tensor:
        if 'gt_score' in data_samples[0]:
            return torch.stack([i.gt_score for i in data_samples])
        return torch.cat([i.gt_label for i in data_samples])

    @torch.no_grad()
    def switch_to_deploy(self):
        """Fold each BN into its Linear and merge the two heads into one Linear (their
        average is linear), so inference is a single matrix product."""
        if self.deploy:
            return
        merged = self.head.fuse()
        if self.distillation:
            dist = self.head_dist.fuse()
            weight, bias = average_linears((merged.weight, merged.bias),
                                           (dist.weight, dist.bias))
            merged.weight.copy_(weight)
            merged.bias.copy_(bias)
            del self.head_dist
        self.head = merged
        self.deploy = True
