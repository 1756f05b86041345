"""SwAV: predict the cluster code of one view from another view, with balanced codes.

"Unsupervised Learning of Visual Features by Contrasting Cluster Assignments" (2020,
arXiv 2006.09882). Instead of comparing two views' embeddings directly (SimCLR), SwAV compares
their *cluster assignments* against ``K`` learnable prototypes:

1. every view is encoded and projected to the unit sphere, ``z`` ``(B, D)``;
2. its scores against the normalised prototypes ``c`` ``(K, D)`` are ``z · cᵀ`` ``(B, K)``;
3. the two global views' scores become **codes** by Sinkhorn-Knopp
   (:func:`sslkit.cluster.sinkhorn_knopp`): soft assignments that use every prototype equally
   over the batch, without gradient;
4. each global view's code is predicted from the scores of every *other* view
   (:func:`sslkit.losses.swapped_prediction`), small crops of multi-crop included.

The equipartition of step 3 is what keeps the assignment from collapsing into one prototype;
multi-crop adds cheap low-resolution views that must predict the codes of the global ones.
For the first ``freeze_prototypes_steps`` steps the prototypes get no gradient (the paper freezes
them for the first epoch), so they do not chase an encoder that is still random.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .. import cluster, losses, views
from .._validate import (
    check_optional_function,
    check_positive_int,
    check_range,
    check_temperature,
)
from ..models import projector as make_projector
from .base import Method, function_key

__all__ = ["SwAV", "code_logs"]


@torch.no_grad()
def code_logs(codes: torch.Tensor) -> dict[str, float]:
    """Diagnostics of Sinkhorn codes ``(V, B, K)`` (rows summing to 1).

    ``code_entropy``: mean entropy of one sample's code, in nats (0: hard, one prototype per
    sample; ``log K``: uniform, the sample says nothing); ``usage_entropy``: entropy of the
    share of samples whose strongest prototype is each ``k`` (``log K`` when the batch spreads
    evenly over the prototypes, 0 when it all picks one); ``largest_share``: that share for
    the most used prototype.
    """
    codes = codes.float()
    k = codes.shape[-1]
    entropy = -torch.special.xlogy(codes, codes).sum(-1).mean()
    share = torch.bincount(codes.argmax(-1).flatten(), minlength=k).float()
    share = share / share.sum()
    usage = -torch.special.xlogy(share, share).sum()
    return {"code_entropy": entropy.item(), "usage_entropy": usage.item(),
            "largest_share": share.max().item()}


class SwAV(Method):
    """SwAV with multi-crop: swapped prediction of Sinkhorn codes against learnable prototypes.

    "Unsupervised Learning of Visual Features by Contrasting Cluster Assignments" (2020,
    arXiv 2006.09882). Shapes (``V = 2 + n_local`` views)::

        images (B, 3, H, W) → 2 global views (B, 3, S, S), n_local small ones (B, 3, s, s)
        → backbone → projector → z, L2-normalised             (V, B, proj_dim)
        scores = z · normalize(prototypes)ᵀ                    (V, B, K)
        codes  = sinkhorn_fn(scores[:2], ε, iters)             (2, B, K), no gradient
        loss   = losses.swapped_prediction(scores, codes, τ)

    The prototypes are re-normalised to unit length before every step, as in the paper.

    Args:
        backbone: encoder ``(N, 3, S, S)`` → ``(N, backbone.feature_dim)``; it must accept
            both view sizes (global average pooling does).
        num_prototypes: ``K``; the paper uses 3,000 for ImageNet and notes that more prototypes
            than classes help.
        proj_hidden, proj_dim: the projector MLP (as SimCLR's).
        temperature: τ of the softmax over prototype scores (paper: 0.1).
        epsilon: ε of Sinkhorn-Knopp (paper: 0.05): smaller gives harder codes.
        sinkhorn_iters: rescaling rounds (paper: 3).
        n_local: number of small crops of multi-crop (0 switches multi-crop off).
        recipe: the global views (``None``: ``views.simclr_recipe(S)`` at the images' size).
        local_size, local_scale: size and crop-scale range of the small crops (the global
            recipe's colour distortion, a smaller crop).
        freeze_prototypes_steps: steps during which the prototypes get no gradient.
        sinkhorn_fn: the code computation, called as ``sinkhorn_fn(scores, epsilon, iters)`` on
            ``(B, K)`` scores and returning ``(B, K)`` codes (``None``:
            :func:`sslkit.cluster.sinkhorn_knopp`); lets a learner train with their own
            (exercise 05), named in ``hparams`` by its code's hash.

    Logs: ``code_entropy``, ``usage_entropy``, ``largest_share`` (:func:`code_logs`).
    """

    def __init__(self, backbone: nn.Module, num_prototypes: int = 30, proj_hidden: int = 512,
                 proj_dim: int = 128, temperature: float = 0.1, epsilon: float = 0.05,
                 sinkhorn_iters: int = 3, n_local: int = 4, recipe: views.Recipe | None = None,
                 local_size: int = 12, local_scale: tuple[float, float] = (0.1, 0.4),
                 freeze_prototypes_steps: int = 0,
                 sinkhorn_fn: Callable[..., torch.Tensor] | None = None):
        super().__init__(backbone)
        check_positive_int("num_prototypes", num_prototypes)
        if num_prototypes < 2:
            raise ValueError(f"num_prototypes must be >= 2, got {num_prototypes}")
        check_positive_int("proj_hidden", proj_hidden)
        check_positive_int("proj_dim", proj_dim)
        check_temperature(temperature)
        check_range("epsilon", epsilon, 0.0, low_open=True)
        check_positive_int("sinkhorn_iters", sinkhorn_iters)
        check_positive_int("n_local", n_local, allow_zero=True)
        check_positive_int("local_size", local_size)
        check_positive_int("freeze_prototypes_steps", freeze_prototypes_steps, allow_zero=True)
        views.check_recipe(recipe)
        check_optional_function("sinkhorn_fn", sinkhorn_fn, signature="a function "
                                "sinkhorn_fn(scores, epsilon, iters) -> codes")
        self.projector = make_projector(backbone.feature_dim, proj_hidden, proj_dim)
        self.prototypes = nn.Linear(proj_dim, num_prototypes, bias=False)   # weight (K, D)
        self.temperature, self.epsilon, self.sinkhorn_iters = temperature, epsilon, sinkhorn_iters
        self.n_local, self.recipe, self.sinkhorn_fn = n_local, recipe, sinkhorn_fn
        self.local_size, self.local_scale = local_size, tuple(local_scale)
        self.freeze_prototypes_steps = freeze_prototypes_steps
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))
        self.hparams = dict(num_prototypes=num_prototypes, proj_hidden=proj_hidden,
                            proj_dim=proj_dim, temperature=temperature, epsilon=epsilon,
                            sinkhorn_iters=sinkhorn_iters, n_local=n_local, recipe=repr(recipe),
                            local_size=local_size, local_scale=list(self.local_scale),
                            freeze_prototypes_steps=freeze_prototypes_steps,
                            sinkhorn_fn=function_key(sinkhorn_fn))

    def _views(self, images: torch.Tensor) -> list[torch.Tensor]:
        recipe = self.recipe or views.simclr_recipe(images.shape[-1], colour="strong")
        local = dataclasses.replace(recipe, size=self.local_size, crop_scale=self.local_scale)
        return views.multi_crop(images, (recipe, recipe), local, self.n_local)

    def scores(self, images: torch.Tensor) -> torch.Tensor:
        """Prototype scores of every view: ``(B, 3, H, W)`` → ``(V, B, K)`` cosines."""
        crops = self._views(images)
        groups = [torch.cat(crops[:2])] + ([torch.cat(crops[2:])] if self.n_local else [])
        z = torch.cat([self.projector(self.backbone(g)) for g in groups])  # (V·B, D)
        z = F.normalize(z, dim=1)
        weight = self.prototypes.weight
        if self.steps_done < self.freeze_prototypes_steps:
            weight = weight.detach()
        return (z @ weight.T).view(len(crops), images.shape[0], -1)

    def training_step(self, images: torch.Tensor, labels: torch.Tensor | None = None):
        """Swapped prediction over all views; ``labels`` are ignored."""
        with torch.no_grad():
            self.prototypes.weight.copy_(F.normalize(self.prototypes.weight, dim=1))
        scores = self.scores(images)                                     # (V, B, K)
        sinkhorn = self.sinkhorn_fn or cluster.sinkhorn_knopp
        codes = torch.stack([sinkhorn(s.detach(), self.epsilon, self.sinkhorn_iters)
                             for s in scores[:2]])                      # (2, B, K)
        loss = losses.swapped_prediction(scores, codes, self.temperature)
        return loss, code_logs(codes)

    @torch.no_grad()
    def on_step_end(self, step: int, total_steps: int | None) -> None:
        """Count steps, for the prototypes' frozen start."""
        self.steps_done += 1
