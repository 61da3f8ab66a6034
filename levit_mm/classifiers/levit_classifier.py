"""The LeViT classifier: mmpretrain's ImageClassifier, as the place where LeViT-specific
model-level behaviour lives (teacher for distillation, foreign checkpoint layouts)."""
from mmpretrain.models.classifiers import ImageClassifier

from ..convert import convert_on_load


class LeViTClassifier(ImageClassifier):
    """An ``ImageClassifier`` for LeViT; takes the same arguments.

    Kept as its own type so configs can name LeViT-specific options without touching
    mmpretrain's classifier.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # official/timm/HF state dicts are converted as they load (init_cfg, load_checkpoint)
        self.register_load_state_dict_pre_hook(convert_on_load)
