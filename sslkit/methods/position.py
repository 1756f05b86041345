"""Position prediction: where in the image was each patch?

"Position Prediction as an Effective Pretraining Strategy" (2022, arXiv 2207.07611). A ViT
*without* position embeddings must answer from content alone.

A pretext method (see :mod:`sslkit.methods`): light views, a classifier head, ``pretext_acc``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import views
from .._validate import check_range
from .base import Method, accuracy

__all__ = ["PositionPrediction"]


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
        views.check_recipe(recipe)
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
        recipe = self.recipe or views.crop_flip_recipe(vit.image_size)
        x = views.augment(images, recipe)                          # (B, 3, S, S)
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
        return loss, {"pretext_acc": accuracy(logits, targets)}
