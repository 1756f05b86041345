"""Evaluate: how a representation is judged.

The protocol of the course is *pretrain → freeze → probe*: the backbone is frozen, its features
are extracted once (:func:`extract_features`), and two cheap classifiers read them:

- a weighted k-nearest-neighbour vote (:func:`knn_classify`, :func:`knn_accuracy`), no training;
- a linear probe, multinomial logistic regression fit with L-BFGS (:func:`linear_probe`).

:func:`label_efficiency` repeats a probe with 1, 10, 100, … labels per class. Label-free
diagnostics read the embedding geometry directly: :func:`embedding_std` (collapse),
:func:`effective_rank` (RankMe), :func:`alignment` and :func:`uniformity`.

Feature tensors are ``(N, D)`` floats and labels ``(N,)`` integer class indices; everything runs
on the device the features live on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from ._validate import check_choice, check_positive_int, check_range

__all__ = [
    "extract_features", "knn_classify", "knn_accuracy", "ProbeResult", "linear_probe",
    "label_efficiency", "embedding_std", "effective_rank", "alignment", "uniformity",
    "report_card",
]


def _check_features(name: str, z: torch.Tensor, *, min_rows: int = 1) -> torch.Tensor:
    if not isinstance(z, torch.Tensor) or z.ndim != 2:
        shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
        raise ValueError(f"{name} must be a 2-D tensor (N, D), got {shape}")
    if z.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows, got {z.shape[0]}")
    return z


def _check_labels(name: str, y: torch.Tensor, n: int) -> torch.Tensor:
    if not isinstance(y, torch.Tensor) or y.ndim != 1 or y.shape[0] != n:
        shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise ValueError(f"{name} must have shape ({n},), got {shape}")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer class indices, got dtype {y.dtype}")
    if n and int(y.min()) < 0:
        raise ValueError(f"{name} must hold class indices >= 0, got {int(y.min())}")
    return y.long()


# ----------------------------------------------------------------------------------------------
# Features
# ----------------------------------------------------------------------------------------------
def extract_features(
    encoder: nn.Module,
    images: torch.Tensor,
    *,
    batch_size: int = 1024,
    device: torch.device | str | None = None,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Frozen features of ``images``: ``(N, 3, H, W)`` uint8 (any device) → ``(N, D)`` float32.

    The encoder runs in eval mode (BatchNorm uses its running statistics, dropout is off) under
    ``torch.no_grad()``; every submodule's previous train/eval mode is restored afterwards, even
    on error. Images are moved batch by batch to ``device`` (default: the encoder's device),
    converted by ``transform`` (default ``sslkit.views.to_float``, the evaluation path: no
    augmentation) and the features are returned on ``device``.
    """
    check_positive_int("batch_size", batch_size)
    if transform is None:
        from .views import to_float as transform  # the evaluation path of sslkit.views
    if device is None:
        param = next(encoder.parameters(), None)
        device = param.device if param is not None else images.device
    device = torch.device(device)
    modes = [(m, m.training) for m in encoder.modules()]
    encoder.eval()
    chunks = []
    try:
        with torch.no_grad():
            for start in range(0, images.shape[0], batch_size):
                batch = transform(images[start : start + batch_size].to(device))
                chunks.append(encoder(batch).float())
    finally:
        for m, mode in modes:
            m.training = mode
    if not chunks:
        raise ValueError("images is empty: nothing to extract")
    return torch.cat(chunks)


# ----------------------------------------------------------------------------------------------
# k-nearest neighbours
# ----------------------------------------------------------------------------------------------
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


# ----------------------------------------------------------------------------------------------
# Linear probe
# ----------------------------------------------------------------------------------------------
@dataclass
class ProbeResult:
    """What :func:`linear_probe` returns.

    ``accuracy`` (test, in [0, 1]); ``val_accuracy`` of the chosen weight decay on the selection
    split (NaN when nothing was held out); ``weight_decay`` chosen; ``val_accuracies``
    ``{weight_decay: selection accuracy}`` for the whole sweep; ``classifier`` an
    ``nn.Linear(D, C)`` acting on *standardised* features; ``mean`` / ``std`` ``(D,)`` the train
    statistics that standardise them; ``selection`` says which split chose the weight decay
    (``"val"``, ``"holdout"`` or ``"single"``).
    """

    accuracy: float
    val_accuracy: float
    weight_decay: float
    classifier: nn.Linear
    mean: torch.Tensor
    std: torch.Tensor
    val_accuracies: dict[float, float] = field(default_factory=dict)
    selection: str = "val"

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """Raw features ``(M, D)`` → class logits ``(M, C)``."""
        with torch.no_grad():
            x = (features.to(self.mean.device).float() - self.mean) / self.std
            return self.classifier(x)

    def predict(self, features: torch.Tensor) -> torch.Tensor:
        """Raw features ``(M, D)`` → predicted classes ``(M,)``."""
        return self.logits(features).argmax(dim=1)


def _fit_logistic(
    x: torch.Tensor, y: torch.Tensor, num_classes: int, weight_decay: float, max_iter: int
) -> nn.Linear:
    """Minimise ``mean CE(x W^T + b, y) + weight_decay/2 · ‖W‖²`` full-batch with L-BFGS."""
    linear = nn.Linear(x.shape[1], num_classes, device=x.device)
    nn.init.zeros_(linear.weight)  # convex problem: start from zero, deterministically
    nn.init.zeros_(linear.bias)
    opt = torch.optim.LBFGS(
        linear.parameters(), lr=1.0, max_iter=max_iter, history_size=20,
        tolerance_grad=1e-6, tolerance_change=1e-9, line_search_fn="strong_wolfe",
    )

    def closure():
        opt.zero_grad(set_to_none=False)
        loss = F.cross_entropy(linear(x), y)
        if weight_decay:
            loss = loss + 0.5 * weight_decay * linear.weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    linear.requires_grad_(False)
    return linear


def _stratified_holdout(y: torch.Tensor, fraction: float = 0.2, seed: int = 0):
    """Deterministic split: ``floor(fraction · n_c)`` points of each class ``c`` (drawn with a
    seeded permutation) are held out. Returns boolean ``(N,)`` mask of held-out points."""
    gen = torch.Generator().manual_seed(seed)
    y_cpu = y.cpu()
    held = torch.zeros(y_cpu.shape[0], dtype=torch.bool)
    for c in torch.unique(y_cpu).tolist():
        idx = (y_cpu == c).nonzero().squeeze(1)
        n_out = int(fraction * idx.numel())
        if n_out:
            held[idx[torch.randperm(idx.numel(), generator=gen)[:n_out]]] = True
    return held.to(y.device)


def linear_probe(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    *,
    val_features: torch.Tensor | None = None,
    val_labels: torch.Tensor | None = None,
    weight_decays: Sequence[float] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0),
    max_iter: int = 100,
    device: torch.device | str | None = None,
) -> ProbeResult:
    """Linear probe: multinomial logistic regression on frozen, standardised features.

    Shapes: ``train_features (N, D)``, ``train_labels (N,)``, ``test_features (M, D)``,
    ``test_labels (M,)``, optional ``val_features (V, D)`` / ``val_labels (V,)``.

    1. Features are standardised with the *train* mean and std (per dimension).
    2. For each weight decay ``λ`` the objective ``mean cross-entropy + λ/2 · ‖W‖²`` (bias not
       decayed) is minimised full-batch by ``torch.optim.LBFGS`` with a strong-Wolfe line search,
       from zero, for at most ``max_iter`` iterations. It is convex, so the result does not depend
       on a seed.
    3. ``λ`` is chosen by accuracy on the validation split (ties: lower validation
       cross-entropy, then the larger ``λ``). Without a validation split, a deterministic,
       stratified 1/5 of the training set is held out, the sweep is fit on the other 4/5, and
       the chosen ``λ`` is refit on the whole training set (``selection="holdout"``). When every
       class has fewer than 5 examples nothing can be held out; the largest ``λ`` is then taken,
       the safe choice with a handful of labels (``selection="single"``, also used for a single
       ``λ`` without validation data; ``val_accuracy`` is then NaN).

    This is the protocol of *A Simple Framework for Contrastive Learning of Visual
    Representations* (2020, arXiv 2002.05709) and *Big Self-Supervised Models are Strong
    Semi-Supervised Learners* (2020, arXiv 2006.10029), with L-BFGS instead of SGD: on two CPU
    cores 10k × 128 features, 10 classes and four ``λ`` take about 0.2 s when the cores are idle
    and 1-6 s when other work competes for them (``benchmarks/probe.py``). Computation runs on
    ``device`` (default: the train features').
    """
    try:
        weight_decays = tuple(float(wd) for wd in weight_decays)
    except (TypeError, ValueError):
        raise ValueError(f"weight_decays={weight_decays!r} is invalid: expected a sequence of "
                         "floats >= 0") from None
    if not weight_decays:
        raise ValueError("weight_decays=() is invalid: give at least one value >= 0")
    for wd in weight_decays:
        check_range("weight_decays", wd, 0.0, None, hint=f"got weight_decays={weight_decays!r}")
    check_positive_int("max_iter", max_iter)
    if (val_features is None) != (val_labels is None):
        raise ValueError("pass both val_features and val_labels, or neither")
    _check_features("train_features", train_features)
    _check_features("test_features", test_features, min_rows=0)
    dim = train_features.shape[1]
    for name, feats in (("test_features", test_features), ("val_features", val_features)):
        if feats is not None:
            _check_features(name, feats, min_rows=0)
            if feats.shape[1] != dim:
                raise ValueError(f"{name} has dimension {feats.shape[1]}, train_features {dim}")
    device = torch.device(device) if device is not None else train_features.device

    def prep(feats, labels, name):
        labels = _check_labels(name, labels, feats.shape[0])
        return feats.to(device).float(), labels.to(device)

    x_tr, y_tr = prep(train_features, train_labels, "train_labels")
    x_te, y_te = prep(test_features, test_labels, "test_labels")
    has_val = val_features is not None
    if has_val:
        x_va, y_va = prep(val_features, val_labels, "val_labels")
    all_labels = [y_tr, y_te] + ([y_va] if has_val else [])
    num_classes = max(int(y.max()) + 1 for y in all_labels if y.numel())

    mean = x_tr.mean(dim=0)
    std = x_tr.std(dim=0, correction=0).clamp_min(1e-6)
    standardise = lambda x: (x - mean) / std
    x_tr, x_te = standardise(x_tr), standardise(x_te)

    if has_val:
        selection, x_fit, y_fit, x_sel, y_sel = "val", x_tr, y_tr, standardise(x_va), y_va
    else:
        held = _stratified_holdout(y_tr) if len(weight_decays) > 1 else None
        if held is None or not bool(held.any()):
            selection, x_fit, y_fit, x_sel, y_sel = "single", x_tr, y_tr, None, None
        else:
            selection = "holdout"
            x_fit, y_fit, x_sel, y_sel = x_tr[~held], y_tr[~held], x_tr[held], y_tr[held]

    if selection == "single":
        best_wd = max(weight_decays)
        classifier = _fit_logistic(x_fit, y_fit, num_classes, best_wd, max_iter)
        sweep = {best_wd: float("nan")}
        best_acc = float("nan")
    else:
        sweep, best = {}, None
        for wd in weight_decays:
            clf = _fit_logistic(x_fit, y_fit, num_classes, wd, max_iter)
            with torch.no_grad():
                logits = clf(x_sel)
                acc = (logits.argmax(1) == y_sel).float().mean().item()
                ce = F.cross_entropy(logits, y_sel).item()
            sweep[wd] = acc
            key = (acc, -ce if math.isfinite(ce) else -math.inf, wd)
            if best is None or key > best[0]:
                best = (key, wd, clf)
        best_acc, best_wd, classifier = best[0][0], best[1], best[2]
        if selection == "holdout":  # refit the chosen λ on all training labels
            classifier = _fit_logistic(x_tr, y_tr, num_classes, best_wd, max_iter)

    with torch.no_grad():
        test_acc = (classifier(x_te).argmax(1) == y_te).float().mean().item() if y_te.numel() \
            else float("nan")
    return ProbeResult(
        accuracy=test_acc, val_accuracy=best_acc, weight_decay=best_wd, classifier=classifier,
        mean=mean, std=std, val_accuracies=sweep, selection=selection,
    )


# ----------------------------------------------------------------------------------------------
# Label efficiency
# ----------------------------------------------------------------------------------------------
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


# ----------------------------------------------------------------------------------------------
# Label-free diagnostics
# ----------------------------------------------------------------------------------------------
def embedding_std(z: torch.Tensor) -> torch.Tensor:
    """Per-dimension standard deviation of the L2-normalised embeddings: ``(N, D)`` → ``(D,)``.

    The collapse monitor of *Exploring Simple Siamese Representation Learning* (2020, arXiv
    2011.10566): a collapsed encoder (every input → the same vector) gives 0; embeddings spread
    like an isotropic Gaussian give about ``1/sqrt(D)`` in every dimension.
    """
    _check_features("z", z, min_rows=2)
    return F.normalize(z.float(), dim=1).std(dim=0)


def effective_rank(z: torch.Tensor, eps: float = 1e-7) -> float:
    """RankMe, the effective rank of an embedding matrix ``(N, D)`` → float in ``[1, min(N, D)]``.

    From *RankMe: Assessing the Downstream Performance of Pretrained Self-Supervised
    Representations by Their Rank* (2022, arXiv 2210.02885): with singular values ``σ_k`` of
    ``z`` (not centred, as in the paper), ``p_k = σ_k / Σσ + eps`` and
    ``rank = exp(-Σ p_k log p_k)``. It is ``D`` for isotropic data and ``r`` for data spanning ``r``
    equally strong directions; a collapsing method drives it towards 1.
    """
    _check_features("z", z)
    check_range("eps", eps, 0.0, None)
    s = torch.linalg.svdvals(z.double())
    if float(s.sum()) == 0.0:
        return 1.0  # all-zero embeddings: fully collapsed
    p = s / s.sum() + eps
    return float(torch.exp(-(p * p.log()).sum()))


def alignment(z1: torch.Tensor, z2: torch.Tensor, alpha: float = 2.0) -> float:
    """Alignment ``E ‖f(x) - f(y)‖₂^α`` over positive pairs, ``(N, D)``, ``(N, D)`` → float ≥ 0.

    From *Understanding Contrastive Representation Learning through Alignment and Uniformity on
    the Hypersphere* (2020, arXiv 2005.10242); rows are L2-normalised first. Row ``i`` of ``z1`` and
    of ``z2`` are two views of the same input; 0 means perfectly aligned (lower is better).
    """
    check_range("alpha", alpha, 0.0, None, low_open=True)
    _check_features("z1", z1)
    _check_features("z2", z2)
    if z1.shape != z2.shape:
        raise ValueError(f"z1 and z2 must have the same shape, got {tuple(z1.shape)} and "
                         f"{tuple(z2.shape)}")
    z1, z2 = F.normalize(z1.float(), dim=1), F.normalize(z2.float(), dim=1)
    return (z1 - z2).norm(dim=1).pow(alpha).mean().item()


def uniformity(z: torch.Tensor, t: float = 2.0, *, batch_size: int = 1024) -> float:
    """Uniformity ``log E_{i<j} exp(-t ‖f(x_i) - f(x_j)‖₂²)``, ``(N, D)`` → float ≤ 0.

    From *Understanding Contrastive Representation Learning through Alignment and Uniformity on
    the Hypersphere* (2020, arXiv 2005.10242); rows are L2-normalised first. A collapsed set gives
    the maximum, 0; points spread evenly over the sphere give lower (better) values. Computed
    with a log-sum-exp over row blocks of ``batch_size``, so memory is ``O(batch_size · N)``
    rather than the ``N²/2`` distances of ``torch.pdist``.
    """
    check_range("t", t, 0.0, None, low_open=True)
    check_positive_int("batch_size", batch_size)
    _check_features("z", z, min_rows=2)
    z = F.normalize(z.float(), dim=1)
    n = z.shape[0]
    cols = torch.arange(n, device=z.device)
    parts = []
    for start in range(0, n, batch_size):
        block = z[start : start + batch_size]
        sq = (2 - 2 * block @ z.T).clamp_min(0)  # ‖a - b‖² = 2 - 2 a·b on the unit sphere
        rows = torch.arange(start, start + block.shape[0], device=z.device)
        upper = cols.unsqueeze(0) > rows.unsqueeze(1)  # pairs i < j only
        parts.append(torch.logsumexp((-t * sq)[upper], dim=0))
    return (torch.logsumexp(torch.stack(parts), dim=0) - math.log(n * (n - 1) / 2)).item()


# ----------------------------------------------------------------------------- report card
def _reinitialised(encoder: nn.Module, seed: int) -> nn.Module:
    """A copy of ``encoder`` with freshly initialised weights (same architecture, seeded)."""
    import copy

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
    ``knn``, ``feature_dim`` (accuracies as fractions), and a bar chart with the chance level.
    """
    import matplotlib.pyplot as plt

    from . import views
    from .methods import Supervised
    from .train import TrainConfig, fit

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
    random_init = _reinitialised(encoder, seed)
    add("random init", lambda x: extract_features(random_init, x))

    supervised = Supervised(_reinitialised(encoder, seed), splits.num_classes)
    config = TrainConfig(steps=supervised_steps, lr=supervised_lr, seed=seed,
                         batch_size=min(supervised_batch_size, len(y_train)))
    fit(supervised, x_train, y_train, config, cache=cache, name="supervised_scratch",
        progress=False)
    logits = extract_features(nn.Sequential(supervised.backbone, supervised.classifier),
                              splits.test_x)
    scratch_acc = (logits.argmax(1).cpu() == splits.test_y.cpu()).float().mean().item()
    add(f"supervised from scratch ({labels_per_class}/class)",
        lambda x: extract_features(supervised.backbone, x), probe_acc=scratch_acc)
    add(name, lambda x: extract_features(encoder, x))

    table = pd.DataFrame(rows)
    fig, ax = plt.subplots(figsize=(7, 0.6 * len(rows) + 1.2))
    ypos = torch.arange(len(rows)).float()
    ax.barh(ypos - 0.2, table["linear_probe"], height=0.4, label="linear probe")
    ax.barh(ypos + 0.2, table["knn"], height=0.4, label=f"kNN (k={k})")
    ax.axvline(1 / splits.num_classes, color="gray", ls="--", label="chance")
    ax.set_yticks(ypos.tolist(), table["encoder"].tolist())
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"test accuracy ({labels_per_class} labels per class)")
    ax.set_title(f"Report card: {name} vs baselines")
    ax.legend(loc="lower right")
    fig.tight_layout()
    plt.close(fig)
    return table, fig
