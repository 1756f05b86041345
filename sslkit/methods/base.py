"""The shape every pretraining method shares, so that one training loop can run them all.

A *method* is an ``nn.Module`` that owns a ``backbone`` (the encoder we keep and probe), the
heads it needs while training (projector, predictor, classifier…), and one rule:
``training_step(images, labels)`` turns a batch of raw ``uint8`` images into a scalar loss.
Views, targets, stop-gradients and queues all live inside the method; the loop in
``sslkit.train`` only does what every method needs (sampling, optimiser, schedule, guards).
"""

from __future__ import annotations

import torch
from torch import nn


class Method(nn.Module):
    """Base class of every method.

    Subclasses set ``self.hparams`` (a dict of the hyperparameters that change what is learned,
    used in the training cache key) and implement :meth:`training_step`. Methods with extra rules
    after the optimiser step (an EMA target, a queue) override :meth:`on_step_end`.
    """

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.hparams: dict = {}

    def training_step(
        self, images: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Return ``(loss, logs)`` for a batch of ``uint8`` images ``(B, 3, H, W)``.

        ``labels`` ``(B,)`` is given only to methods trained with labels. ``logs`` holds extra
        scalars to keep in the training history (accuracies, loss terms).
        """
        raise NotImplementedError

    @torch.no_grad()
    def on_step_end(self, step: int, total_steps: int | None) -> None:
        """Hook run after each optimiser step (``step`` counts from 1). Default: nothing."""

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None):
        """Same as :meth:`training_step` (see the comment below)."""
        # ``forward`` is ``training_step`` so that DistributedDataParallel, which wraps
        # ``forward``, synchronises gradients for every method without special cases.
        return self.training_step(images, labels)
