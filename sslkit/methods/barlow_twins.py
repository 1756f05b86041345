"""Barlow Twins: the cross-correlation of two views' embeddings driven to the identity.

"Barlow Twins: Self-Supervised Learning via Redundancy Reduction" (2021, arXiv 2103.03230),
after H. Barlow's redundancy-reduction principle for sensory coding. Each dimension is
standardised over the batch; the diagonal of the cross-correlation matrix between the views is
pulled to 1 (each dimension is invariant to the views) and the off-diagonal entries to 0 (two
dimensions never carry the same information). A constant embedding cannot put 1 on the
diagonal, so collapse is excluded by the loss itself.
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

__all__ = ["BarlowTwins"]


class BarlowTwins(Method):
    """Barlow Twins on the projector's output for two views of each image.

    Shapes::

        images (B, 3, H, W) → views x1, x2 (B, 3, S, S) → [x1; x2] (2B, 3, S, S)
        → backbone → (2B, feature_dim) → projector → z1, z2 (B, proj_dim) each
        C = cross_correlation(z1, z2)   (proj_dim, proj_dim)
        loss = Σ_i (1 − C_ii)² + λ Σ_{i≠j} C_ij²      (:func:`sslkit.losses.barlow_twins_loss`)

    The diagonal sum has ``D`` terms and the off-diagonal one ``D² − D``, so the balance set by
    λ depends on ``D``: the paper's λ = 5·10⁻³ is for D = 8192. In lecture 03's budget (batch
    128) it learns with λ near 1/D (D = 128 with λ = 8·10⁻³, lecture 07's setting, or D = 512
    with λ = 2·10⁻³) and barely with a λ a few times smaller or larger
    (``benchmarks/negative_free_budget.py``).

    Args:
        backbone: encoder ``(N, 3, S, S)`` → ``(N, backbone.feature_dim)``; kept and probed.
        proj_hidden, proj_dim, proj_layers: the projector MLP (``.projector``).
        lambd: λ ≥ 0, the weight of the off-diagonal (redundancy) term.
        recipe: view distribution (``None``: ``views.simclr_recipe(S, colour="strong")``).
        loss_fn: the loss, called as ``loss_fn(z1, z2, lambd)`` (``None``:
            :func:`sslkit.losses.barlow_twins_loss`), named in ``hparams`` by its code's hash.

    Logs: ``on_diagonal`` (``Σ_i (1 − C_ii)²``), ``off_diagonal`` (``Σ_{i≠j} C_ij²``, before λ)
    and ``z_std``, ``z_rank`` of the projections (see :func:`sslkit.evaluate.collapse_logs`).
    """

    def __init__(self, backbone: nn.Module, proj_hidden: int = 512, proj_dim: int = 128,
                 proj_layers: int = 2, lambd: float = 5e-3, recipe: views.Recipe | None = None,
                 loss_fn: Callable[..., torch.Tensor] | None = None):
        super().__init__(backbone)
        check_positive_int("proj_hidden", proj_hidden)
        check_positive_int("proj_dim", proj_dim)
        check_positive_int("proj_layers", proj_layers)
        check_range("lambd", lambd, 0.0, None)
        views.check_recipe(recipe)
        check_optional_function("loss_fn", loss_fn,
                                signature="a function loss_fn(z1, z2, lambd) -> scalar tensor")
        self.projector = make_projector(backbone.feature_dim, proj_hidden, proj_dim, proj_layers)
        self.lambd, self.recipe, self.loss_fn = lambd, recipe, loss_fn
        self.hparams = dict(proj_hidden=proj_hidden, proj_dim=proj_dim, proj_layers=proj_layers,
                            lambd=lambd, recipe=repr(recipe), loss_fn=function_key(loss_fn))

    def training_step(self, images: torch.Tensor, labels: torch.Tensor | None = None):
        """Barlow Twins loss of one batch; ``labels`` are ignored."""
        recipe = self.recipe or views.simclr_recipe(images.shape[-1], colour="strong")
        x = torch.cat(views.two_views(images, recipe))                # (2B, 3, S, S)
        z = self.projector(self.backbone(x))                          # (2B, D)
        z1, z2 = z.chunk(2)
        loss = (self.loss_fn or losses.barlow_twins_loss)(z1, z2, self.lambd)
        with torch.no_grad():
            c = losses.cross_correlation(z1, z2)
            off = c - torch.diag_embed(c.diagonal())
            logs = {"on_diagonal": (1 - c.diagonal()).pow(2).sum().item(),
                    "off_diagonal": off.pow(2).sum().item()}
        return loss, {**logs, **collapse_logs(z)}
