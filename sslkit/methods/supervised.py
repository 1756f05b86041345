"""Supervised training from scratch: the baseline every self-supervised method must beat.

It sees only the ``n`` labelled images a probe would see, by default with a light
augmentation (random crop and flip), and is trained by the same loop for the same number of
steps as the methods it is compared with, so the comparison measures what the unlabeled data
added. A fair baseline gets every *label-preserving* augmentation the self-supervised method
gets: pass that method's view recipe as ``recipe`` (on ShapeWorld colour carries no label, so
SimCLR's colour distortion is label-preserving; lecture 03 does this).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import views
from .._validate import check_positive_int, check_range
from .base import Method, accuracy

__all__ = ["Supervised"]


class Supervised(Method):
    """Backbone + linear classifier trained with cross-entropy on labelled images.

    Args:
        backbone: encoder mapping ``(B, 3, S, S)`` → ``(B, backbone.feature_dim)``.
        num_classes: number of classes ``K``.
        recipe: augmentation applied to each batch, one view per image (``None``:
            :func:`sslkit.views.crop_flip_recipe` at the images' size). Any
            :class:`sslkit.views.Recipe` works, e.g. the self-supervised method's own
            ``views.simclr_recipe(...)`` for a baseline with the same augmentations; the
            recipe's ``size`` is the training resolution (the network pools globally, so it
            can be evaluated at another size).
        label_smoothing: cross-entropy label smoothing in ``[0, 1)``.
    """

    def __init__(self, backbone: nn.Module, num_classes: int, recipe=None,
                 label_smoothing: float = 0.0):
        super().__init__(backbone)
        check_positive_int("num_classes", num_classes)
        check_range("label_smoothing", label_smoothing, 0.0, 1.0, high_open=True)
        views.check_recipe(recipe)
        self.classifier = nn.Linear(backbone.feature_dim, num_classes)
        self.recipe = recipe
        self.label_smoothing = label_smoothing
        self.hparams = dict(num_classes=num_classes, recipe=repr(recipe),
                            label_smoothing=label_smoothing)

    def training_step(self, images: torch.Tensor, labels: torch.Tensor | None = None):
        """Cross-entropy of ``classifier(backbone(view))`` against ``labels`` ``(B,)``."""
        if labels is None:
            raise ValueError("Supervised.training_step needs labels: pass labels= to fit()")
        x = views.augment(images, self.recipe or views.crop_flip_recipe(images.shape[-1]))
        logits = self.classifier(self.backbone(x))  # (B, K)
        loss = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
        return loss, {"train_acc": accuracy(logits, labels)}

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Class predictions ``(B,)`` for normalised float images ``(B, 3, S, S)``."""
        return self.classifier(self.backbone(x)).argmax(1)
