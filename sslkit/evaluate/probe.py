"""The linear probe: multinomial logistic regression on frozen features, fit with L-BFGS,
its weight decay chosen on a validation split.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .._validate import check_positive_int, check_range
from .features import _check_features, _check_labels

__all__ = ["ProbeResult", "linear_probe"]


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

    Examples:
        >>> f = lambda x: extract_features(encoder, x)
        >>> result = linear_probe(f(splits.train_x), splits.train_y, f(splits.test_x),
        ...                       splits.test_y, val_features=f(splits.val_x),
        ...                       val_labels=splits.val_y)
        >>> result.accuracy, result.weight_decay
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
