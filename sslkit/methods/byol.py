"""BYOL: an online network predicts a slowly moving target network's projection of another view.

"Bootstrap Your Own Latent: A New Approach to Self-Supervised Learning" (2020, arXiv
2006.07733). No negative pair anywhere: the loss only pulls the online prediction of one view
towards the target's projection of the other, which a constant output would satisfy. Two
asymmetries keep that from happening: a **predictor** on the online branch only, and a
**target** that receives no gradient and follows the online weights by an exponential moving
average. Removing the predictor collapses the representation; "The Edge of Orthogonality: A
Simple View of What Makes BYOL Tick" (2023, arXiv 2302.04817) shows that a *linear* predictor
trained this way becomes close to an orthogonal projection (eigenvalues near 0 and 1), which is
what lets it keep directions apart instead of merging them.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from .. import losses, views
from .._validate import check_choice, check_positive_int, check_range
from ..evaluate.diagnostics import collapse_logs
from ..models import predictor as make_predictor
from ..models import projector as make_projector
from .base import Method, ema_update_, momentum_at

__all__ = ["BYOL"]


class BYOL(Method):
    """BYOL with a symmetric loss and an EMA target (backbone + projector).

    Shapes::

        images (B, 3, H, W) → views x1, x2 (B, 3, S, S) → [x1; x2] (2B, 3, S, S)
        online  z = projector(backbone(·))      (2B, proj_dim)   p = predictor(z)   (2B, proj_dim)
        target  t = target_projector(target_backbone(·))   (2B, proj_dim), no gradient
        loss    = ½ [normalized_mse(p1, t2) + normalized_mse(p2, t1)]      in [0, 4]

    :func:`sslkit.losses.normalized_mse` is ``2 − 2·cos``. After each optimiser step the target
    moves towards the online weights, ``θ_t ← m·θ_t + (1 − m)·θ_o``, with ``m`` rising from
    ``momentum`` to 1 on a cosine (:func:`sslkit.methods.base.momentum_at`); the paper uses
    0.996 over hundreds of epochs, and the default here, 0.99, lets the target follow faster
    in short runs.

    Args:
        backbone: encoder ``(N, 3, S, S)`` → ``(N, backbone.feature_dim)``; ``.backbone`` is
            the online encoder we probe, ``.target_backbone`` its moving average.
        proj_hidden, proj_dim: the projector MLP (``.projector``, ``.target_projector``).
        pred_hidden: hidden width of the MLP predictor.
        predictor: ``"mlp"`` (the paper's), ``"linear"`` (one ``proj_dim × proj_dim`` matrix
            without bias, as "The Edge of Orthogonality" studies; read it as
            ``.predictor.weight``) or ``"none"`` (the ablation that collapses).
        momentum: ``m`` in [0, 1) of the target's moving average.
        momentum_schedule: ``"cosine"`` (the paper's) or ``"constant"``.
        recipe: view distribution (``None``: ``views.simclr_recipe(S, colour="strong")``, the
            views of lecture 03; on ShapeWorld colour must be randomised away).

    Logs: ``cos_sim`` (mean cosine of a prediction and its target), ``z_std`` and ``z_rank``
    of the online projections (see :func:`sslkit.evaluate.collapse_logs`).
    """

    def __init__(self, backbone: nn.Module, proj_hidden: int = 512, proj_dim: int = 128,
                 pred_hidden: int = 512, predictor: str = "mlp", momentum: float = 0.99,
                 momentum_schedule: str = "cosine", recipe: views.Recipe | None = None):
        super().__init__(backbone)
        check_positive_int("proj_hidden", proj_hidden)
        check_positive_int("proj_dim", proj_dim)
        check_positive_int("pred_hidden", pred_hidden)
        check_choice("predictor", predictor, ("mlp", "linear", "none"))
        check_range("momentum", momentum, 0.0, 1.0, high_open=True,
                    hint="m = 1 would freeze the target; 0.99-0.996 are usual")
        check_choice("momentum_schedule", momentum_schedule, ("cosine", "constant"))
        views.check_recipe(recipe)
        self.momentum, self.momentum_schedule, self.recipe = momentum, momentum_schedule, recipe
        self.projector = make_projector(backbone.feature_dim, proj_hidden, proj_dim)
        self.predictor = {"mlp": lambda: make_predictor(proj_dim, pred_hidden),
                          "linear": lambda: nn.Linear(proj_dim, proj_dim, bias=False),
                          "none": nn.Identity}[predictor]()
        # The target starts as an exact copy and never receives gradients (requires_grad False
        # also keeps it out of the optimiser built by sslkit.train.fit).
        self.target_backbone = copy.deepcopy(backbone).requires_grad_(False)
        self.target_projector = copy.deepcopy(self.projector).requires_grad_(False)
        self.hparams = dict(proj_hidden=proj_hidden, proj_dim=proj_dim, pred_hidden=pred_hidden,
                            predictor=predictor, momentum=momentum,
                            momentum_schedule=momentum_schedule, recipe=repr(recipe))

    def training_step(self, images: torch.Tensor, labels: torch.Tensor | None = None):
        """Symmetric BYOL loss of one batch; ``labels`` are ignored."""
        recipe = self.recipe or views.simclr_recipe(images.shape[-1], colour="strong")
        x = torch.cat(views.two_views(images, recipe))                # (2B, 3, S, S)
        z = self.projector(self.backbone(x))                          # (2B, D)
        p1, p2 = self.predictor(z).chunk(2)                           # (B, D) each
        with torch.no_grad():
            t1, t2 = self.target_projector(self.target_backbone(x)).chunk(2)
        loss = (losses.normalized_mse(p1, t2) + losses.normalized_mse(p2, t1)) / 2
        return loss, {"cos_sim": 1.0 - loss.item() / 2, **collapse_logs(z)}

    @torch.no_grad()
    def on_step_end(self, step: int, total_steps: int | None) -> None:
        """Moving-average update of the target: ``θ_t ← m·θ_t + (1 − m)·θ_o``."""
        m = momentum_at(self.momentum, self.momentum_schedule, step, total_steps)
        ema_update_(self.target_backbone, self.backbone, m)
        ema_update_(self.target_projector, self.projector, m)
