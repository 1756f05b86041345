"""W-MSE: whiten each view's batch of embeddings, then pull the views together.

"Whitening for Self-Supervised Representation Learning" (2020, arXiv 2007.06346). Where
VICReg and Barlow Twins *penalise* a collapsed or redundant embedding, W-MSE makes it
impossible: the loss is computed after a batch whitening that gives every one of the ``D``
directions the same variance, so only *which* images are close can change, never how much of
the space is used. The cost is a ``D × D`` Cholesky factorisation per view and step, and a batch
larger than ``D``.
"""

from __future__ import annotations

import torch
from torch import nn

from .. import losses, views
from .._validate import check_positive_int, check_range
from ..evaluate.diagnostics import collapse_logs
from ..models import projector as make_projector
from .base import Method

__all__ = ["WMSE"]


class WMSE(Method):
    """W-MSE with one whitening batch per view (the paper's ``w_iter = 1``).

    Shapes::

        images (B, 3, H, W) → views x1, x2 (B, 3, S, S) → [x1; x2] (2B, 3, S, S)
        → backbone → projector → z1, z2 (B, proj_dim), B > proj_dim
        loss = normalized_mse(whiten(z1), whiten(z2))          (:func:`sslkit.losses.wmse_loss`)

    The paper embeds in 64 (CIFAR) or 128 dimensions with whitening sub-batches of 128 or 256;
    a small ``proj_dim`` keeps the covariance estimate of a CPU-sized batch well conditioned.

    Args:
        backbone: encoder ``(N, 3, S, S)`` → ``(N, backbone.feature_dim)``; kept and probed.
        proj_hidden, proj_dim: the projector MLP (``.projector``).
        eps: added to the covariance's diagonal before the Cholesky factorisation.
        recipe: view distribution (``None``: ``views.simclr_recipe(S, colour="strong")``).

    Logs: ``cos_sim`` (mean cosine of the whitened views) and ``z_std``, ``z_rank`` of the
    projections *before* whitening (see :func:`sslkit.evaluate.collapse_logs`).
    """

    def __init__(self, backbone: nn.Module, proj_hidden: int = 512, proj_dim: int = 32,
                 eps: float = 1e-4, recipe: views.Recipe | None = None):
        super().__init__(backbone)
        check_positive_int("proj_hidden", proj_hidden)
        check_positive_int("proj_dim", proj_dim)
        check_range("eps", eps, 0.0, None, low_open=True)
        views.check_recipe(recipe)
        self.projector = make_projector(backbone.feature_dim, proj_hidden, proj_dim)
        self.eps, self.recipe = eps, recipe
        self.hparams = dict(proj_hidden=proj_hidden, proj_dim=proj_dim, eps=eps,
                            recipe=repr(recipe))

    def training_step(self, images: torch.Tensor, labels: torch.Tensor | None = None):
        """W-MSE loss of one batch; ``labels`` are ignored."""
        recipe = self.recipe or views.simclr_recipe(images.shape[-1], colour="strong")
        x = torch.cat(views.two_views(images, recipe))                # (2B, 3, S, S)
        z = self.projector(self.backbone(x))                          # (2B, D)
        z1, z2 = z.chunk(2)
        loss = losses.wmse_loss(z1, z2, self.eps)
        return loss, {"cos_sim": 1.0 - loss.item() / 2, **collapse_logs(z)}
