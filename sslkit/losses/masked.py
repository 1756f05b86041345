"""Masked-modelling losses: reconstruct what the encoder did not see.

- :func:`masked_mse` — MAE's loss: mean squared error on the *masked* patches only, against
  per-patch normalised pixels ("Masked Autoencoders Are Scalable Vision Learners", 2021,
  arXiv 2111.06377). Visible patches are excluded: reconstructing what was seen teaches nothing.
"""

from __future__ import annotations

import torch

from .._validate import check_tensor

__all__ = ["masked_mse"]


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, *,
               norm_pix: bool = True, eps: float = 1e-6) -> torch.Tensor:
    """MAE's reconstruction loss.

    ``pred``, ``target`` ``(B, N, P)``: predicted and true patches (``N`` patches of ``P`` values,
    as :func:`sslkit.models.patchify` lays them out); ``mask`` ``(B, N)``, 1 (or True) where the
    patch was hidden from the encoder. With ``norm_pix`` each target patch is standardised by its
    own mean and variance (``(t − mean) / sqrt(var + eps)``), the paper's default, which it found
    gives better features than raw pixels. Returns the mean over masked patches of the per-patch
    mean squared error; a mask with no hidden patch is an error (the loss would be 0/0).
    """
    check_tensor("pred", pred, ("B", "N", "P"))
    if target.shape != pred.shape or mask.shape != pred.shape[:2]:
        raise ValueError(f"pred {tuple(pred.shape)}, target {tuple(target.shape)} and mask "
                         f"{tuple(mask.shape)} must be (B, N, P), (B, N, P) and (B, N)")
    target = target.float()
    if norm_pix:
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)
        target = (target - mean) / (var + eps).sqrt()
    mask = mask.float()
    hidden = mask.sum()
    if hidden == 0:
        raise ValueError("mask hides no patch: the loss is defined on masked patches only")
    per_patch = (pred.float() - target).pow(2).mean(dim=-1)          # (B, N)
    return (per_patch * mask).sum() / hidden
