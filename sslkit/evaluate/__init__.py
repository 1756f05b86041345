"""Evaluate: how a representation is judged.

The protocol of the course is *pretrain → freeze → probe*: the backbone is frozen, its features
are extracted once (:func:`extract_features`), and two cheap classifiers read them:

- a weighted k-nearest-neighbour vote (:func:`knn_classify`, :func:`knn_accuracy`), no training;
- a linear probe, multinomial logistic regression fit with L-BFGS (:func:`linear_probe`).

:func:`label_efficiency` repeats a probe with 1, 10, 100, … labels per class. Label-free
diagnostics read the embedding geometry directly: :func:`embedding_std` (collapse),
:func:`effective_rank` (RankMe), :func:`collapse_logs` (both, per training step),
:func:`alignment` and :func:`uniformity`. A clustering is scored against labels by
:func:`cluster_accuracy`, :func:`nmi` and :func:`ari` (from :mod:`sslkit.cluster`).

One module per idea: ``features``, ``knn``, ``probe``, ``efficiency``, ``diagnostics``. The
report card, which *trains* a baseline, lives in :mod:`sslkit.baselines`, so evaluation never
depends on training.

Feature tensors are ``(N, D)`` floats and labels ``(N,)`` integer class indices; everything runs
on the device the features live on.
"""

from __future__ import annotations

from ..cluster import ari, cluster_accuracy, nmi
from .diagnostics import alignment, collapse_logs, effective_rank, embedding_std, uniformity
from .efficiency import _class_orders, label_efficiency  # noqa: F401 (used by solution 00)
from .features import extract_features
from .knn import knn_accuracy, knn_classify
from .probe import ProbeResult, _stratified_holdout, linear_probe  # noqa: F401 (tests)

__all__ = [
    "extract_features", "knn_classify", "knn_accuracy", "ProbeResult", "linear_probe",
    "label_efficiency", "embedding_std", "effective_rank", "collapse_logs", "alignment",
    "uniformity", "cluster_accuracy", "nmi", "ari",
]
