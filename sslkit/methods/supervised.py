"""Supervised training from scratch: the baseline every self-supervised method must beat.

It sees only the ``n`` labelled images a probe would see, with the same light augmentation
(random crop and flip), and is trained by the same loop for the same number of steps as the
methods it is compared with, so the comparison measures what the unlabeled data added.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import views
from .base import Method


class Supervised(Method):
    """Backbone + linear classifier trained with cross-entropy on labelled images.

    Args:
        backbone: encoder mapping ``(B, 3, S, S)`` → ``(B, backbone.feature_dim)``.
        num_classes: number of classes ``K``.
        recipe: augmentation applied to each batch (``None``: crop and flip only).
        label_smoothing: cross-entropy label smoothing in ``[0, 1)``.
    """

    def __init__(self, backbone: nn.Module, num_classes: int, recipe=None,
                 label_smoothing: float = 0.0):
        super().__init__(backbone)
        self.classifier = nn.Linear(backbone.feature_dim, num_classes)
        self.recipe = recipe
        self.label_smoothing = label_smoothing
        self.hparams = dict(num_classes=num_classes, recipe=repr(recipe),
                            label_smoothing=label_smoothing)

    def _recipe(self, size: int):
        return self.recipe or views.Recipe(
            size=size, crop_scale=(0.6, 1.0), jitter_p=0.0, grayscale_p=0.0
        )

    def training_step(self, images: torch.Tensor, labels: torch.Tensor | None = None):
        """Cross-entropy of ``classifier(backbone(view))`` against ``labels`` ``(B,)``."""
        if labels is None:
            raise ValueError("Supervised.training_step needs labels: pass labels= to fit()")
        x = views.augment(images, self._recipe(images.shape[-1]))
        logits = self.classifier(self.backbone(x))  # (B, K)
        loss = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
        acc = (logits.argmax(1) == labels).float().mean().item()
        return loss, {"train_acc": acc}

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Class predictions ``(B,)`` for normalised float images ``(B, 3, S, S)``."""
        return self.classifier(self.backbone(x)).argmax(1)
