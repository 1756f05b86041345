"""SimSiam: BYOL without the moving-average target; the stop-gradient alone prevents collapse.

"Exploring Simple Siamese Representation Learning" (2020, arXiv 2011.10566). Both views go
through the same encoder and projector; a predictor maps one view's projection onto the other's,
and the other side is treated as a constant (stop-gradient). The paper shows that without the
stop-gradient the loss drops to its minimum at once and every output becomes the same vector,
and it reads the method as alternating optimisation: the stop-gradient side plays the role of a
fixed target for one step, as BYOL's target does for many.
"""

from __future__ import annotations

import torch
from torch import nn

from .. import losses, views
from .._validate import check_choice, check_positive_int
from ..evaluate.diagnostics import collapse_logs
from ..models import MLP
from .base import Method

__all__ = ["SimSiam"]


class SimSiam(Method):
    """SimSiam: symmetric negative-cosine loss with a predictor and a stop-gradient.

    Shapes::

        images (B, 3, H, W) → views x1, x2 (B, 3, S, S) → [x1; x2] (2B, 3, S, S)
        z = projector(backbone(·))  (2B, proj_dim)      p = predictor(z)  (2B, proj_dim)
        loss = ½ [D(p1, sg(z2)) + D(p2, sg(z1))],   D(p, z) = −cos(p, z)        in [−1, 1]

    ``D`` is computed as ``normalized_mse / 2 − 1`` (:func:`sslkit.losses.normalized_mse` is
    ``2 − 2·cos``). The projector ends with a BatchNorm without affine parameters and the
    predictor is a bottleneck (``proj_dim → pred_hidden → proj_dim``), as in the paper.

    Args:
        backbone: encoder ``(N, 3, S, S)`` → ``(N, backbone.feature_dim)``; kept and probed.
        proj_hidden, proj_dim: the projector MLP (``.projector``).
        pred_hidden: the predictor's bottleneck width (the paper: a quarter of ``proj_dim``).
        stop_gradient: ``False`` lets the gradient flow through both branches, the ablation
            that collapses.
        recipe: view distribution (``None``: ``views.simclr_recipe(S, colour="strong")``).

    Logs: ``cos_sim`` (mean cosine of a prediction and the other view's projection),
    ``z_std`` and ``z_rank`` of the projections (see :func:`sslkit.evaluate.collapse_logs`).
    """

    def __init__(self, backbone: nn.Module, proj_hidden: int = 512, proj_dim: int = 128,
                 pred_hidden: int = 32, stop_gradient: bool = True,
                 recipe: views.Recipe | None = None):
        super().__init__(backbone)
        check_positive_int("proj_hidden", proj_hidden)
        check_positive_int("proj_dim", proj_dim)
        check_positive_int("pred_hidden", pred_hidden)
        check_choice("stop_gradient", stop_gradient, (True, False))
        views.check_recipe(recipe)
        self.stop_gradient, self.recipe = stop_gradient, recipe
        self.projector = MLP(backbone.feature_dim, proj_hidden, proj_dim, last_batch_norm=True)
        self.predictor = MLP(proj_dim, pred_hidden, proj_dim)
        self.hparams = dict(proj_hidden=proj_hidden, proj_dim=proj_dim, pred_hidden=pred_hidden,
                            stop_gradient=stop_gradient, recipe=repr(recipe))

    def training_step(self, images: torch.Tensor, labels: torch.Tensor | None = None):
        """Symmetric SimSiam loss of one batch; ``labels`` are ignored."""
        recipe = self.recipe or views.simclr_recipe(images.shape[-1], colour="strong")
        x = torch.cat(views.two_views(images, recipe))                # (2B, 3, S, S)
        z = self.projector(self.backbone(x))                          # (2B, D)
        p1, p2 = self.predictor(z).chunk(2)                           # (B, D) each
        target = z.detach() if self.stop_gradient else z              # sg(·)
        t1, t2 = target.chunk(2)
        loss = (losses.normalized_mse(p1, t2) + losses.normalized_mse(p2, t1)) / 4 - 1
        return loss, {"cos_sim": -loss.item(), **collapse_logs(z)}
