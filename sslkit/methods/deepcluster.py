"""DeepCluster: cluster the features, then learn to predict the clusters, and repeat.

"Deep Clustering for Unsupervised Learning of Visual Features" (2018, arXiv 1807.05520). At the
start of every pass over the pool (:meth:`DeepCluster.on_epoch_start`):

1. the current backbone encodes every image of the pool (no augmentation, eval mode);
2. k-means (:func:`sslkit.cluster.kmeans`, spherical on L2-normalised features) splits them
   into ``K`` clusters; the cluster of each image is its **pseudo-label**;
3. the classification head is re-initialised, because cluster 3 of this epoch has nothing to
   do with cluster 3 of the last one.

During the pass the network is trained with cross-entropy to predict the pseudo-label of each
augmented image. Two degenerate solutions and the paper's fixes:

- **empty clusters**: k-means restarts an empty cluster from a far point
  (:func:`sslkit.cluster.kmeans` does it in every Lloyd step);
- **one giant cluster**: if most images share a pseudo-label, predicting it is easy and teaches
  nothing, and the network makes the giant cluster even bigger next epoch. The paper samples
  images uniformly over the clusters; ``balanced=True`` does the same in expectation by weighting
  each image's loss by ``1 / size of its cluster``.

The pseudo-labels and cluster sizes are buffers, so a checkpoint carries them.
"""

from __future__ import annotations

import hashlib
import math

import torch
import torch.nn.functional as F
from torch import nn

from .. import cluster, views
from .._validate import check_positive_int
from ..evaluate.features import extract_features
from .base import Method, accuracy

__all__ = ["DeepCluster"]


class DeepCluster(Method):
    """DeepCluster: k-means pseudo-labels each epoch, cross-entropy against them in between.

    "Deep Clustering for Unsupervised Learning of Visual Features" (2018, arXiv 1807.05520).
    Shapes::

        epoch start:  pool (N, 3, H, W) → backbone → h (N, D) → k-means → targets (N,) in [0, K)
        step:         images (B, 3, H, W), index (B,) → one view (B, 3, S, S) → backbone → head
                      → logits (B, K) → cross-entropy against targets[index]

    Args:
        backbone: encoder ``(N, 3, S, S)`` → ``(N, backbone.feature_dim)``.
        pool_size: ``N``, the number of images ``fit`` trains on (the pseudo-label buffer).
        num_clusters: ``K`` (the paper over-clusters: 10,000 for ImageNet's 1,000 classes).
        balanced: weight each image's loss by the inverse size of its cluster (the paper's
            uniform sampling over clusters).
        recipe: the view of each image (``None``: ``views.simclr_recipe(S, colour="strong")`` at
            the images' size). The paper filters images with Sobel kernels so that k-means does not
            cluster by colour; on ShapeWorld, whose colours are random, the strong colour
            distortion plays that role.
        seed: seed of k-means (epoch ``e`` uses ``seed + e``).
        monitor_labels: ``(N,)`` true classes of the pool, only to log how well this epoch's
            pseudo-labels match them (never used by the loss); ``None``: not logged.

    Logs: ``pseudo_acc`` (accuracy on the pseudo-labels), ``largest_share`` (share of the pool
    in the largest cluster of this epoch) and, with ``monitor_labels``, ``cluster_acc``
    (Hungarian-matched) and ``nmi`` of the pseudo-labels against the classes.
    """

    uses_index = True
    # a fresh head each epoch: this epoch's cluster k is unrelated to the last one's
    reinitialise_head = True

    def __init__(self, backbone: nn.Module, pool_size: int, num_clusters: int = 30,
                 balanced: bool = True, recipe: views.Recipe | None = None, seed: int = 0,
                 monitor_labels: torch.Tensor | None = None):
        super().__init__(backbone)
        check_positive_int("pool_size", pool_size)
        check_positive_int("num_clusters", num_clusters)
        if not 2 <= num_clusters <= pool_size:
            raise ValueError(f"num_clusters={num_clusters} is invalid: must be between 2 and "
                             f"pool_size={pool_size}")
        if not isinstance(balanced, bool):
            raise ValueError(f"balanced must be True or False, got {balanced!r}")
        views.check_recipe(recipe)
        self.head = nn.Linear(backbone.feature_dim, num_clusters)
        self.balanced, self.recipe, self.seed = balanced, recipe, seed
        self.register_buffer("targets", torch.zeros(pool_size, dtype=torch.long))
        self.register_buffer("cluster_sizes", torch.zeros(num_clusters, dtype=torch.long))
        if monitor_labels is not None and tuple(monitor_labels.shape) != (pool_size,):
            raise ValueError(f"monitor_labels must have shape ({pool_size},), got "
                             f"{tuple(monitor_labels.shape)}")
        self.monitor_labels = monitor_labels
        # NaN until the first relabelling (a run resumed mid-epoch logs NaN until the next one)
        self._match = {} if monitor_labels is None else {"cluster_acc": math.nan, "nmi": math.nan}
        self.hparams = dict(pool_size=pool_size, num_clusters=num_clusters, balanced=balanced,
                            recipe=repr(recipe), seed=seed,
                            monitor_labels=None if monitor_labels is None else hashlib.sha256(
                                monitor_labels.cpu().numpy().tobytes()).hexdigest()[:12])

    @torch.no_grad()
    def assign(self, epoch: int, images: torch.Tensor) -> torch.Tensor:
        """Pseudo-labels of the pool ``(N, 3, H, W)`` → ``(N,)`` int64: spherical k-means on the
        backbone's features."""
        features = extract_features(self.backbone, images)                 # (N, D)
        return cluster.kmeans(features, self.head.out_features, metric="cosine", iters=30,
                              seed=self.seed + epoch).assignments

    @torch.no_grad()
    def on_epoch_start(self, epoch: int, images: torch.Tensor) -> None:
        """Relabel the pool (``assign``) and, if ``reinitialise_head``, re-initialise the head."""
        if images.shape[0] != self.targets.shape[0]:
            raise ValueError(f"the pool has {images.shape[0]} images but pool_size="
                             f"{self.targets.shape[0]}")
        self.targets.copy_(self.assign(epoch, images).to(self.targets.device))
        self.cluster_sizes.copy_(torch.bincount(self.targets, minlength=len(self.cluster_sizes)))
        if self.reinitialise_head:
            self.head.reset_parameters()
        if self.monitor_labels is not None:
            self._match = {"cluster_acc": cluster.cluster_accuracy(self.targets,
                                                                   self.monitor_labels),
                           "nmi": cluster.nmi(self.targets, self.monitor_labels)}

    def training_step(self, images: torch.Tensor, labels: torch.Tensor | None = None, *,
                      index: torch.Tensor | None = None):
        """Cross-entropy of one view's logits against the images' pseudo-labels."""
        if index is None:
            raise ValueError(f"{type(self).__name__} needs index (fit passes it)")
        recipe = self.recipe or views.simclr_recipe(images.shape[-1], colour="strong")
        logits = self.head(self.backbone(views.augment(images, recipe)))    # (B, K)
        targets = self.targets[index]
        weight = None
        if self.balanced:
            weight = 1.0 / self.cluster_sizes.clamp_min(1).float()
            weight = weight * (weight.numel() / weight.sum())   # mean weight 1 over clusters
        loss = F.cross_entropy(logits, targets, weight=weight)
        share = (self.cluster_sizes.max() / self.cluster_sizes.sum().clamp_min(1)).item()
        return loss, {"pseudo_acc": accuracy(logits, targets), "largest_share": share,
                      **self._match}
