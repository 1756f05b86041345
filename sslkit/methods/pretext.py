"""Pretext-task methods: invent a label from the image, train a classifier on it, keep the encoder.

Each method below is a backbone, a small classification head and ``F.cross_entropy``; what
differs is how the batch and its targets are built (:mod:`sslkit.pretext` does most of that):

- :class:`RotNet` — which of 0°, 90°, 180°, 270° was the image rotated by? "Unsupervised
  Representation Learning by Predicting Image Rotations" (2018, arXiv 1803.07728).
- :class:`Jigsaw` — which permutation shuffled the tiles? "Unsupervised Learning of Visual
  Representations by Solving Jigsaw Puzzles" (2016, arXiv 1603.09246).
- :class:`PositionPrediction` — where in the image was each patch? A ViT *without* position
  embeddings must answer from content alone. "Position Prediction as an Effective Pretraining
  Strategy" (2022, arXiv 2207.07611).

A pretext is useful only if solving it requires what we later want to read from the features.
Rotation prediction on shapes that are already freely rotated has no answer (every orientation
is equally likely), so it teaches nothing; on upright shapes it forces the network to recognise
the shape. Every method logs ``pretext_acc`` so that notebooks can plot pretext accuracy and
probe accuracy on one axis. Views are light (crop and flip, no colour): the pretext, not the
augmentation, is what the network must solve.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .. import views
from .._validate import check_positive_int, check_range
from ..models import MLP
from ..pretext import jigsaw_batch, jigsaw_permutations, rotation_batch
from .base import Method

__all__ = ["RotNet", "Jigsaw", "PositionPrediction", "light_recipe"]


def light_recipe(size: int) -> views.Recipe:
    """The default view of the pretext methods: random resized crop (scale 0.6-1) and
    horizontal flip, no colour change. ``(B, 3, H, W)`` uint8 → ``(B, 3, size, size)``."""
    return views.Recipe(size=size, crop_scale=(0.6, 1.0), jitter_p=0.0, grayscale_p=0.0)


def _check_recipe(recipe) -> None:
    if recipe is not None and not isinstance(recipe, views.Recipe):
        raise ValueError(f"recipe={recipe!r} is invalid: expected a sslkit.views.Recipe or None")


def _head(in_dim: int, hidden: int, out_dim: int) -> nn.Module:
    """A linear classifier (``hidden=0``) or a two-layer MLP with a BN hidden layer."""
    return nn.Linear(in_dim, out_dim) if hidden == 0 else MLP(in_dim, hidden, out_dim)


def _accuracy(logits: torch.Tensor, targets: torch.Tensor) -> float:
    return (logits.detach().argmax(-1) == targets).float().mean().item()


class RotNet(Method):
    """Rotation prediction: classify each view by the rotation applied to it.

    "Unsupervised Representation Learning by Predicting Image Rotations" (2018,
    arXiv 1803.07728). Each image is viewed once (``recipe``, default :func:`light_recipe`),
    then all four rotations of the view enter the batch together, as the paper found best::

        images (B, 3, H, W) → views (B, 3, S, S) → rotation_batch → (4B, 3, S, S), targets (4B,)
        → backbone → (4B, feature_dim) → head → logits (4B, 4) → cross-entropy

    The backbone therefore sees ``4B`` images per step: ``TrainConfig(batch_size=B)`` costs
    about as much as a contrastive method's two views at ``2B``.

    The default head is linear (the paper's network ends with global pooling and a linear
    classifier); ``head_hidden > 0`` puts a two-layer MLP there instead, which can absorb some of
    the rotation-specific features as a projector does.

    The images must be *upright* (for ShapeWorld: ``max_rotation`` small, e.g.
    ``data.preset("hard", max_rotation=0.35)``); on freely rotated shapes the target cannot be
    predicted and the features stay at chance level.

    Args:
        backbone: encoder ``(N, 3, S, S)`` → ``(N, backbone.feature_dim)``, square inputs.
        recipe: view before rotating (``None``: crop + flip at the images' size).
        head_hidden: hidden width of the MLP head, ``0`` for a linear head.

    Logs: ``pretext_acc``, the fraction of the 4B rotations classified correctly.
    """

    def __init__(self, backbone: nn.Module, recipe: views.Recipe | None = None,
                 head_hidden: int = 0):
        super().__init__(backbone)
        _check_recipe(recipe)
        check_positive_int("head_hidden", head_hidden, allow_zero=True)
        self.recipe = recipe
        self.head = _head(backbone.feature_dim, head_hidden, 4)
        self.hparams = dict(recipe=repr(recipe), head_hidden=head_hidden)

    def training_step(self, images: torch.Tensor, labels: torch.Tensor | None = None):
        """Cross-entropy of the rotation logits ``(4B, 4)`` against ``[0]*B + [1]*B + …``."""
        x = views.augment(images, self.recipe or light_recipe(images.shape[-1]))  # (B, 3, S, S)
        x, targets = rotation_batch(x)                           # (4B, 3, S, S), (4B,)
        logits = self.head(self.backbone(x))                     # (4B, 4)
        loss = F.cross_entropy(logits, targets)
        return loss, {"pretext_acc": _accuracy(logits, targets)}


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
        _check_recipe(recipe)
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
        self.head = _head(n * backbone.feature_dim, head_hidden, len(perms))
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
        x = views.augment(images, self.recipe or light_recipe(images.shape[-1]))  # (B, 3, S, S)
        tiles, targets = jigsaw_batch(x, self.grid, self.permutations)  # (B, n, 3, t, t), (B,)
        tiles = self._random_crop_tiles(tiles)
        b, n = tiles.shape[:2]
        feats = self.backbone(tiles.flatten(0, 1))                      # (B·n, D), shared weights
        logits = self.head(feats.reshape(b, -1))                        # (B, n·D) → (B, P)
        loss = F.cross_entropy(logits, targets)
        return loss, {"pretext_acc": _accuracy(logits, targets)}


class PositionPrediction(Method):
    """Position prediction: a ViT without position embeddings classifies where each patch was.

    "Position Prediction as an Effective Pretraining Strategy" (2022, arXiv 2207.07611). With no
    position embedding a Transformer is permutation-equivariant over its tokens: the only way to
    tell where a patch belongs is to understand its content relative to the other patches. A
    linear head maps every output token to ``N`` logits, one per grid position (row-major, as
    :func:`sslkit.models.patchify`)::

        images (B, 3, H, W) → view (B, 3, S, S) → keep n_keep of the N patches (random)
        → vit.forward_tokens(x, keep_idx) (B, n_keep, dim) → head (B, n_keep, N)
        → cross-entropy against keep_idx (B, n_keep): each kept token's original position

    **Masking.** The paper makes the task harder (and cheaper) by hiding part of the context:
    all patches are queries of the self-attention but only a random subset are keys and values.
    We drop the hidden patches entirely instead (``keep_idx``, as the MAE encoder does), so they
    are neither context nor predicted: ``mask_ratio`` of the patches are removed and each kept
    patch must place itself among a sparse set of others. Compute shrinks with the kept tokens.
    ``mask_ratio=0`` predicts every position from the full image.

    The encoder to probe is the ViT itself (mean-pooled tokens, no position embedding). Built
    with ``pos_embed=True`` the ViT could read the answer from its own position embedding (the
    task becomes trivial; a contrast the notebook may show, not an error).

    Args:
        vit: a :class:`sslkit.models.TinyViT` (``forward_tokens``, ``num_patches``,
            ``image_size``); ``models.backbone("vit_tiny_nopos")`` is the intended one.
        mask_ratio: fraction of patches dropped, in ``[0, 1)``.
        recipe: the view (``None``: crop + flip); its ``size`` must equal ``vit.image_size``.

    Logs: ``pretext_acc``, the fraction of kept tokens whose position is predicted exactly
    (chance is ``1 / N``).
    """

    def __init__(self, vit: nn.Module, mask_ratio: float = 0.5,
                 recipe: views.Recipe | None = None):
        for attr in ("forward_tokens", "num_patches", "image_size", "feature_dim"):
            if not hasattr(vit, attr):
                raise ValueError(
                    f"vit={type(vit).__name__} is invalid: PositionPrediction needs a ViT with "
                    f"`{attr}` (e.g. sslkit.models.backbone('vit_tiny_nopos'))")
        super().__init__(vit)
        check_range("mask_ratio", mask_ratio, 0.0, 1.0, high_open=True)
        _check_recipe(recipe)
        if recipe is not None and recipe.size != vit.image_size:
            raise ValueError(f"recipe={recipe!r} is invalid: its size must equal "
                             f"vit.image_size={vit.image_size} (one logit per patch position)")
        self.mask_ratio, self.recipe = mask_ratio, recipe
        self.num_positions = vit.num_patches
        self.head = nn.Linear(vit.feature_dim, self.num_positions)
        self.hparams = dict(mask_ratio=mask_ratio, recipe=repr(recipe))

    def training_step(self, images: torch.Tensor, labels: torch.Tensor | None = None):
        """Cross-entropy of the position logits ``(B, n_keep, N)`` against the kept indices."""
        vit, n = self.backbone, self.num_positions
        x = views.augment(images, self.recipe or light_recipe(vit.image_size))  # (B, 3, S, S)
        b = x.shape[0]
        n_keep = max(1, int(n * (1 - self.mask_ratio)))
        if n_keep < n:  # a random subset of positions per image, in random order
            keep_idx = torch.rand(b, n, device=x.device).argsort(dim=1)[:, :n_keep]
        else:
            keep_idx = None
        tokens = vit.forward_tokens(x, keep_idx=keep_idx)         # (B, n_keep [+1 cls], dim)
        tokens = tokens[:, tokens.shape[1] - n_keep:]              # drop a class token if any
        targets = keep_idx if keep_idx is not None else \
            torch.arange(n, device=x.device).expand(b, n)          # (B, n_keep)
        logits = self.head(tokens)                                 # (B, n_keep, N)
        loss = F.cross_entropy(logits.reshape(-1, n), targets.reshape(-1))
        return loss, {"pretext_acc": _accuracy(logits, targets)}
