"""SCAN: a clustering head trained so that an image and its mined neighbours agree.

"SCAN: Learning to Classify Images without Labels" (2020, arXiv 2005.12320). Step 1 (done
before, by any self-supervised method) gives features in which an image's nearest neighbours
mostly share its class. Step 2, this method: a head ``Φ`` maps an image to a distribution over
``K`` clusters and is trained with :func:`sslkit.losses.scan_loss`: the dot product of an
image's and a neighbour's assignments must be large (consistency), while the batch's mean
assignment keeps a high entropy (no cluster takes everything). The result is a classifier
whose clusters can be scored against the classes without a single label
(:func:`sslkit.cluster.cluster_accuracy`). The paper's third step (self-labelling on confident
predictions) is left out.

With ``train_backbone=False`` (default) the pretrained backbone stays frozen (eval mode, no
gradient) and only the head learns, which is the cheapest version and isolates what the loss
does; the paper fine-tunes both.
"""

from __future__ import annotations

import torch
from torch import nn

from .. import losses, views
from .._validate import check_positive_int, check_range, check_tensor
from .base import Method

__all__ = ["SCAN", "mine_neighbours"]


@torch.no_grad()
def mine_neighbours(features: torch.Tensor, k: int, chunk: int = 1024) -> torch.Tensor:
    """The ``k`` nearest neighbours by cosine similarity of every row, itself excluded:
    ``features`` ``(N, D)`` → indices ``(N, k)`` int64, nearest first."""
    check_tensor("features", features, ("N", "D"), min_rows=2)
    check_positive_int("k", k)
    check_range("k", k, 1, features.shape[0] - 1, hint="need more images than neighbours")
    f = torch.nn.functional.normalize(features.float(), dim=1)
    out = []
    for start in range(0, len(f), chunk):
        sim = f[start:start + chunk] @ f.T                                  # (C, N)
        rows = torch.arange(sim.shape[0], device=f.device)
        sim[rows, rows + start] = float("-inf")
        out.append(sim.topk(k, dim=1).indices)
    return torch.cat(out)


class SCAN(Method):
    """SCAN's clustering step: neighbours must share a cluster, clusters must all be used.

    "SCAN: Learning to Classify Images without Labels" (2020, arXiv 2005.12320). Shapes::

        images (B, 3, H, W), index (B,) → neighbours[index] (B, k) → one drawn per image
        anchor view, neighbour view (B, 3, S, S) → backbone → head → logits (B, K) each
        → losses.scan_loss(anchor_logits, neighbour_logits, λ)

    Args:
        backbone: the pretrained encoder.
        neighbours: ``(N, k)`` int64, the mined neighbours of every image of the pool
            (:func:`mine_neighbours` on the pretrained features), in the pool's order.
        num_clusters: ``K`` (the paper uses the number of classes).
        entropy_weight: λ of the entropy term (paper: 5).
        train_backbone: also fine-tune the backbone (default ``False``: frozen).
        recipe: the views of anchors and neighbours (``None``: ``views.simclr_recipe(S,
            colour="strong")``).

    Logs: ``consistency``, ``entropy`` (of the batch's mean assignment; ``log K`` is uniform).
    """

    uses_index = True

    def __init__(self, backbone: nn.Module, neighbours: torch.Tensor, num_clusters: int = 10,
                 entropy_weight: float = 5.0, train_backbone: bool = False,
                 recipe: views.Recipe | None = None):
        super().__init__(backbone)
        check_tensor("neighbours", neighbours, ("N", "k"))
        if neighbours.dtype != torch.long:
            raise ValueError(f"neighbours must be int64 indices, got {neighbours.dtype}")
        check_positive_int("num_clusters", num_clusters)
        check_range("entropy_weight", entropy_weight, 0.0, None)
        if not isinstance(train_backbone, bool):
            raise ValueError(f"train_backbone must be True or False, got {train_backbone!r}")
        views.check_recipe(recipe)
        self.head = nn.Linear(backbone.feature_dim, num_clusters)
        self.register_buffer("neighbours", neighbours.clone())
        self.entropy_weight, self.train_backbone, self.recipe = (entropy_weight, train_backbone,
                                                                 recipe)
        self._pool: torch.Tensor | None = None
        self.hparams = dict(num_clusters=num_clusters, entropy_weight=entropy_weight,
                            train_backbone=train_backbone, recipe=repr(recipe),
                            neighbours=neighbours.shape[1])

    def train(self, mode: bool = True):
        """Train mode for the head; a frozen backbone stays in eval mode (BatchNorm statistics
        of the pretrained encoder are kept)."""
        super().train(mode)
        if not self.train_backbone:
            self.backbone.eval()
        return self

    @torch.no_grad()
    def on_epoch_start(self, epoch: int, images: torch.Tensor) -> None:
        """Keep a reference to the pool, where the neighbours are read from."""
        if images.shape[0] != self.neighbours.shape[0]:
            raise ValueError(f"the pool has {images.shape[0]} images but neighbours has "
                             f"{self.neighbours.shape[0]} rows")
        self._pool = images

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Cluster logits of float views ``(B, 3, S, S)`` → ``(B, K)``; no gradient reaches a
        frozen backbone (the module itself is left as it is: it may be shared with the method
        that pretrained it)."""
        with torch.set_grad_enabled(self.train_backbone and torch.is_grad_enabled()):
            h = self.backbone(x)
        return self.head(h)

    def training_step(self, images: torch.Tensor, labels: torch.Tensor | None = None, *,
                      index: torch.Tensor | None = None):
        """SCAN loss of each image against one of its mined neighbours, drawn at random."""
        if index is None or self._pool is None:
            raise ValueError("SCAN needs index and the pool: train it with sslkit.train.fit")
        nbrs = self.neighbours[index]                                        # (B, k)
        pick = torch.randint(nbrs.shape[1], (len(index),), device=nbrs.device)
        partner = self._pool[nbrs[torch.arange(len(index), device=nbrs.device), pick]
                             .to(self._pool.device)].to(images.device)
        recipe = self.recipe or views.simclr_recipe(images.shape[-1], colour="strong")
        both = self.logits(torch.cat([views.augment(images, recipe),
                                      views.augment(partner, recipe)]))     # (2B, K)
        anchor, neighbour = both.chunk(2)
        loss = losses.scan_loss(anchor, neighbour, self.entropy_weight)
        with torch.no_grad():
            logs = {"consistency": losses.scan_consistency(anchor, neighbour).item(),
                    "entropy": losses.assignment_entropy(anchor).item()}
        return loss, logs
