"""VICReg: invariance between views, and variance and covariance terms that forbid collapse.

"VICReg: Variance-Invariance-Covariance Regularization for Self-Supervised Learning" (2021,
arXiv 2105.04906). No negatives, no predictor, no moving average, no stop-gradient: the two
branches are the same network and the loss itself says what a good embedding is. The
*invariance* term pulls the two views' embeddings together; the *variance* term keeps every
dimension's standard deviation over the batch above γ = 1, which a constant embedding violates
(complete collapse); the *covariance* term drives the off-diagonal covariances to zero, which
an embedding using only a few directions violates (dimensional collapse).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .. import losses, views
from .._validate import check_optional_function, check_positive_int, check_range
from ..evaluate.diagnostics import collapse_logs
from ..models import projector as make_projector
from .base import Method, function_key

__all__ = ["VICReg"]


class VICReg(Method):
    """VICReg on the expander's output for two views of each image.

    Shapes::

        images (B, 3, H, W) → views x1, x2 (B, 3, S, S) → [x1; x2] (2B, 3, S, S)
        → backbone → (2B, feature_dim) → expander → z1, z2 (B, proj_dim) each
        loss = λ·invariance(z1, z2) + μ·[variance(z1) + variance(z2)]
               + ν·[covariance(z1) + covariance(z2)]          (:func:`sslkit.losses.vicreg_loss`)

    The paper's weights are λ = μ = 25, ν = 1 with an 8192-wide three-layer expander; on 32 px
    images at batch 128 a 512 → 128 two-layer expander (the projector of lecture 03) works.

    Args:
        backbone: encoder ``(N, 3, S, S)`` → ``(N, backbone.feature_dim)``; kept and probed.
        proj_hidden, proj_dim, proj_layers: the expander MLP (``.projector``).
        sim_weight, var_weight, cov_weight: λ, μ, ν (0 ablates a term).
        recipe: view distribution (``None``: ``views.simclr_recipe(S, colour="strong")``).
        loss_fn: the loss, called as ``loss_fn(z1, z2, sim_weight, var_weight, cov_weight)``
            (``None``: :func:`sslkit.losses.vicreg_loss`); lets a learner train with their own
            loss (exercise 07), named in ``hparams`` by the hash of its code.

    Logs: ``invariance``, ``variance``, ``covariance`` (the unweighted terms, variance and
    covariance averaged over the two views) and ``z_std``, ``z_rank`` of the expander's output
    (see :func:`sslkit.evaluate.collapse_logs`).
    """

    def __init__(self, backbone: nn.Module, proj_hidden: int = 512, proj_dim: int = 128,
                 proj_layers: int = 2, sim_weight: float = 25.0, var_weight: float = 25.0,
                 cov_weight: float = 1.0, recipe: views.Recipe | None = None,
                 loss_fn: Callable[..., torch.Tensor] | None = None):
        super().__init__(backbone)
        check_positive_int("proj_hidden", proj_hidden)
        check_positive_int("proj_dim", proj_dim)
        check_positive_int("proj_layers", proj_layers)
        for name, w in (("sim_weight", sim_weight), ("var_weight", var_weight),
                        ("cov_weight", cov_weight)):
            check_range(name, w, 0.0, None)
        views.check_recipe(recipe)
        check_optional_function("loss_fn", loss_fn, signature="a function loss_fn(z1, z2, "
                                "sim_weight, var_weight, cov_weight) -> scalar tensor")
        self.projector = make_projector(backbone.feature_dim, proj_hidden, proj_dim, proj_layers)
        self.weights = (sim_weight, var_weight, cov_weight)
        self.recipe, self.loss_fn = recipe, loss_fn
        self.hparams = dict(proj_hidden=proj_hidden, proj_dim=proj_dim, proj_layers=proj_layers,
                            sim_weight=sim_weight, var_weight=var_weight, cov_weight=cov_weight,
                            recipe=repr(recipe), loss_fn=function_key(loss_fn))

    def training_step(self, images: torch.Tensor, labels: torch.Tensor | None = None):
        """VICReg loss of one batch; ``labels`` are ignored."""
        recipe = self.recipe or views.simclr_recipe(images.shape[-1], colour="strong")
        x = torch.cat(views.two_views(images, recipe))                # (2B, 3, S, S)
        z = self.projector(self.backbone(x))                          # (2B, D)
        z1, z2 = z.chunk(2)
        loss = (self.loss_fn or losses.vicreg_loss)(z1, z2, *self.weights)
        with torch.no_grad():
            logs = {"invariance": losses.invariance(z1, z2).item(),
                    "variance": (losses.variance(z1) + losses.variance(z2)).item() / 2,
                    "covariance": (losses.covariance(z1) + losses.covariance(z2)).item() / 2}
        return loss, {**logs, **collapse_logs(z)}
