"""DINO: self-distillation with no labels, a centred and sharpened teacher, and multi-crop.

"Emerging Properties in Self-Supervised Vision Transformers" (2021, arXiv 2104.14294). A
student network is trained to match, on every view, the output distribution over ``K``
prototypes that a teacher (the student's moving average) gives to the *global* views. The
teacher's output is **centred** (its running mean over the data is subtracted) and
**sharpened** (a low temperature). Each trick alone leads to a different collapse: sharpening
alone lets one prototype win for every image (one-hot collapse), centring alone flattens the
output to uniform; together they balance. Multi-crop, from SwAV (2020, arXiv 2006.09882), adds
small local crops that the student must map to the teacher's answer on the global views.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from .. import losses, views
from .._validate import (
    check_choice,
    check_optional_function,
    check_positive_int,
    check_range,
    check_temperature,
    check_unit_interval_pair,
)
from ..evaluate.diagnostics import collapse_logs
from ..models import MLP
from .base import Method, ema_update_, function_key, momentum_at

__all__ = ["DINO", "DINOHead", "update_center_"]


@torch.no_grad()
def update_center_(center: torch.Tensor, teacher_logits: torch.Tensor, momentum: float) -> None:
    """DINO's centre update, in place: ``c ← m·c + (1 − m)·mean(teacher_logits)``.

    ``center`` ``(K,)``; ``teacher_logits`` ``(Vt, B, K)`` (or ``(N, K)``): the mean is over every
    view and sample of the step (and every process under DDP, as in the paper's code).
    """
    batch_mean = teacher_logits.detach().float().reshape(-1, center.shape[0]).mean(dim=0)
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(batch_mean)
        batch_mean /= dist.get_world_size()
    center.mul_(momentum).add_(batch_mean, alpha=1.0 - momentum)


class DINOHead(nn.Module):
    """DINO's projection head: MLP → L2-normalise → ``K`` prototypes of unit norm.

    ``(N, in_dim)`` → logits ``(N, K)``, each the cosine of the normalised bottleneck ``(N,
    bottleneck_dim)`` with a prototype (the paper's weight-normalised last layer with its norm
    fixed to 1). ``embed(h)`` returns the normalised bottleneck, ``logits(z)`` its cosines.
    """

    def __init__(self, in_dim: int, hidden_dim: int = 512, bottleneck_dim: int = 64,
                 num_prototypes: int = 256):
        super().__init__()
        check_positive_int("num_prototypes", num_prototypes)
        self.mlp = MLP(in_dim, hidden_dim, bottleneck_dim, num_layers=2, batch_norm=False)
        self.prototypes = nn.Parameter(torch.randn(num_prototypes, bottleneck_dim)
                                       / math.sqrt(bottleneck_dim))

    def embed(self, h: torch.Tensor) -> torch.Tensor:
        """Normalised bottleneck ``(N, bottleneck_dim)``."""
        return F.normalize(self.mlp(h), dim=1)

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        """Cosines ``(N, K)`` of normalised bottleneck vectors ``z`` with the prototypes."""
        return z @ F.normalize(self.prototypes, dim=1).T

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, K)``: ``logits(embed(h))``."""
        return self.logits(self.embed(h))


class DINO(Method):
    """DINO on global and local crops, with centring, sharpening and an EMA teacher.

    Shapes (``V = 2 + n_local`` views)::

        images (B, 3, H, W) → 2 global views (B, 3, S, S), n_local local ones (B, 3, s, s)
        student  s = head(backbone(view))                           (V, B, K)
        teacher  t = teacher_head(teacher_backbone(global view))    (2, B, K), no gradient
        loss     = losses.dino_loss(s, t, center, τ_s, τ_t)         every pair of different views

    The teacher's softmax is ``softmax((t − center) / τ_t)``; after the loss, the centre moves
    towards the mean teacher logit (:func:`update_center_`, momentum ``center_momentum``), and
    after the optimiser step the teacher moves towards the student (``momentum`` on a cosine to 1,
    :func:`sslkit.methods.base.momentum_at`).

    Args:
        backbone: encoder ``(N, 3, S, S)`` → ``(N, backbone.feature_dim)`` (a CNN or a
            :class:`~sslkit.models.TinyViT`; the student's is kept and probed).
        head_hidden, bottleneck_dim, num_prototypes: the :class:`DINOHead` (``K`` prototypes).
        student_temperature: τ_s (0.1 in the paper).
        teacher_temperature: τ_t (0.04 in the paper: sharpening is τ_t < τ_s; τ_t = τ_s removes
            it, the ablation whose output goes uniform).
        centering: ``False`` skips the centre (kept at 0), the ablation that collapses to one
            prototype.
        center_momentum: momentum of the centre's moving average (0.9).
        momentum, momentum_schedule: the teacher's EMA (0.996 and ``"cosine"`` in the paper;
            the default 0.99 lets the teacher follow faster in short runs).
        n_local, local_size, local_scale: multi-crop's small crops (0 switches them off).
        recipe: the global views' distribution (``None``: ``views.simclr_recipe(S,
            colour="strong")``); the local views use it at ``local_size`` and ``local_scale``.
        loss_fn: the loss, called as ``loss_fn(student_logits, teacher_logits, center, τ_s,
            τ_t)`` (``None``: :func:`sslkit.losses.dino_loss`);
        center_update_fn: the centre update, in place, called as
            ``center_update_fn(center, teacher_logits, center_momentum)`` (``None``:
            :func:`update_center_`). The two hooks let a learner train DINO with their own code
            (exercise 06); ``hparams`` names them by the hash of their code.

    Logs: ``teacher_entropy`` (mean entropy of one image's teacher distribution: 0 for one-hot,
    ``log K`` for uniform), ``teacher_mean_entropy`` (entropy of the batch's mean teacher
    distribution: how many prototypes are in use), ``z_std`` and ``z_rank`` of the student's
    normalised bottleneck on the global views.
    """

    def __init__(self, backbone: nn.Module, head_hidden: int = 512, bottleneck_dim: int = 64,
                 num_prototypes: int = 256, student_temperature: float = 0.1,
                 teacher_temperature: float = 0.04, centering: bool = True,
                 center_momentum: float = 0.9, momentum: float = 0.99,
                 momentum_schedule: str = "cosine", n_local: int = 2, local_size: int = 12,
                 local_scale: tuple[float, float] = (0.1, 0.4),
                 recipe: views.Recipe | None = None,
                 loss_fn: Callable[..., torch.Tensor] | None = None,
                 center_update_fn: Callable[..., None] | None = None):
        super().__init__(backbone)
        check_positive_int("head_hidden", head_hidden)
        check_positive_int("bottleneck_dim", bottleneck_dim)
        check_temperature(student_temperature, "student_temperature")
        check_temperature(teacher_temperature, "teacher_temperature")
        check_choice("centering", centering, (True, False))
        check_range("center_momentum", center_momentum, 0.0, 1.0, high_open=True)
        check_range("momentum", momentum, 0.0, 1.0, high_open=True,
                    hint="m = 1 would freeze the teacher; 0.99-0.996 are usual")
        check_choice("momentum_schedule", momentum_schedule, ("cosine", "constant"))
        check_positive_int("n_local", n_local, allow_zero=True)
        check_positive_int("local_size", local_size)
        local_scale = check_unit_interval_pair("local_scale", local_scale)
        views.check_recipe(recipe)
        check_optional_function("loss_fn", loss_fn, signature="a function loss_fn(student_logits"
                                ", teacher_logits, center, student_temp, teacher_temp) -> loss")
        check_optional_function("center_update_fn", center_update_fn,
                                signature="a function center_update_fn(center, teacher_logits, m)")
        self.head = DINOHead(backbone.feature_dim, head_hidden, bottleneck_dim, num_prototypes)
        self.teacher_backbone = copy.deepcopy(backbone).requires_grad_(False)
        self.teacher_head = copy.deepcopy(self.head).requires_grad_(False)
        self.register_buffer("center", torch.zeros(num_prototypes))
        self.student_temperature = student_temperature
        self.teacher_temperature = teacher_temperature
        self.centering, self.center_momentum = centering, center_momentum
        self.momentum, self.momentum_schedule = momentum, momentum_schedule
        self.n_local, self.local_size, self.local_scale = n_local, local_size, local_scale
        self.recipe, self.loss_fn, self.center_update_fn = recipe, loss_fn, center_update_fn
        self.hparams = dict(head_hidden=head_hidden, bottleneck_dim=bottleneck_dim,
                            num_prototypes=num_prototypes,
                            student_temperature=student_temperature,
                            teacher_temperature=teacher_temperature, centering=centering,
                            center_momentum=center_momentum, momentum=momentum,
                            momentum_schedule=momentum_schedule, n_local=n_local,
                            local_size=local_size, local_scale=list(local_scale),
                            recipe=repr(recipe), loss_fn=function_key(loss_fn),
                            center_update_fn=function_key(center_update_fn))

    def _views(self, images: torch.Tensor) -> list[torch.Tensor]:
        recipe = self.recipe or views.simclr_recipe(images.shape[-1], colour="strong")
        local = dataclasses.replace(recipe, size=self.local_size, crop_scale=self.local_scale)
        return views.multi_crop(images, (recipe, recipe), local, self.n_local)

    def training_step(self, images: torch.Tensor, labels: torch.Tensor | None = None):
        """DINO loss over every (teacher global view, other student view) pair."""
        crops = self._views(images)
        b = images.shape[0]
        global_x = torch.cat(crops[:2])                                    # (2B, 3, S, S)
        h = [self.backbone(global_x)] + ([self.backbone(torch.cat(crops[2:]))]
                                         if self.n_local else [])
        z = [self.head.embed(g) for g in h]                   # (2B, bottleneck), (n_local·B, …)
        student = torch.cat([self.head.logits(zi) for zi in z]).view(len(crops), b, -1)  # (V,B,K)
        with torch.no_grad():
            teacher = self.teacher_head(self.teacher_backbone(global_x)).view(2, b, -1)
        center = self.center if self.centering else torch.zeros_like(self.center)
        loss = (self.loss_fn or losses.dino_loss)(student, teacher, center,
                                                  self.student_temperature,
                                                  self.teacher_temperature)
        logs = self._logs(teacher, center, z[0])
        if self.centering:
            (self.center_update_fn or update_center_)(self.center, teacher, self.center_momentum)
        return loss, logs

    @torch.no_grad()
    def _logs(self, teacher: torch.Tensor, center: torch.Tensor, z: torch.Tensor):
        p = F.softmax((teacher.float() - center) / self.teacher_temperature, dim=-1)  # (2, B, K)
        entropy = -(p * p.clamp_min(1e-12).log()).sum(-1).mean().item()
        mean_p = p.reshape(-1, p.shape[-1]).mean(0)
        mean_entropy = -(mean_p * mean_p.clamp_min(1e-12).log()).sum().item()
        return {"teacher_entropy": entropy, "teacher_mean_entropy": mean_entropy,
                **collapse_logs(z)}

    @torch.no_grad()
    def on_step_end(self, step: int, total_steps: int | None) -> None:
        """Moving-average update of the teacher: ``θ_t ← m·θ_t + (1 − m)·θ_s``."""
        m = momentum_at(self.momentum, self.momentum_schedule, step, total_steps)
        ema_update_(self.teacher_backbone, self.backbone, m)
        ema_update_(self.teacher_head, self.head, m)
