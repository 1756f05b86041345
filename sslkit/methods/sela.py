"""SeLa: self-labelling with an equipartition constraint, solved by Sinkhorn-Knopp.

"Self-labelling via simultaneous clustering and representation learning" (2019,
arXiv 1911.05371). DeepCluster labels the pool with k-means on the features; SeLa labels it with
the network's own classifier: each image gets the class its head predicts, under the constraint
that every class receives the same number of images. Without that constraint the labelling has
a perfect, useless optimum: every image in one class (the loss is then zero). The constrained
labelling is an optimal-transport problem whose entropic relaxation Sinkhorn-Knopp solves
quickly (:func:`sslkit.cluster.sinkhorn_knopp`); the pseudo-label is the arg-max of the codes.

``equipartition=False`` is the naive version (pseudo-label = the head's arg-max), kept to show
the collapse the constraint prevents.
"""

from __future__ import annotations

import torch
from torch import nn

from .. import cluster, views
from .._validate import check_positive_int, check_range
from ..evaluate.features import extract_features
from .deepcluster import DeepCluster

__all__ = ["SeLa"]


class SeLa(DeepCluster):
    """SeLa: pseudo-labels from the head's own scores, balanced by Sinkhorn-Knopp.

    "Self-labelling via simultaneous clustering and representation learning" (2019,
    arXiv 1911.05371). Shapes::

        epoch start:  pool (N, 3, H, W) → backbone → head → log-probabilities (N, K)
                      → sinkhorn_knopp(·, ε = 1/λ) (N, K) → arg-max → targets (N,)
        step:         as DeepCluster (cross-entropy against targets[index])

    Unlike DeepCluster the head is kept between epochs (``reinitialise_head = False``): the
    labels are its own predictions.
    The paper's λ = 25 is ``epsilon = 0.04``. The first epoch labels with a random head, as the
    paper does.

    Args:
        equipartition: balance the labelling with Sinkhorn-Knopp (``False``: the head's
            arg-max, the naive self-labelling that collapses).
        epsilon, sinkhorn_iters: of Sinkhorn-Knopp (many iterations: the whole pool is one
            batch and the columns should end close to ``N / K``).
        Other arguments as :class:`DeepCluster` (``balanced`` is off: the constraint balances).
    """

    reinitialise_head = False

    def __init__(self, backbone: nn.Module, pool_size: int, num_clusters: int = 30,
                 equipartition: bool = True, epsilon: float = 0.04, sinkhorn_iters: int = 30,
                 recipe: views.Recipe | None = None, seed: int = 0,
                 monitor_labels: torch.Tensor | None = None):
        super().__init__(backbone, pool_size, num_clusters, balanced=False, recipe=recipe,
                         seed=seed, monitor_labels=monitor_labels)
        if not isinstance(equipartition, bool):
            raise ValueError(f"equipartition must be True or False, got {equipartition!r}")
        check_range("epsilon", epsilon, 0.0, low_open=True)
        check_positive_int("sinkhorn_iters", sinkhorn_iters)
        self.equipartition, self.epsilon, self.sinkhorn_iters = equipartition, epsilon, \
            sinkhorn_iters
        self.hparams.update(equipartition=equipartition, epsilon=epsilon,
                            sinkhorn_iters=sinkhorn_iters)

    @torch.no_grad()
    def assign(self, epoch: int, images: torch.Tensor) -> torch.Tensor:
        """Pseudo-labels of the pool from the head's log-probabilities ``(N, K)``."""
        log_p = extract_features(nn.Sequential(self.backbone, self.head), images).log_softmax(1)
        if not self.equipartition:
            return log_p.argmax(1)
        return cluster.sinkhorn_knopp(log_p, self.epsilon, self.sinkhorn_iters).argmax(1)
