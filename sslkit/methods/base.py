"""The shape every pretraining method shares, so that one training loop can run them all.

A *method* is an ``nn.Module`` that owns a ``backbone`` (the encoder we keep and probe), the
heads it needs while training (projector, predictor, classifier…), and one rule:
``training_step(images, labels, index=...)`` turns a batch of raw ``uint8`` images into a
scalar loss.
Views, targets, stop-gradients and queues all live inside the method; the loop in
``sslkit.train`` only does what every method needs (sampling, optimiser, schedule, guards).
"""

from __future__ import annotations

import hashlib
import marshal
import math

import torch
from torch import nn

__all__ = ["Method", "ema_update_", "momentum_at", "accuracy", "function_key"]


def function_key(fn) -> str:
    """How a method's ``hparams`` name a function it was given (a learner's loss, a hook), so
    that a cached run is reused only for the same code: ``"None"`` for the library's default,
    else ``module.qualname@<12 hex digits of the hash of its compiled code>`` (editing and
    re-running a function's cell gives another key; a callable without code is named by its
    ``repr``).
    """
    if fn is None:
        return "None"
    name = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
    code = getattr(fn, "__code__", None)
    body = marshal.dumps(code) if code is not None else repr(fn).encode()
    return f"{name}@{hashlib.sha256(body).hexdigest()[:12]}"


@torch.no_grad()
def ema_update_(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """Move ``target``'s parameters towards ``online``'s, in place: ``θ_t ← m·θ_t + (1 − m)·θ_o``.

    The exponential moving average of a slow *target* (or *key*) network, from "Momentum Contrast
    for Unsupervised Visual Representation Learning" (2019, arXiv 1911.05722), reused by BYOL
    ("Bootstrap Your Own Latent", 2020, arXiv 2006.07733) and DINO (2021, arXiv 2104.14294).
    ``m = 0`` copies the online weights; ``m → 1`` freezes the target. Only parameters move:
    buffers (BatchNorm running statistics) are left as they are, as in the papers' code. The two
    modules must have the same parameters in the same order.
    """
    for p_t, p_o in zip(target.parameters(), online.parameters(), strict=True):
        p_t.mul_(momentum).add_(p_o.detach(), alpha=1.0 - momentum)


def momentum_at(momentum: float, schedule: str, step: int, total_steps: int | None) -> float:
    """The EMA momentum after ``step`` of ``total_steps`` optimiser steps.

    ``schedule="constant"`` keeps ``m``; ``"cosine"`` raises it from ``m`` to 1 over the run,
    ``m_t = 1 − (1 − m)·(cos(π t / T) + 1) / 2``, the schedule of BYOL ("Bootstrap Your Own
    Latent", 2020, arXiv 2006.07733) and DINO (2021, arXiv 2104.14294). With a time budget
    (``total_steps`` unknown) it stays at ``m``.
    """
    if schedule == "constant" or not total_steps:
        return momentum
    t = min(step / total_steps, 1.0)
    return 1.0 - (1.0 - momentum) * (math.cos(math.pi * t) + 1.0) / 2.0


@torch.no_grad()
def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Fraction of rows whose arg-max logit is the target: logits ``(..., K)``, targets ``(...)``
    int64. What a method logs as its pretext or training accuracy."""
    return (logits.argmax(-1) == targets).float().mean().item()


class Method(nn.Module):
    """Base class of every method.

    The contract with :func:`sslkit.train.fit`:

    - ``self.hparams``: a dict of the hyperparameters that change what is learned (part of the
      training cache key);
    - :meth:`training_step` (required): a batch of raw images → ``(loss, logs)``;
    - ``uses_index = True`` (class attribute): ``fit`` then also passes ``index``, the position
      of each sample of the batch in the training pool, so a method can keep per-sample state
      (pseudo-labels, mined neighbours, a memory bank);
    - :meth:`on_epoch_start` (optional): run on the whole pool each time the sampler starts a
      new pass over it (re-clustering, refreshing targets, schedules by epoch);
    - :meth:`on_step_end` (optional): run after each optimiser step (an EMA target, a queue).

    State that a hook computes (pseudo-labels, prototypes, a queue) belongs in buffers
    (``register_buffer``), so that checkpoints and the training cache carry it.
    """

    uses_index: bool = False

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.hparams: dict = {}

    def training_step(
        self, images: torch.Tensor, labels: torch.Tensor | None = None, *,
        index: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Return ``(loss, logs)`` for a batch of ``uint8`` images ``(B, 3, H, W)``.

        ``labels`` ``(B,)`` is given only to methods trained with labels; ``index`` ``(B,)``
        int64 (positions in the pool, on the training device) only to methods with
        ``uses_index``; methods without it may leave ``index`` out of their signature.
        ``logs`` holds extra scalars to keep in the training history (accuracies, loss terms).
        """
        raise NotImplementedError

    @torch.no_grad()
    def on_epoch_start(self, epoch: int, images: torch.Tensor) -> None:
        """Hook run before the first step of each pass over the pool (``epoch`` counts from 0).

        ``images`` is the whole ``uint8`` pool ``(N, 3, H, W)``, in the order ``index``
        refers to. ``fit`` puts the method back in training mode afterwards. Under DDP every
        rank calls it with the same pool and the same weights: keep its result identical on
        all ranks (same seed, or compute on rank 0 and broadcast). Default: nothing.
        """

    @torch.no_grad()
    def on_step_end(self, step: int, total_steps: int | None) -> None:
        """Hook run after each optimiser step (``step`` counts from 1). Default: nothing."""

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None, *,
                index: torch.Tensor | None = None):
        """Same as :meth:`training_step` (see the comment below)."""
        # ``forward`` is ``training_step`` so that DistributedDataParallel, which wraps
        # ``forward``, synchronises gradients for every method without special cases.
        if index is None:
            return self.training_step(images, labels)
        return self.training_step(images, labels, index=index)
