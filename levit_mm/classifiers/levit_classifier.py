"""The LeViT classifier: mmpretrain's ImageClassifier, as the place where LeViT-specific
model-level behaviour lives (teacher for distillation, what happens as weights load)."""
from typing import List, Optional

import torch
from mmengine.logging import print_log
from mmpretrain.models.classifiers import ImageClassifier
from mmpretrain.structures import DataSample

from ..convert import prepare_on_load
from .teacher import Teacher


class LeViTClassifier(ImageClassifier):
    """An ``ImageClassifier`` for LeViT; takes the same arguments, plus:

    Args:
        teacher (dict, optional): the distillation teacher (see
            :mod:`levit_mm.classifiers.teacher`), e.g.
            ``dict(config='teacher.py', checkpoint='teacher.pth')``.  Built lazily at the first
            training step, frozen, and never part of this model's state or parameters.  The
            head's ``distill_type`` says how its distillation head learns from it.
    """

    def __init__(self, *args, teacher: Optional[dict] = None, **kwargs):
        super().__init__(*args, **kwargs)
        # every route that loads weights into it: NaN/Inf refused, official/timm/HF layouts
        # converted, a head of another size refused or left out (levit_mm.convert.load_hooks)
        self.register_load_state_dict_pre_hook(prepare_on_load)
        self.teacher = self._make_teacher(teacher)

    def _make_teacher(self, cfg: Optional[dict]) -> Optional[Teacher]:
        if cfg is None:
            return None
        if not getattr(self.head, 'distillation', False):
            raise ValueError('A teacher needs a head with a distillation head '
                             '(LeViTClsHead with distillation=True); this head has none.')
        if getattr(self.head, 'distill_type', 'hard') == 'none':
            print_log('teacher is configured but head.distill_type is "none": the teacher '
                      'will not be built or used.', logger='current')
            return None
        return Teacher(cfg)

    def loss(self, inputs: torch.Tensor, data_samples: List[DataSample]) -> dict:
        """Losses of the class and distillation heads; the teacher sees ``inputs`` exactly
        as the student does (normalised and batch-augmented by the data preprocessor)."""
        feats = self.extract_feat(inputs)
        teacher_logits = None
        if self.teacher is not None:
            teacher_logits = self.teacher.logits(inputs, self.data_preprocessor)
        return self.head.loss(feats, data_samples, teacher_logits=teacher_logits)

    def _apply(self, fn, *args, **kwargs):
        # The teacher is outside the module tree; move it with the student all the same.
        result = super()._apply(fn, *args, **kwargs)
        teacher = self.__dict__.get('teacher')
        if teacher is not None:
            teacher.to_(fn)
        return result
