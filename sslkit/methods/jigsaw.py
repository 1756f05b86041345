"""Jigsaw: which permutation shuffled the tiles?

"Unsupervised Learning of Visual Representations by Solving Jigsaw Puzzles" (2016,
arXiv 1603.09246).

A pretext method (see :mod:`sslkit.methods`): light views, a classifier head, ``pretext_acc``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .. import views
from .._validate import check_positive_int, check_range
from ..models import classifier_head
from ..pretext import jigsaw_batch, jigsaw_permutations
from .base import Method, accuracy

__all__ = ["Jigsaw"]


class Jigsaw(Method):
    """Jigsaw puzzles: predict which of a fixed set of permutations shuffled the tiles.

    "Unsupervised Learning of Visual Representations by Solving Jigsaw Puzzles" (2016,
    arXiv 1603.09246). The view is cut into ``grid × grid`` tiles (``pretext.jigsaw_batch``),
    each tile is cropped at a random offset to ``tile - jitter`` pixels (the paper's gaps: edges
    of neighbouring tiles no longer line up, so the network must recognise *what* each tile
    shows, not continue lines across borders), every tile goes through the *same* backbone (the
    paper's "context-free" siamese network), and an MLP on the concatenated features names the
    permutation::

        images (B, 3, H, W) → view (B, 3, S, S) → tiles (B, n, 3, t, t), n = grid², t = S//grid
        → random crop (B, n, 3, t - jitter, t - jitter) → backbone → (B·n, D) → (B, n·D)
        → head → logits (B, P) → cross-entropy against the permutation index

    The backbone must accept ``t - jitter`` pixel inputs (``SmallCNN`` does down to 8×8: 12×12
    tiles of a 32×32 image become 1×1 after its three poolings). The probe later feeds it whole
    images, a change of scale the paper accepts as well. The paper also normalises every tile
    on its own and jitters colour per tile against chromatic shortcuts; we keep the view simple.

    Args:
        backbone: encoder ``(N, 3, t', t')`` → ``(N, backbone.feature_dim)``.
        grid: tiles per side (≥ 2).
        num_permutations: number of permutation classes ``P`` (default: all 24 for ``grid=2``,
            100 otherwise), chosen far apart by :func:`sslkit.pretext.jigsaw_permutations`.
        jitter: pixels cut from each tile side at a random offset (0 = no gap).
        head_hidden: hidden width of the MLP head (``0``: linear).
        recipe: view before cutting (``None``: crop + flip at the images' size).
        permutation_seed: seed of the permutation subset.

    Logs: ``pretext_acc``, the fraction of puzzles whose permutation is predicted.
    """

    def __init__(self, backbone: nn.Module, grid: int = 2, num_permutations: int | None = None,
                 jitter: int = 4, head_hidden: int = 512, recipe: views.Recipe | None = None,
                 permutation_seed: int = 0):
        super().__init__(backbone)
        views.check_recipe(recipe)
        check_positive_int("grid", grid)
        check_range("grid", grid, 2, None)
        if num_permutations is not None:
            check_positive_int("num_permutations", num_permutations)
            check_range("num_permutations", num_permutations, 1, math.factorial(grid * grid),
                        hint=f"a {grid}x{grid} grid has (grid²)! orders")
        check_positive_int("jitter", jitter, allow_zero=True)
        check_positive_int("head_hidden", head_hidden, allow_zero=True)
        perms = jigsaw_permutations(grid, num_permutations, permutation_seed)  # (P, grid²)
        self.grid, self.jitter, self.recipe = grid, jitter, recipe
        # Not persistent: a function of (grid, num_permutations, seed), which are in hparams.
        self.register_buffer("permutations", perms, persistent=False)     # (P, grid²)
        n = grid * grid
        self.head = classifier_head(n * backbone.feature_dim, head_hidden, len(perms))
        self.hparams = dict(grid=grid, num_permutations=len(perms), jitter=jitter,
                            head_hidden=head_hidden, recipe=repr(recipe),
                            permutation_seed=permutation_seed)

    def _random_crop_tiles(self, tiles: torch.Tensor) -> torch.Tensor:
        """``(B, n, C, t, t)`` → ``(B, n, C, t - jitter, t - jitter)``, each tile cropped at its
        own random offset in ``[0, jitter]`` (rows and columns drawn independently)."""
        if self.jitter == 0:
            return tiles
        b, n, c, h, w = tiles.shape
        ch, cw = h - self.jitter, w - self.jitter
        if ch < 1 or cw < 1:
            raise ValueError(f"jitter={self.jitter} is invalid for {h}x{w} tiles: must be < {h}")
        off = torch.randint(0, self.jitter + 1, (2, b, n, 1), device=tiles.device)
        rows = off[0] + torch.arange(ch, device=tiles.device)            # (B, n, ch)
        cols = off[1] + torch.arange(cw, device=tiles.device)            # (B, n, cw)
        tiles = tiles.gather(3, rows[:, :, None, :, None].expand(b, n, c, ch, w))
        return tiles.gather(4, cols[:, :, None, None, :].expand(b, n, c, ch, cw))

    def training_step(self, images: torch.Tensor, labels: torch.Tensor | None = None):
        """Cross-entropy of the permutation logits ``(B, P)`` against each puzzle's index."""
        recipe = self.recipe or views.crop_flip_recipe(images.shape[-1])
        x = views.augment(images, recipe)                        # (B, 3, S, S)
        tiles, targets = jigsaw_batch(x, self.grid, self.permutations)  # (B, n, 3, t, t), (B,)
        tiles = self._random_crop_tiles(tiles)
        b, n = tiles.shape[:2]
        feats = self.backbone(tiles.flatten(0, 1))                      # (B·n, D), shared weights
        logits = self.head(feats.reshape(b, -1))                        # (B, n·D) → (B, P)
        loss = F.cross_entropy(logits, targets)
        return loss, {"pretext_acc": accuracy(logits, targets)}
