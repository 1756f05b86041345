"""Which patches an encoder may see: per-sample random masking and block masking.

Masked modelling hides part of an image's patches and asks a network to predict what is hidden.
Both patterns here hide exactly ``n_mask = round(N · mask_ratio)`` of ``N`` patches in every
image (so a batch stays rectangular) and return the same three index tensors:

- :func:`random_masking` — each image gets its own uniform random subset, by sorting a row of
  random noise, as in "Masked Autoencoders Are Scalable Vision Learners" (2021, arXiv
  2111.06377);
- :func:`block_masking` — the hidden patches form a few square-ish blocks, closer to
  "Self-Supervised Learning from Images with a Joint-Embedding Predictive Architecture"
  (I-JEPA, 2023, arXiv 2301.08243): a hidden block cannot be filled in by copying a neighbour.

:class:`Masking` carries ``keep_idx`` (the visible patches, what
:meth:`sslkit.models.TinyViT.forward_tokens` takes), ``mask`` (``True`` = hidden, in grid order)
and ``ids_restore``, which puts a ``[visible; mask tokens]`` sequence back in grid order.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ._validate import check_positive_int, check_range

__all__ = ["Masking", "random_masking", "block_masking", "num_masked"]


class Masking(NamedTuple):
    """The masks of one batch (``B`` images, ``N`` patches in grid order).

    With ``ids_shuffle`` ``(B, N)`` a permutation of the patch indices that lists the ``n_keep``
    visible ones first: ``keep_idx`` ``(B, n_keep)`` long is ``ids_shuffle[:, :n_keep]``;
    ``mask`` ``(B, N)`` bool is ``True`` where the patch is hidden; ``ids_restore`` ``(B, N)``
    long is the inverse permutation, ``ids_shuffle[b, ids_restore[b, n]] == n``, so that
    ``seq.gather(1, ids_restore)`` puts a sequence laid out as ``[visible; hidden]`` back in
    grid order.
    """

    keep_idx: torch.Tensor
    mask: torch.Tensor
    ids_restore: torch.Tensor


def num_masked(num_patches: int, mask_ratio: float) -> int:
    """How many of ``num_patches`` a ratio hides: ``round(N · ratio)``, at least 1 hidden and 1
    visible (a ratio that would hide none or all of them is an error)."""
    check_positive_int("num_patches", num_patches)
    check_range("mask_ratio", mask_ratio, 0.0, 1.0, low_open=True, high_open=True)
    n_mask = round(num_patches * mask_ratio)
    if not 0 < n_mask < num_patches:
        raise ValueError(f"mask_ratio={mask_ratio} hides {n_mask} of {num_patches} patches: "
                         "at least one must be hidden and one visible")
    return n_mask


def _from_scores(scores: torch.Tensor, n_mask: int) -> Masking:
    """Hide the ``n_mask`` highest-scoring patches of each row of ``scores`` ``(B, N)``."""
    n_keep = scores.shape[1] - n_mask
    ids_shuffle = scores.argsort(dim=1)                       # lowest scores (visible) first
    ids_restore = ids_shuffle.argsort(dim=1)
    mask = ids_restore >= n_keep                              # ranked among the hidden ones
    return Masking(ids_shuffle[:, :n_keep], mask, ids_restore)


def random_masking(batch_size: int, num_patches: int, mask_ratio: float, *,
                   generator: torch.Generator | None = None,
                   device: torch.device | str | None = None) -> Masking:
    """Hide a uniform random subset of ``round(N · mask_ratio)`` patches, independently per image.

    MAE's recipe: draw noise ``(B, N)`` uniform in [0, 1), sort it; the patches with the
    smallest noise are kept. Sorting makes every subset of that size equally likely and costs
    one ``argsort``, with no loop over images. ``generator`` (on ``device``) makes it
    reproducible.
    """
    check_positive_int("batch_size", batch_size)
    n_mask = num_masked(num_patches, mask_ratio)
    noise = torch.rand(batch_size, num_patches, generator=generator, device=device)
    return _from_scores(noise, n_mask)


def block_masking(batch_size: int, grid: int, mask_ratio: float, *, num_blocks: int = 2,
                  generator: torch.Generator | None = None,
                  device: torch.device | str | None = None) -> Masking:
    """Hide ``round(N · mask_ratio)`` patches of a ``grid × grid`` image as ``num_blocks``
    square-ish blocks.

    Each image draws ``num_blocks`` centres on the grid; a patch's score is minus its
    Chebyshev distance (in patches) to the nearest centre, plus uniform noise below 1 that
    breaks ties at random, so the hidden set grows as squares around the centres and has
    exactly the requested size. Blocks may touch or overlap (then they merge).
    """
    check_positive_int("batch_size", batch_size)
    check_positive_int("grid", grid)
    check_positive_int("num_blocks", num_blocks)
    n_mask = num_masked(grid * grid, mask_ratio)
    rows = torch.arange(grid, device=device).repeat_interleave(grid)          # (N,)
    cols = torch.arange(grid, device=device).repeat(grid)
    centres = torch.randint(grid, (batch_size, num_blocks, 2), generator=generator,
                            device=device)                                    # (B, K, 2)
    dist = torch.maximum((rows - centres[..., :1]).abs(),
                         (cols - centres[..., 1:]).abs())                     # (B, K, N)
    noise = torch.rand(batch_size, grid * grid, generator=generator, device=device)
    return _from_scores(noise - dist.min(dim=1).values.float(), n_mask)
