"""Label efficiency: the same probe with 1, 10, 100, … labels per class, on nested subsets.

"Big Self-Supervised Models are Strong Semi-Supervised Learners" (2020, arXiv 2006.10029)
reports its results at 1 % and 10 % of the labels; a curve over the label count shows the
same thing at every budget.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch

from .._validate import check_choice, check_positive_int
from .features import _check_features, _check_labels
from .knn import knn_accuracy
from .probe import linear_probe

__all__ = ["label_efficiency"]


def _class_orders(y: torch.Tensor, seed: int) -> dict[int, torch.Tensor]:
    """``{class: indices of that class in a seeded random order}``; the first ``n`` of each give
    ``n`` labels per class, nested in ``n``."""
    gen = torch.Generator().manual_seed(seed)
    y_cpu = y.cpu()
    orders = {}
    for c in torch.unique(y_cpu).tolist():
        idx = (y_cpu == c).nonzero().squeeze(1)
        orders[c] = idx[torch.randperm(idx.numel(), generator=gen)]
    return orders


def label_efficiency(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    *,
    labels_per_class: Sequence[int | None] = (1, 10, 100, None),
    val_features: torch.Tensor | None = None,
    val_labels: torch.Tensor | None = None,
    method: str = "linear",
    seed: int = 0,
    **method_kwargs,
) -> pd.DataFrame:
    """Accuracy as a function of the number of labels: the label-efficiency curve.

    In the spirit of the 1% / 10% label protocol of *Big Self-Supervised Models are Strong
    Semi-Supervised Learners* (2020, arXiv 2006.10029): for each ``n`` in ``labels_per_class``,
    ``n`` labelled examples of every class are drawn from the training set and a probe
    (``method="linear"``: :func:`linear_probe`, ``"knn"``: :func:`knn_accuracy`; extra keyword
    arguments go to it) is fit on them and scored on the test set. ``None`` means all labels.

    Subsets are *nested*: one seeded permutation per class (``seed``) is drawn and the first ``n``
    of it are taken, so the 10-label set contains the 1-label set and the curve reflects more
    labels, not a luckier draw. If some class has fewer than ``n`` examples a ``ValueError`` is
    raised (a row called "100" that used 50 labels would mislead); use ``None`` for "all".

    Shapes as in :func:`linear_probe`. Returns a ``DataFrame`` with one row per entry and columns
    ``labels_per_class`` (``n`` or ``"all"``), ``n_labels`` (total labels used) and ``accuracy``.
    """
    check_choice("method", method, ("linear", "knn"))
    try:
        labels_per_class = tuple(labels_per_class)
    except TypeError:
        raise ValueError(f"labels_per_class={labels_per_class!r} is invalid: expected a sequence "
                         "of integers >= 1 or None") from None
    if not labels_per_class:
        raise ValueError("labels_per_class=() is invalid: give at least one entry")
    for n in labels_per_class:
        if n is not None:
            check_positive_int("labels_per_class", n, hint=f"got {labels_per_class!r}; "
                               "use None for all labels")
    _check_features("train_features", train_features)
    y = _check_labels("train_labels", train_labels, train_features.shape[0])
    orders = _class_orders(y, seed)
    smallest = min(order.numel() for order in orders.values())
    for n in labels_per_class:
        if n is not None and n > smallest:
            raise ValueError(
                f"labels_per_class={n} is invalid: allowed range is [1, {smallest}] (the "
                f"smallest class has {smallest} labelled examples); use None for all labels"
            )

    rows = []
    for n in labels_per_class:
        if n is None:
            subset = torch.arange(y.shape[0])
        else:
            subset = torch.cat([order[:n] for order in orders.values()]).sort().values
        subset = subset.to(train_features.device)
        x_sub, y_sub = train_features[subset], y[subset]
        if method == "linear":
            acc = linear_probe(x_sub, y_sub, test_features, test_labels, val_features=val_features,
                               val_labels=val_labels, **method_kwargs).accuracy
        else:
            acc = knn_accuracy(x_sub, y_sub, test_features, test_labels, **method_kwargs)
        rows.append({"labels_per_class": "all" if n is None else n,
                     "n_labels": int(subset.numel()), "accuracy": acc})
    return pd.DataFrame(rows, columns=["labels_per_class", "n_labels", "accuracy"])
