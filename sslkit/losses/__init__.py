"""Losses as pure functions: tensors in, a scalar out, shapes in every docstring.

One module per family of methods; every public name is importable from ``sslkit.losses``:

- :mod:`~sslkit.losses.contrastive` — InfoNCE, NT-Xent (SimCLR), MoCo's loss and queue,
  SupCon (lectures 03–04);
- :mod:`~sslkit.losses.clustering` — SwAV's swapped prediction, SCAN (lecture 05);
- :mod:`~sslkit.losses.distillation` — BYOL's normalised MSE, DINO's loss (lecture 06);
- :mod:`~sslkit.losses.redundancy` — Barlow Twins, VICReg's three terms, W-MSE's whitening
  (lecture 07);
- :mod:`~sslkit.losses.masked` — MAE's masked-patch MSE (lecture 08).

State a loss needs between steps (a queue, a centre, prototypes, pseudo-labels) lives in the
method, never here. :func:`gather_with_grad` and
:func:`rank_offset` let a loss see the embeddings of every rank under ``torchrun``.
"""

from __future__ import annotations

from .._distributed import gather_with_grad, rank_offset
from .clustering import assignment_entropy, scan_consistency, scan_loss, swapped_prediction
from .contrastive import info_nce, moco_loss, nt_xent, supcon_loss, update_queue
from .distillation import dino_loss, normalized_mse
from .masked import masked_mse
from .redundancy import (
    barlow_twins_loss,
    covariance,
    cross_correlation,
    invariance,
    variance,
    vicreg_loss,
    whiten,
    wmse_loss,
)

__all__ = [
    "gather_with_grad", "rank_offset",
    "info_nce", "nt_xent", "moco_loss", "update_queue", "supcon_loss",
    "swapped_prediction", "scan_consistency", "assignment_entropy", "scan_loss",
    "normalized_mse", "dino_loss",
    "cross_correlation", "barlow_twins_loss", "invariance", "variance", "covariance",
    "vicreg_loss", "whiten", "wmse_loss",
    "masked_mse",
]
