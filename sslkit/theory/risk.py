"""How far a learner is from the best possible one: excess risk, and its curves over ``m``, ``n``.

:func:`excess_risk` measures the error above the Bayes error (:func:`bayes_risk`), exactly in
expectation over the label given each test point; :func:`excess_risk_curves` sweeps the unlabeled
count ``m``, the labeled count ``n`` and seeded trials for pretrain-then-ERM and supervised ERM;
:func:`fit_rate_constants` fits the decay the theory predicts to those curves. *On the Provable
Advantage of Unsupervised Pretraining* (2023, arXiv 2303.01566).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from .._validate import check_choice, check_positive_int, check_range
from .erm import HEADS, pretrain_then_erm, supervised_erm
from .mixture import Problem, fit_em

__all__ = ["excess_risk", "bayes_risk", "excess_risk_curves", "fit_rate_constants"]

LOSSES = ("zero_one", "log")


def excess_risk(p_true: torch.Tensor, p_pred: torch.Tensor, loss: str = "zero_one") -> torch.Tensor:
    """Risk of a predictor above the Bayes risk, averaged over test points ``x``.

    ``p_true`` ``(..., N, C)`` is the true ``p(y | x)`` at ``N`` test points, ``p_pred`` the
    prediction (same shape or with extra leading axes). The expectation over ``y`` is exact:

    - ``"zero_one"``: predicting ``ŷ = argmax p_pred`` errs with probability ``1 − p_true[ŷ]``,
      the Bayes classifier with ``1 − max p_true``, so the excess is
      ``mean_x (max_y p_true − p_true[ŷ])`` ≥ 0 point by point;
    - ``"log"``: ``mean_x KL(p_true || p_pred)``.

    Returns ``(...)``. Only the Monte-Carlo average over ``x`` is noisy.
    """
    check_choice("loss", loss, LOSSES)
    if loss == "zero_one":
        yhat = p_pred.argmax(-1, keepdim=True)
        p_true = p_true.expand(*p_pred.shape[:-1], p_true.shape[-1])
        return (p_true.max(-1).values - p_true.gather(-1, yhat)[..., 0]).mean(-1)
    logq = p_pred.clamp_min(1e-30).log()
    logp = p_true.clamp_min(1e-30).log()
    return (p_true * (logp - logq)).sum(-1).mean(-1)


def bayes_risk(p_true: torch.Tensor) -> torch.Tensor:
    """The lowest achievable error rate, ``mean_x (1 − max_y p(y | x))``.

    ``p_true`` ``(..., N, C)`` → ``(...)``."""
    return (1 - p_true.max(-1).values).mean(-1)


def excess_risk_curves(
    problem: Problem,
    ms: Sequence[int],
    ns: Sequence[int],
    *,
    trials: int = 20,
    test_size: int = 20_000,
    head: str = "logistic",
    l2: float = 1.0,
    loss: str = "zero_one",
    em_iters: int = 100,
    n_init: int = 2,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> pd.DataFrame:
    """Excess risk of pretrain-then-ERM (for every ``m``) and of supervised ERM, for every ``n``.

    Every trial draws one pool of ``max(ms)`` unlabeled and one of ``max(ns)`` labeled points and
    uses their first ``m`` and ``n``: curves are nested and every method sees the same labels,
    so differences between curves are not sampling luck. The mixture is fit once per ``m``
    (batched over trials), the heads once per ``(m, n)``; the risk is measured on one shared
    seeded test set of ``test_size`` points with :func:`excess_risk`.

    Returns a tidy frame with columns ``method`` (``"pretrain"`` / ``"supervised"``), ``m``
    (0 for supervised), ``n``, ``trial``, ``excess_risk``; ``.attrs["bayes_risk"]`` holds the
    Bayes error rate on the test set.
    """
    check_positive_int("trials", trials)
    check_positive_int("test_size", test_size)
    check_choice("head", head, HEADS)
    check_choice("loss", loss, LOSSES)
    k, c = problem.mixture.num_components, problem.num_classes
    for m in ms:
        check_positive_int("m", m)
        check_range("m", m, k, hint="EM needs at least as many unlabeled points as components")
    for n in ns:
        check_positive_int("n", n)
    x_test, _ = problem.sample(test_size, 1, seed=seed + 1)
    x_test = x_test[0].to(device)
    p_test = problem.bayes_proba(x_test.cpu()).to(device)
    x_pool, y_pool = (v.to(device) for v in problem.sample(max(ns), trials, seed=seed + 2))
    x_unlab, _ = problem.sample(max(ms), trials, seed=seed + 3)
    x_unlab = x_unlab.to(device)
    rows = []

    def add(method, m, n, risks):
        rows.extend({"method": method, "m": m, "n": n, "trial": i, "excess_risk": float(r)}
                    for i, r in enumerate(risks.cpu()))

    for n in ns:
        sup = supervised_erm(x_pool[:, :n], y_pool[:, :n], c, l2=l2)
        add("supervised", 0, n, excess_risk(p_test, sup.predict_proba(x_test), loss))
    for j, m in enumerate(ms):
        mix = fit_em(x_unlab[:, :m], k, iters=em_iters, n_init=n_init, seed=seed + 100 + j).mixture
        for n in ns:
            clf = pretrain_then_erm(None, x_pool[:, :n], y_pool[:, :n], k, c, head=head,
                                    l2=l2, mixture=mix)
            add("pretrain", m, n, excess_risk(p_test, clf.predict_proba(x_test), loss))
    frame = pd.DataFrame(rows)
    frame.attrs["bayes_risk"] = float(bayes_risk(p_test))
    return frame


def fit_rate_constants(
    frame: pd.DataFrame,
    *,
    n_min: int = 10,
    m_min: int = 300,
    gammas: Sequence[float] | None = None,
) -> dict[str, float]:
    """Fit the shapes the theory predicts to the median curves of :func:`excess_risk_curves`.

    Pretrained: ``excess ≈ a/m^γ + b/n^γ`` — a part that shrinks with the unlabeled count and a
    part that shrinks with the labeled count; supervised: ``excess ≈ c/n^γ``, with one shared
    exponent ``γ``. The theorem of *On the Provable Advantage of Unsupervised Pretraining* (2023,
    arXiv 2303.01566) guarantees ``γ = 1/2`` in the worst case (its bounds are square roots of
    complexity/count); easy, low-noise problems decay faster, up to ``γ = 1``.

    For every ``γ`` of the grid ``gammas`` (default 0.3 … 1.5), ``a, b ≥ 0`` and ``c`` are least
    squares in relative terms (each median weighted by its own size); the ``γ`` with the smallest
    total relative error wins. Only ``n ≥ n_min`` and ``m ≥ m_min`` enter: the shapes describe a
    learner past its first few examples. Returns ``{"a", "b", "c", "gamma", "rel_rmse"}``.
    """
    med = frame[frame.n >= n_min].groupby(["method", "m", "n"]).excess_risk.median().reset_index()
    pre = med[(med.method == "pretrain") & (med.m >= m_min)]
    sup = med[med.method == "supervised"]
    if pre.empty or sup.empty:
        raise ValueError("no pretrain or supervised rows left after n_min/m_min filtering")
    grid = np.linspace(0.3, 1.5, 121) if gammas is None else np.asarray(gammas, float)
    m_pre, n_pre = pre.m.to_numpy(float), pre.n.to_numpy(float)
    y_pre, n_sup, y_sup = (pre.excess_risk.to_numpy(float), sup.n.to_numpy(float),
                           sup.excess_risk.to_numpy(float))
    best = None
    for gamma in grid:
        design = np.stack([m_pre ** -gamma, n_pre ** -gamma], 1) / y_pre[:, None]
        ab, *_ = np.linalg.lstsq(design, np.ones_like(y_pre), rcond=None)
        ab = np.maximum(ab, 0.0)
        x_sup = n_sup ** -gamma / y_sup
        c = float(x_sup.sum() / np.square(x_sup).sum())
        resid = np.concatenate([design @ ab - 1, c * x_sup - 1])
        err = float(np.sqrt(np.mean(np.square(resid))))
        if best is None or err < best["rel_rmse"]:
            best = {"a": float(ab[0]), "b": float(ab[1]), "c": c, "gamma": float(gamma),
                    "rel_rmse": err}
    return best

