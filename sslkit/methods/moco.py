"""MoCo: a momentum (EMA) key encoder and a queue of past keys as negatives.

"Momentum Contrast for Unsupervised Visual Representation Learning" (2019, arXiv 1911.05722)
and its v2, "Improved Baselines with Momentum Contrastive Learning" (2020, arXiv 2003.04297),
which adds SimCLR's MLP projector and stronger augmentation. SimCLR's negatives are the other
views of the batch, so more negatives cost a bigger batch. MoCo decouples the two: keys made
by a slowly moving copy of the encoder are kept in a queue of ``Q`` entries for many steps, so a
batch of 32 can be contrasted against thousands of negatives. The slow copy matters: keys made
by a fast-changing encoder would not be comparable with each other, and the paper found that
m = 0.9 already hurts and m = 0 fails to train.

One step, in the order of the paper's Algorithm 1:

1. queries ``q`` from the online encoder (backbone + projector), with gradient;
2. keys ``k`` of the *other* view from the key encoder, as it was before this step, no gradient;
3. InfoNCE of ``q`` against ``[k, queue]`` (:func:`sslkit.losses.moco_loss`);
4. the keys enter the queue (FIFO) — in ``training_step``, after the loss was computed;
5. after the optimiser step, ``on_step_end`` moves the key encoder:
   ``θ_k ← m·θ_k + (1 − m)·θ_q``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .. import losses, views
from .._distributed import rank_world
from .._validate import (
    check_choice,
    check_optional_function,
    check_positive_int,
    check_range,
    check_temperature,
)
from ..models import projector as make_projector
from .base import Method, ema_update_, function_key, momentum_at

__all__ = ["MoCo"]


class MoCo(Method):
    """MoCo v2 with an optional symmetric loss: online encoder, momentum key encoder, queue.

    Shapes (``V = 2`` views used as queries when ``symmetric``, else ``V = 1``)::

        images (B, 3, H, W) → views x1, x2 (B, 3, S, S)
        queries  q = projector(backbone([x1; x2]))                 (V·B, proj_dim), grad
        keys     k = key_projector(key_backbone([x2; x1]))         (V·B, proj_dim), no grad
        loss     = losses.moco_loss(q, k, queue, τ)                queue (Q, proj_dim)
        enqueue  gather(normalize(k))                              V·B·world rows

    **Symmetric loss** (default ``True``): both views serve as queries, each against the key
    of the other view, and the loss is the mean of the two directions, an option of the MoCo
    authors' CIFAR-10 demo (``colab/moco_cifar10_demo.ipynb`` in facebookresearch/moco) and the
    default of MoCo v3 ("An Empirical Study of Training Self-Supervised Vision
    Transformers", 2021, arXiv 2104.02057). At the small batches a CPU affords, it doubles the
    signal per image for the price of one more forward pass. ``symmetric=False`` is the
    paper's one-directional loss; both view keys enter the queue only when symmetric.

    **Momentum.** ``momentum_schedule="constant"`` (default) keeps ``m`` fixed, as the paper
    does (0.999 for 800 epochs; 0.99 suits the few hundred steps of a notebook, as in the
    CIFAR-10 demo). ``"cosine"`` raises it from ``m`` to 1 over the run,
    ``m_t = 1 − (1 − m)·(cos(π t / T) + 1) / 2``, the schedule of BYOL ("Bootstrap your own
    latent", 2020, arXiv 2006.07733); with a time budget (``T`` unknown) it stays at ``m``.

    **Shuffle BN.** The paper's encoders use BatchNorm, whose statistics mix the samples of a
    batch. A query and its positive key are computed on batches holding the same images, while
    the queue's negatives come from older batches; a network can exploit this "signature" of
    the batch to spot the positive without learning anything (the paper saw the pretext
    accuracy jump and the probe fall). MoCo's fix, Shuffle BN, computes the keys on another
    random grouping of the batch across GPUs, so a query and its key are normalised with
    statistics of different images. One device does not remove the leak: by default
    (``bn_splits=1``) one BN batch holds all 2B views, a large group whose signature is weak
    but not absent. ``bn_splits > 1`` emulates Shuffle BN on one device, as that CIFAR-10 demo
    does with a split BatchNorm (8 splits there): both encoders run on ``bn_splits`` chunks,
    the key encoder on a random permutation of the batch (then un-permuted), so each BN group
    of keys holds other images than the matching group of queries. Under DDP each rank
    normalises its own slice, so the same option applies per rank. Symptom to watch: ``top1``
    near 1 early while the probe does not improve.

    The queue and its pointer are buffers: they are saved in checkpoints and in the training
    cache with the weights. The queue starts as random unit vectors.

    Args:
        backbone: encoder ``(N, 3, S, S)`` → ``(N, backbone.feature_dim)``; ``.backbone`` is
            the query encoder we probe, ``.key_backbone`` its momentum copy.
        proj_hidden, proj_dim: the MLP projector of MoCo v2 (``.projector``, ``.key_projector``).
        temperature: τ > 0 (0.2 in MoCo v2).
        queue_size: ``Q`` negatives; must hold at least one step's keys (``V·B·world``).
        momentum: ``m`` in [0, 1) of the key encoder's moving average.
        momentum_schedule: ``"constant"`` or ``"cosine"`` (see above).
        symmetric: use both views as queries (see above).
        bn_splits: BN groups per batch; ``> 1`` emulates Shuffle BN on one device.
        recipe: view distribution (``None``: ``views.simclr_recipe(S, colour="strong")``).
        queue_update_fn: the enqueue, called as ``queue_update_fn(queue, keys, ptr)`` → new
            pointer, in place (``None``: :func:`sslkit.losses.update_queue`).
        momentum_update_fn: the key encoder's update, called as
            ``momentum_update_fn(key_module, query_module, m)`` once for the backbones and once
            for the projectors, in place (``None``: :func:`sslkit.methods.ema_update_` under
            ``torch.no_grad``). The two hooks let a learner train MoCo with their own functions
            (exercise 04); ``hparams`` names them by :func:`~sslkit.methods.base.function_key`
            (name and hash of the code), so edited code is another cache entry.

    Logs: ``pos_sim`` (mean cosine of ``q`` and its key), ``neg_sim`` (mean cosine of ``q`` and
    the queue), ``top1`` (fraction of queries whose key beats every queue entry: the
    contrastive accuracy of the paper's code).
    """

    def __init__(self, backbone: nn.Module, proj_hidden: int = 512, proj_dim: int = 128,
                 temperature: float = 0.2, queue_size: int = 4096, momentum: float = 0.99,
                 momentum_schedule: str = "constant", symmetric: bool = True,
                 bn_splits: int = 1, recipe: views.Recipe | None = None,
                 queue_update_fn: Callable[..., int] | None = None,
                 momentum_update_fn: Callable[..., None] | None = None):
        super().__init__(backbone)
        check_positive_int("proj_hidden", proj_hidden)
        check_positive_int("proj_dim", proj_dim)
        check_temperature(temperature)
        check_positive_int("queue_size", queue_size)
        check_range("momentum", momentum, 0.0, 1.0, high_open=True,
                    hint="m = 1 would freeze the key encoder; 0.99-0.999 are usual")
        check_choice("momentum_schedule", momentum_schedule, ("constant", "cosine"))
        check_choice("symmetric", symmetric, (True, False))
        check_positive_int("bn_splits", bn_splits)
        views.check_recipe(recipe)
        check_optional_function("queue_update_fn", queue_update_fn,
                                signature="a function queue_update_fn(queue, keys, ptr) -> ptr")
        check_optional_function("momentum_update_fn", momentum_update_fn,
                                signature="a function momentum_update_fn(key, query, m)")
        self.queue_update_fn, self.momentum_update_fn = queue_update_fn, momentum_update_fn
        self.temperature, self.momentum = temperature, momentum
        self.momentum_schedule = momentum_schedule
        self.symmetric, self.bn_splits, self.recipe = symmetric, bn_splits, recipe
        self.projector = make_projector(backbone.feature_dim, proj_hidden, proj_dim)
        # The key encoder starts as an exact copy and never receives gradients (requires_grad
        # False also keeps it out of the optimiser built by sslkit.train.fit).
        self.key_backbone = copy.deepcopy(backbone).requires_grad_(False)
        self.key_projector = copy.deepcopy(self.projector).requires_grad_(False)
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, proj_dim), dim=1))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))
        self.hparams = dict(proj_hidden=proj_hidden, proj_dim=proj_dim, temperature=temperature,
                            queue_size=queue_size, momentum=momentum,
                            momentum_schedule=momentum_schedule, symmetric=symmetric,
                            bn_splits=bn_splits, recipe=repr(recipe),
                            queue_update_fn=function_key(queue_update_fn),
                            momentum_update_fn=function_key(momentum_update_fn))

    # ------------------------------------------------------------------------------- encoders
    def _encode(self, backbone: nn.Module, projector: nn.Module, x: torch.Tensor,
                shuffle: bool = False) -> torch.Tensor:
        """``(N, 3, S, S)`` → ``(N, proj_dim)``, BN statistics per chunk of ``N / bn_splits``;
        with ``shuffle`` the chunks are a random grouping (output rows stay in input order)."""
        if self.bn_splits == 1:
            return projector(backbone(x))
        perm = torch.randperm(x.shape[0], device=x.device) if shuffle else None
        if perm is not None:
            x = x[perm]
        z = torch.cat([projector(backbone(chunk)) for chunk in x.chunk(self.bn_splits)])
        return z[perm.argsort()] if perm is not None else z

    def current_momentum(self, step: int, total_steps: int | None) -> float:
        """``m`` after ``step`` of ``total_steps`` optimiser steps (see the class docstring)."""
        return momentum_at(self.momentum, self.momentum_schedule, step, total_steps)

    # ------------------------------------------------------------------------------- training
    def training_step(self, images: torch.Tensor, labels: torch.Tensor | None = None):
        """MoCo loss of one batch; also pushes this batch's keys into the queue."""
        recipe = self.recipe or views.simclr_recipe(images.shape[-1], colour="strong")
        x1, x2 = views.two_views(images, recipe)                      # (B, 3, S, S) each
        x_q = torch.cat([x1, x2]) if self.symmetric else x1           # (V·B, 3, S, S)
        x_k = torch.cat([x2, x1]) if self.symmetric else x2           # each query's other view
        _, world = rank_world()
        keys_per_step = x_k.shape[0] * world                          # V·B·world
        if keys_per_step > self.queue.shape[0]:
            raise ValueError(
                f"queue_size={self.queue.shape[0]} is invalid for this batch: each step enqueues "
                f"{keys_per_step} keys (batch x {2 if self.symmetric else 1} views x ranks); use "
                f"queue_size >= {keys_per_step} (typically many batches)")

        q = self._encode(self.backbone, self.projector, x_q)         # (V·B, D)
        with torch.no_grad():  # keys from the key encoder *before* this step's update
            k = self._encode(self.key_backbone, self.key_projector, x_k, shuffle=True)
            k = F.normalize(k.float(), dim=1)                         # (V·B, D) unit keys
        # The loss keeps the queue for its backward pass, and the enqueue below writes into
        # the buffer in place, so the loss gets a copy (the reference implementation does too).
        queue = self.queue.clone()                                    # (Q, D)
        loss = losses.moco_loss(q, k, queue, self.temperature)
        logs = self._logs(q, k, queue)
        enqueue = self.queue_update_fn or losses.update_queue
        ptr = enqueue(self.queue, losses.gather_with_grad(k), int(self.queue_ptr))
        self.queue_ptr.fill_(int(ptr))
        return loss, logs

    @torch.no_grad()
    def _logs(self, q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor) -> dict[str, float]:
        q = F.normalize(q.detach().float(), dim=1)
        with torch.autocast(device_type=q.device.type, enabled=False):
            l_pos = (q * k).sum(dim=1)                                # (V·B,)
            l_neg = q @ queue.T                                       # (V·B, Q)
        return {"pos_sim": l_pos.mean().item(), "neg_sim": l_neg.mean().item(),
                "top1": (l_pos > l_neg.max(dim=1).values).float().mean().item()}

    @torch.no_grad()
    def on_step_end(self, step: int, total_steps: int | None) -> None:
        """Momentum update of the key encoder: ``θ_k ← m·θ_k + (1 − m)·θ_q``."""
        m = self.current_momentum(step, total_steps)
        update = self.momentum_update_fn or ema_update_
        update(self.key_backbone, self.backbone, m)
        update(self.key_projector, self.projector, m)
