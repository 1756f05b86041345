"""Pretext tasks: turn unlabeled images into (inputs, targets) for an ordinary classifier.

A pretext task invents labels from the images themselves; the network is trained with plain
``F.cross_entropy(logits, targets)`` and only the features it had to learn are kept. The idea
of each task therefore lives in how its batch is built, which is what this module does:

- :func:`rotation_batch` — which of 0°, 90°, 180°, 270° was the image rotated by?
  ("Unsupervised Representation Learning by Predicting Image Rotations", 2018, arXiv 1803.07728)
- :func:`jigsaw_batch` with :func:`jigsaw_permutations` — which permutation shuffled the tiles?
  ("Unsupervised Learning of Visual Representations by Solving Jigsaw Puzzles", 2016,
  arXiv 1603.09246)

Both work on any dtype (``uint8`` images stay ``uint8``) and on any device.
"""

from __future__ import annotations

import itertools
import math
from functools import lru_cache

import torch

from ._validate import check_positive_int, check_tensor

__all__ = ["rotation_batch", "jigsaw_permutations", "jigsaw_batch"]


def _check_images(images: torch.Tensor) -> None:
    check_tensor("images", images, ("B", "C", "H", "W"))


def rotation_batch(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every image in all four rotations, labelled by the rotation.

    "Unsupervised Representation Learning by Predicting Image Rotations" (2018,
    arXiv 1803.07728), which found that feeding all four rotations of each image together works
    best. Rotation ``k`` is ``torch.rot90(image, k, dims=(-2, -1))``, i.e. ``k·90°``
    counter-clockwise as the image is displayed; ``torch.rot90(x, -k, dims=(-2, -1))`` undoes it.

    Args:
        images: ``(B, C, H, W)`` with ``H == W`` (so all rotations have the same shape).

    Returns:
        ``(rotated (4B, C, H, W), targets (4B,) int64)``, rotation-major: rows ``k·B … k·B+B−1``
        are all images rotated by ``k·90°`` and have target ``k``.
    """
    _check_images(images)
    if images.shape[-1] != images.shape[-2]:
        raise ValueError(
            f"images must be square to be rotated by 90 degrees, got shape {tuple(images.shape)}"
        )
    b = images.shape[0]
    rotated = torch.cat([torch.rot90(images, k, dims=(-2, -1)) for k in range(4)])
    targets = torch.arange(4, device=images.device).repeat_interleave(b)
    return rotated, targets


@lru_cache(maxsize=4)
def _candidates(grid: int) -> torch.Tensor:
    """All orders of ``grid²`` tiles when there are at most 9! of them, else a fixed random pool."""
    n = grid * grid
    if math.factorial(n) <= math.factorial(9):
        return torch.tensor(list(itertools.permutations(range(n))), dtype=torch.int8)
    g = torch.Generator().manual_seed(0)
    return torch.unique(torch.rand(20_000, n, generator=g).argsort(dim=1).to(torch.int8), dim=0)


@lru_cache(maxsize=16)
def _permutations(grid: int, num: int, seed: int) -> torch.Tensor:
    n = grid * grid
    pool = _candidates(grid)
    if num > len(pool):
        raise ValueError(f"num={num!r} is invalid: at most {len(pool)} for grid={grid}")
    if num == math.factorial(n):
        return pool.long()
    g = torch.Generator().manual_seed(seed)
    chosen = [int(torch.randint(len(pool), (1,), generator=g))]
    min_dist = torch.full((len(pool),), n + 1, dtype=torch.long)
    sum_dist = torch.zeros(len(pool), dtype=torch.long)
    for _ in range(num - 1):
        dist = (pool != pool[chosen[-1]]).sum(dim=1)    # Hamming distance to the newest pick
        min_dist = torch.minimum(min_dist, dist)
        sum_dist += dist
        # Farthest first: maximise the distance to the closest chosen permutation, break ties
        # by the total distance to all chosen ones, then by position in the pool.
        score = min_dist * (n * num + 1) + sum_dist
        chosen.append(int(score.argmax()))
    return pool[chosen].long()


def jigsaw_permutations(grid: int = 2, num: int | None = None, seed: int = 0) -> torch.Tensor:
    """The fixed set of tile permutations a jigsaw network must tell apart.

    "Unsupervised Learning of Visual Representations by Solving Jigsaw Puzzles" (2016,
    arXiv 1603.09246) uses a subset of all ``(grid²)!`` orders chosen so that the permutations
    are far apart in Hamming distance (the number of positions holding different tiles), which
    makes the classes easy to tell apart only for a network that recognises the tiles.

    For ``grid=2`` the default is all 24 permutations (identity first, lexicographic order). For
    a larger grid, or when ``num`` is given, ``num`` permutations (default 100, as in the paper)
    are picked greedily from a seeded start: each new one maximises its minimum Hamming distance
    to those already chosen. The same ``(grid, num, seed)`` always gives the same set.

    Returns:
        ``(P, grid²)`` int64; row ``p`` lists, for each position of the shuffled puzzle, which
        tile (row-major index in the original image) goes there.
    """
    check_positive_int("grid", grid)
    if grid < 2:
        raise ValueError(f"grid={grid!r} is invalid: must be an integer >= 2")
    total = math.factorial(grid * grid)
    if num is None:
        num = total if grid == 2 else 100
    check_positive_int("num", num)
    if num > total:
        raise ValueError(f"num={num!r} is invalid: a {grid}x{grid} grid has only {total} orders")
    return _permutations(grid, num, seed).clone()


def jigsaw_batch(
    images: torch.Tensor,
    grid: int = 2,
    permutations: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut each image into ``grid × grid`` tiles and shuffle them by a random permutation.

    "Unsupervised Learning of Visual Representations by Solving Jigsaw Puzzles" (2016,
    arXiv 1603.09246). Each image draws a permutation index ``t`` from ``permutations``; the
    network sees the shuffled tiles and must predict ``t``. Tiles are ``h = H // grid`` by
    ``w = W // grid`` pixels taken from the centred ``grid·h × grid·w`` crop. (The paper also
    leaves random gaps between tiles so that the network cannot match edges; a method can crop
    each tile further to do the same.)

    Args:
        images: ``(B, C, H, W)``, ``H`` and ``W`` at least ``grid``.
        grid: tiles per side (≥ 2).
        permutations: ``(P, grid²)`` int64, default :func:`jigsaw_permutations` ``(grid)``.
        generator: source of the random permutation indices (the global RNG when ``None``).

    Returns:
        ``(tiles (B, grid², C, h, w), targets (B,) int64)``. ``tiles[b, j]`` is original tile
        ``permutations[targets[b], j]`` (row-major index), so ``restored[:, perm] = tiles``
        reassembles the image.
    """
    _check_images(images)
    check_positive_int("grid", grid)
    if grid < 2:
        raise ValueError(f"grid={grid!r} is invalid: must be an integer >= 2")
    b, c, height, width = images.shape
    h, w = height // grid, width // grid
    if h == 0 or w == 0:
        raise ValueError(
            f"grid={grid} is invalid for images of shape {tuple(images.shape)}: each tile would "
            f"be empty"
        )
    if permutations is None:
        permutations = jigsaw_permutations(grid)
    n = grid * grid
    if permutations.ndim != 2 or permutations.shape[1] != n or permutations.shape[0] == 0:
        raise ValueError(
            f"permutations must have shape (P, {n}) for grid={grid}, got "
            f"{tuple(permutations.shape)}"
        )

    top, left = (height - grid * h) // 2, (width - grid * w) // 2
    crop = images[:, :, top:top + grid * h, left:left + grid * w]
    # (B, C, grid·h, grid·w) → (B, grid, grid, C, h, w) → (B, grid², C, h, w), row-major tiles.
    tiles = crop.reshape(b, c, grid, h, grid, w).permute(0, 2, 4, 1, 3, 5).reshape(b, n, c, h, w)

    gen_device = generator.device if generator is not None else "cpu"
    targets = torch.randint(len(permutations), (b,), generator=generator, device=gen_device)
    targets = targets.to(images.device)
    order = permutations.to(images.device)[targets]                    # (B, grid²)
    shuffled = tiles[torch.arange(b, device=images.device)[:, None], order]
    return shuffled, targets
