"""Supervised contrastive learning: SimCLR where every same-class view is a positive.

"Supervised Contrastive Learning" (2020, arXiv 2004.11362). With labels, the two views of an
image are no longer each other's only positive: every view of every image of the same class
is pulled together, and only other classes are pushed away. In the course it is the *upper
bound* of the contrastive family (it removes the "false negatives" SimCLR pushes apart) and a
stronger supervised baseline than cross-entropy at small label counts.
"""

from __future__ import annotations

import torch
from torch import nn

from .. import losses, views
from .simclr import SimCLR, contrastive_logs

__all__ = ["SupCon"]


class SupCon(SimCLR):
    """Supervised contrastive loss on the projections of two views of each labelled image.

    "Supervised Contrastive Learning" (2020, arXiv 2004.11362), the loss of Eq. 2
    (:func:`sslkit.losses.supcon_loss`)::

        images (B, 3, H, W), labels (B,) → two views → backbone (2B, feature_dim)
        → projector (2B, proj_dim) → stacked (B, 2, proj_dim) → supcon_loss(·, labels, τ)

    With all labels distinct this is exactly SimCLR's NT-Xent. The paper uses τ = 0.1.

    Args:
        backbone: encoder ``(N, 3, S, S)`` → ``(N, backbone.feature_dim)``; ``.backbone``.
        proj_hidden, proj_dim: the projector MLP (``.projector``).
        temperature: τ > 0.
        recipe: view distribution (``None``: ``views.simclr_recipe(S, colour="strong")``).

    Logs: ``pos_sim``, ``neg_sim``, ``top1`` of the *instance* pairs (see
    :func:`sslkit.methods.simclr.contrastive_logs`), comparable with SimCLR's.
    """

    def __init__(self, backbone: nn.Module, proj_hidden: int = 512, proj_dim: int = 128,
                 temperature: float = 0.1, recipe: views.Recipe | None = None):
        super().__init__(backbone, proj_hidden, proj_dim, temperature, recipe)

    def training_step(self, images: torch.Tensor, labels: torch.Tensor | None = None):
        """Supervised contrastive loss; ``labels`` ``(B,)`` are required."""
        if labels is None:
            raise ValueError("SupCon needs labels: pass them to fit(method, images, "
                             "labels=...) or to training_step(images, labels)")
        z1, z2 = self.project_views(images)                             # (B, proj_dim) each
        features = torch.stack([z1, z2], dim=1)                        # (B, 2 views, proj_dim)
        loss = losses.supcon_loss(features, labels, self.temperature)
        return loss, contrastive_logs(z1, z2)
