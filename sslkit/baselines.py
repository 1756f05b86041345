"""The baselines every course result is read against, and the report card that lines them up.

An encoder's probe accuracy means little alone. :func:`report_card` puts it next to what one gets
with no pretraining at all (raw pixels, the same network with random weights) and with the labels
alone (the same network trained from scratch on the same few labels), each read by the same two
probes: the evaluation protocol of "Revisiting Self-Supervised Visual Representation Learning"
(2019, arXiv 1901.09005), at the label counts of "Big Self-Supervised Models are Strong
Semi-Supervised Learners" (2020, arXiv 2006.10029).

This module trains (the supervised baseline goes through :func:`sslkit.train.fit`), so it sits
after ``train`` and ``evaluate`` in the data flow; :mod:`sslkit.evaluate` itself never trains.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import pandas as pd
import torch
from torch import nn

from . import plots, views
from ._validate import check_positive_int
from .evaluate import extract_features, knn_accuracy, linear_probe
from .methods import Supervised
from .methods.base import accuracy
from .train import TrainConfig, fit

__all__ = ["reinitialised", "report_card"]


def reinitialised(encoder: nn.Module, seed: int) -> nn.Module:
    """A copy of ``encoder`` with freshly initialised weights (same architecture, seeded); the
    original is left untouched and the caller's random state is not consumed."""
    fresh = copy.deepcopy(encoder)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in fresh.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    return fresh


def report_card(
    encoder: nn.Module,
    splits,
    *,
    labels_per_class: int = 10,
    name: str = "encoder",
    supervised_steps: int = 300,
    supervised_batch_size: int = 128,
    supervised_lr: float = 5e-3,
    seed: int = 0,
    cache: bool = True,
):
    """Judge ``encoder`` against the three baselines every course result is read against.

    With ``n = labels_per_class`` labels per class from ``splits`` (a :class:`sslkit.data.Splits`):

    - **raw pixels**: the normalised image, flattened (``3·S·S`` features);
    - **random init**: the same architecture as ``encoder`` with fresh weights (seeded);
    - **supervised from scratch**: the same architecture trained end to end with cross-entropy
      on the same ``n`` labels per class (light crop/flip augmentation) for
      ``supervised_steps``; its "linear probe" column is its own linear head's test accuracy;
    - **encoder**: the representation being judged.

    Each row gets a linear probe (weight decay chosen on ``splits.val_*``) and a weighted kNN
    (k = min(20, labels)) on the frozen features, scored on ``splits.test_*``.

    Returns ``(table, figure)``: a ``DataFrame`` with columns ``encoder``, ``linear_probe``,
    ``knn``, ``feature_dim`` (accuracies as fractions), and its bar chart
    (:func:`sslkit.plots.report_card_figure`).

    Examples:
        >>> table, fig = report_card(method.backbone, splits, labels_per_class=10, name="SimCLR")
        >>> table.set_index("encoder").loc["SimCLR", "linear_probe"]
    """
    check_positive_int("labels_per_class", labels_per_class)
    check_positive_int("supervised_steps", supervised_steps)
    x_train, y_train = splits.labeled_subset(labels_per_class)
    k = min(20, len(y_train))
    rows = []

    def add(label: str, featurise: Callable[[torch.Tensor], torch.Tensor], probe_acc=None):
        f_train, f_val, f_test = (featurise(x) for x in (x_train, splits.val_x, splits.test_x))
        if probe_acc is None:
            probe_acc = linear_probe(f_train, y_train, f_test, splits.test_y,
                                     val_features=f_val, val_labels=splits.val_y).accuracy
        knn = knn_accuracy(f_train, y_train, f_test, splits.test_y, k=k)
        rows.append({"encoder": label, "linear_probe": probe_acc, "knn": knn,
                     "feature_dim": f_train.shape[1]})

    add("raw pixels", lambda x: views.to_float(x).flatten(1))
    random_init = reinitialised(encoder, seed)
    add("random init", lambda x: extract_features(random_init, x))

    supervised = Supervised(reinitialised(encoder, seed), splits.num_classes)
    config = TrainConfig(steps=supervised_steps, lr=supervised_lr, seed=seed,
                         batch_size=min(supervised_batch_size, len(y_train)))
    fit(supervised, x_train, y_train, config, cache=cache, name="supervised_scratch",
        progress=False)
    logits = extract_features(nn.Sequential(supervised.backbone, supervised.classifier),
                              splits.test_x)
    scratch_acc = accuracy(logits.cpu(), splits.test_y.cpu())
    add(f"supervised from scratch ({labels_per_class}/class)",
        lambda x: extract_features(supervised.backbone, x), probe_acc=scratch_acc)
    add(name, lambda x: extract_features(encoder, x))

    table = pd.DataFrame(rows)
    fig = plots.report_card_figure(table, num_classes=splits.num_classes, k=k,
                                   labels_per_class=labels_per_class, name=name)
    return table, fig
