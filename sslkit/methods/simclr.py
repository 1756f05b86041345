"""SimCLR: two views of each image, an encoder, a projector and the NT-Xent loss.

"A Simple Framework for Contrastive Learning of Visual Representations" (2020,
arXiv 2002.05709). Every image in the batch is augmented twice; each view must find its partner
among the 2B − 1 other views. Nothing but the augmentations says what "the same image" means,
so the recipe decides what the encoder learns to ignore: on ShapeWorld, whose colours are
random, strong colour augmentation is essential (lecture 03 measures what dropping it costs).

The loss is computed on the projector's output ``z = g(h)``; the encoder ``h = f(x)`` is what we
keep and probe. :func:`contrastive_logs` is shared with :mod:`.moco` and :mod:`.supcon`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .. import losses, views
from .._validate import check_optional_function, check_positive_int, check_temperature
from ..models import projector as make_projector
from .base import Method, function_key

__all__ = ["SimCLR", "contrastive_logs"]


@torch.no_grad()
def contrastive_logs(z1: torch.Tensor, z2: torch.Tensor) -> dict[str, float]:
    """Cheap diagnostics of a batch of positive pairs ``z1[i] ↔ z2[i]`` (each ``(B, D)``).

    Among the 2B views: ``pos_sim`` is the mean cosine of the B positive pairs, ``neg_sim`` the
    mean cosine over all other pairs (a view with itself excluded), and ``top1`` the fraction
    of views whose most similar other view is their partner (the contrastive accuracy: what
    the softmax of NT-Xent is trained to get right). A collapsed encoder shows
    ``pos_sim ≈ neg_sim ≈ 1``; a healthy one ``pos_sim`` high and ``neg_sim`` near 0.
    """
    b = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]).detach().float(), dim=1)      # (2B, D)
    with torch.autocast(device_type=z.device.type, enabled=False):
        sim = z @ z.T                                                  # (2B, 2B)
    idx = torch.arange(2 * b, device=z.device)
    pair = torch.cat([idx[b:], idx[:b]])                               # partner of each view
    pos = sim[idx, pair]
    negative = torch.ones_like(sim, dtype=torch.bool)
    negative[idx, idx] = False
    negative[idx, pair] = False
    neg_sim = sim[negative].mean().item() if b > 1 else float("nan")
    top1 = (sim.fill_diagonal_(float("-inf")).argmax(dim=1) == pair).float().mean().item()
    return {"pos_sim": pos.mean().item(), "neg_sim": neg_sim, "top1": top1}


class SimCLR(Method):
    """SimCLR: NT-Xent on the projections of two views of each image.

    "A Simple Framework for Contrastive Learning of Visual Representations" (2020,
    arXiv 2002.05709)::

        images (B, 3, H, W) → two views (B, 3, S, S) each → concatenated (2B, 3, S, S)
        → backbone f → h (2B, feature_dim) → projector g → z (2B, proj_dim) → z1, z2 (B, proj_dim)
        → losses.nt_xent(z1, z2, τ)   (or ``loss_fn(z1, z2, τ)`` if one is given)

    Both views go through the encoder in one batch, so BatchNorm sees both (as SimCLR's global
    BN across devices does). The defaults, τ = 0.2 and a 512 → 128 projector, suit small images at
    batch 128 (``benchmarks/simclr_quick.py`` compares settings).

    Args:
        backbone: encoder ``(N, 3, S, S)`` → ``(N, backbone.feature_dim)``; kept as
            ``.backbone`` and probed.
        proj_hidden: hidden width of the projector MLP (``.projector``; probing after it shows
            what the loss throws away).
        proj_dim: output dimension of the projector.
        temperature: τ > 0 of NT-Xent.
        recipe: the view distribution (``None``: ``views.simclr_recipe(S, colour="strong")`` at
            the images' size ``S``).
        loss_fn: the loss, called as ``loss_fn(z1, z2, temperature)`` on the two views'
            projections ``(B, proj_dim)`` each and returning a scalar tensor (``None``:
            :func:`sslkit.losses.nt_xent`). Lets a learner train with their own NT-Xent
            (exercise 03); ``hparams`` names it by :func:`~sslkit.methods.base.function_key`
            (its name and the hash of its code), so edited code is another cache entry.

    Logs: ``pos_sim``, ``neg_sim``, ``top1`` (see :func:`contrastive_logs`).

    Examples:
        >>> method = SimCLR(models.SmallCNN(), temperature=0.2)
        >>> history = fit(method, splits.unlabeled, config=TrainConfig(steps=500, batch_size=128))
        >>> features = evaluate.extract_features(method.backbone, splits.test_x)
    """

    def __init__(self, backbone: nn.Module, proj_hidden: int = 512, proj_dim: int = 128,
                 temperature: float = 0.2, recipe: views.Recipe | None = None,
                 loss_fn: Callable[..., torch.Tensor] | None = None):
        super().__init__(backbone)
        check_positive_int("proj_hidden", proj_hidden)
        check_positive_int("proj_dim", proj_dim)
        check_temperature(temperature)
        views.check_recipe(recipe)
        check_optional_function("loss_fn", loss_fn, signature="a function "
                                "loss_fn(z1, z2, temperature) -> scalar tensor")
        self.projector = make_projector(backbone.feature_dim, proj_hidden, proj_dim)
        self.temperature, self.recipe = temperature, recipe
        self.loss_fn = loss_fn
        self.hparams = dict(proj_hidden=proj_hidden, proj_dim=proj_dim, temperature=temperature,
                            recipe=repr(recipe), loss_fn=function_key(loss_fn))

    def _recipe(self, images: torch.Tensor) -> views.Recipe:
        return self.recipe or views.simclr_recipe(images.shape[-1], colour="strong")

    def project_views(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Two random views of ``images`` (B, 3, S, S) → their projections, each (B, proj_dim)."""
        v1, v2 = views.two_views(images, self._recipe(images))        # (B, 3, S, S) each
        z = self.projector(self.backbone(torch.cat([v1, v2])))        # (2B, proj_dim)
        return z.chunk(2)

    def training_step(self, images: torch.Tensor, labels: torch.Tensor | None = None):
        """NT-Xent of the two views' projections; ``labels`` are ignored."""
        z1, z2 = self.project_views(images)
        loss = (self.loss_fn or losses.nt_xent)(z1, z2, self.temperature)
        return loss, contrastive_logs(z1, z2)
