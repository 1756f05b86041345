"""Losses as pure functions: tensors in, a scalar out, shapes in every docstring.

One module per family of methods; every public name is importable from ``sslkit.losses``:

- :mod:`~sslkit.losses.contrastive` — InfoNCE, NT-Xent (SimCLR), MoCo's loss and queue,
  SupCon.

The families of the lectures to come get a module each when their losses are written:
``clustering`` (swapped prediction, SCAN), ``distillation`` (BYOL, DINO), ``redundancy``
(Barlow Twins, VICReg) and ``masked`` (MAE). State a loss needs between steps (a queue, a
centre, prototypes) lives in the method, never here. :func:`gather_with_grad` and
:func:`rank_offset` let a loss see the embeddings of every rank under ``torchrun``.
"""

from __future__ import annotations

from .._distributed import gather_with_grad, rank_offset
from .contrastive import info_nce, moco_loss, nt_xent, supcon_loss, update_queue

__all__ = [
    "gather_with_grad", "rank_offset", "info_nce", "nt_xent", "moco_loss", "update_queue",
    "supcon_loss",
]
