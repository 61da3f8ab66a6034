"""The LeViT classifier: mmpretrain's ImageClassifier, as the place where LeViT-specific
model-level behaviour lives (teacher for distillation, foreign checkpoint layouts)."""
from mmpretrain.models.classifiers import ImageClassifier


class LeViTClassifier(ImageClassifier):
    """An ``ImageClassifier`` for LeViT; takes the same arguments.

    Kept as its own type so configs can name LeViT-specific options without touching
    mmpretrain's classifier.
    """
