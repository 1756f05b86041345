"""RotNet: which of 0°, 90°, 180°, 270° was the image rotated by?

"Unsupervised Representation Learning by Predicting Image Rotations" (2018, arXiv 1803.07728).
Rotation prediction on shapes that are already freely rotated has no answer (every orientation
is equally likely), so it teaches nothing; on upright shapes it forces the network to recognise
the shape.

A pretext method (see :mod:`sslkit.methods`): light views, a classifier head, ``pretext_acc``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import views
from .._validate import check_positive_int
from ..models import classifier_head
from ..pretext import rotation_batch
from .base import Method, accuracy

__all__ = ["RotNet"]


class RotNet(Method):
    """Rotation prediction: classify each view by the rotation applied to it.

    "Unsupervised Representation Learning by Predicting Image Rotations" (2018,
    arXiv 1803.07728). Each image is viewed once (``recipe``, default
    :func:`sslkit.views.crop_flip_recipe`), then all four rotations of the view enter the batch
    together, as the paper found best::

        images (B, 3, H, W) → views (B, 3, S, S) → rotation_batch → (4B, 3, S, S), targets (4B,)
        → backbone → (4B, feature_dim) → head → logits (4B, 4) → cross-entropy

    The backbone therefore sees ``4B`` images per step: ``TrainConfig(batch_size=B)`` costs
    about as much as a contrastive method's two views at ``2B``.

    The default head is linear (the paper's network ends with global pooling and a linear
    classifier); ``head_hidden > 0`` puts a two-layer MLP there instead, which can absorb some of
    the rotation-specific features as a projector does.

    The images must be *upright* (for ShapeWorld: ``max_rotation`` small, e.g.
    ``data.preset("hard", max_rotation=0.35)``); on freely rotated shapes the target cannot be
    predicted and the features stay at chance level.

    Args:
        backbone: encoder ``(N, 3, S, S)`` → ``(N, backbone.feature_dim)``, square inputs.
        recipe: view before rotating (``None``: crop + flip at the images' size).
        head_hidden: hidden width of the MLP head, ``0`` for a linear head.

    Logs: ``pretext_acc``, the fraction of the 4B rotations classified correctly.
    """

    def __init__(self, backbone: nn.Module, recipe: views.Recipe | None = None,
                 head_hidden: int = 0):
        super().__init__(backbone)
        views.check_recipe(recipe)
        check_positive_int("head_hidden", head_hidden, allow_zero=True)
        self.recipe = recipe
        self.head = classifier_head(backbone.feature_dim, head_hidden, 4)
        self.hparams = dict(recipe=repr(recipe), head_hidden=head_hidden)

    def training_step(self, images: torch.Tensor, labels: torch.Tensor | None = None):
        """Cross-entropy of the rotation logits ``(4B, 4)`` against ``[0]*B + [1]*B + …``."""
        recipe = self.recipe or views.crop_flip_recipe(images.shape[-1])
        x = views.augment(images, recipe)                        # (B, 3, S, S)
        x, targets = rotation_batch(x)                           # (4B, 3, S, S), (4B,)
        logits = self.head(self.backbone(x))                     # (4B, 4)
        loss = F.cross_entropy(logits, targets)
        return loss, {"pretext_acc": accuracy(logits, targets)}
