"""Weighted k-nearest-neighbour classification of frozen features: no training at all.

"Unsupervised Feature Learning via Non-Parametric Instance Discrimination" (2018, arXiv
1805.01978) introduced this vote as the monitor of self-supervised training.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._validate import check_positive_int, check_range
from .features import _check_features, _check_labels

__all__ = ["knn_classify", "knn_accuracy"]


def knn_classify(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    *,
    k: int = 20,
    temperature: float = 0.07,
    num_classes: int | None = None,
    batch_size: int = 1024,
    return_votes: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Weighted kNN on cosine similarity, as in *Unsupervised Feature Learning via
    Non-Parametric Instance Discrimination* (2018, arXiv 1805.01978).

    Each test point finds its ``k`` most cosine-similar training points; neighbour ``i`` with
    similarity ``s_i`` and label ``c_i`` adds ``exp(s_i / temperature)`` to class ``c_i``'s vote and
    the class with the largest vote wins (exact ties go to the smallest class index).
    ``temperature → 0`` turns this into 1-nearest-neighbour, ``temperature → ∞`` into an unweighted
    majority vote of the ``k``. ``k`` is clipped to the number of training points.

    Shapes: ``train_features (N, D)``, ``train_labels (N,)``, ``test_features (M, D)`` →
    predictions ``(M,)`` int64 on ``train_features.device``; with ``return_votes=True`` also the
    votes ``(M, num_classes)``. For numerical safety the votes are computed as
    ``exp((s_i - s_max) / temperature)``, i.e. the paper's votes times one positive factor per
    test point (``exp(-s_max / temperature)``), which changes no prediction. Test points are
    processed ``batch_size`` at a time, so memory is ``O(batch_size · N)``.
    """
    check_positive_int("k", k)
    check_range("temperature", temperature, 0.0, None, low_open=True)
    check_positive_int("batch_size", batch_size)
    _check_features("train_features", train_features)
    _check_features("test_features", test_features, min_rows=0)
    if train_features.shape[1] != test_features.shape[1]:
        raise ValueError(f"train_features and test_features differ in dimension: "
                         f"{train_features.shape[1]} vs {test_features.shape[1]}")
    train_labels = _check_labels("train_labels", train_labels, train_features.shape[0])
    needed = int(train_labels.max()) + 1
    if num_classes is None:
        num_classes = needed
    check_positive_int("num_classes", num_classes)
    if num_classes < needed:
        raise ValueError(
            f"num_classes={num_classes} is invalid: train_labels go up to {needed - 1}"
        )
    device = train_features.device
    train = F.normalize(train_features.float(), dim=1)
    labels = train_labels.to(device)
    k = min(k, train.shape[0])
    preds, all_votes = [], []
    for start in range(0, test_features.shape[0], batch_size):
        test = F.normalize(test_features[start : start + batch_size].to(device).float(), dim=1)
        sim, idx = (test @ train.T).topk(k, dim=1)  # (m, k), sorted descending
        weights = ((sim - sim[:, :1]) / temperature).exp()
        votes = torch.zeros(test.shape[0], num_classes, device=device)
        votes.scatter_add_(1, labels[idx], weights)
        preds.append(votes.argmax(dim=1))
        if return_votes:
            all_votes.append(votes)
    if not preds:
        preds = [torch.zeros(0, dtype=torch.long, device=device)]
        all_votes = [torch.zeros(0, num_classes, device=device)]
    pred = torch.cat(preds)
    return (pred, torch.cat(all_votes)) if return_votes else pred


def knn_accuracy(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    **kwargs,
) -> float:
    """Accuracy in [0, 1] of :func:`knn_classify` (same keyword arguments) on ``test_labels (M,)``.

    The weighted kNN monitor of *Unsupervised Feature Learning via Non-Parametric Instance
    Discrimination* (2018, arXiv 1805.01978)."""
    test_labels = _check_labels("test_labels", test_labels, test_features.shape[0])
    pred = knn_classify(train_features, train_labels, test_features, **kwargs)
    return (pred == test_labels.to(pred.device)).float().mean().item()
