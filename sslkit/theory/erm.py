"""The second stage of pretrain-then-ERM, and the supervised baseline it is compared with.

``ψ``, the small predictor fit on top of the pretrained representation ``φ`` by empirical risk
minimisation (ERM) on ``n`` labeled points, is either a multinomial logistic regression on the
``K`` log-posteriors (:class:`LogisticModel`, :func:`fit_logistic`) or a vote that names each
component's class (:class:`VoteHead`, :func:`fit_vote_head`); :func:`pretrain_then_erm` chains
both stages into a :class:`PretrainedClassifier`. The baseline (:func:`supervised_erm`) is the
same logistic regression on the raw ``x``. With a shared variance, the posterior's logits are
*linear* in ``x``, so ``ψ∘φ`` is exactly a logistic regression on ``x``: both learners search the
same function class, and only the pretrained one had help choosing ``d·K`` of its parameters.
*On the Provable Advantage of Unsupervised Pretraining* (2023, arXiv 2303.01566).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._validate import check_choice, check_positive_int, check_range
from .mixture import GaussianMixture, fit_em, log_joint, log_posterior

__all__ = [
    "LogisticModel", "fit_logistic", "VoteHead", "fit_vote_head", "PretrainedClassifier",
    "pretrain_then_erm", "supervised_erm",
]


@dataclass
class LogisticModel:
    """``p(y | f) = softmax(f W + b)``: ``weight`` ``(..., D, C)``, ``bias`` ``(..., C)``."""

    weight: torch.Tensor
    bias: torch.Tensor

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """``(..., N, D)`` → ``(..., N, C)``."""
        return features @ self.weight + self.bias[..., None, :]

    def predict_proba(self, features: torch.Tensor) -> torch.Tensor:
        """Class probabilities: ``(..., N, D)`` → ``(..., N, C)``."""
        return torch.softmax(self.logits(features), -1)


def _logistic_objective(f1, y1h, w, l2):
    nll = -(y1h * torch.log_softmax(f1 @ w, -1)).sum((-1, -2))
    return nll + 0.5 * l2 * w.square().sum((-1, -2))


def fit_logistic(
    features: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    *,
    l2: float = 1.0,
    iters: int = 30,
    tol: float = 1e-6,
) -> LogisticModel:
    """ERM for multinomial logistic regression with an L2 penalty, by damped Newton steps.

    Minimises ``Σ_i −log p(y_i | f_i) + (l2/2)·(||W||² + ||b||²)``; penalising every parameter
    keeps the problem strictly convex even when ``n`` is smaller than the feature count.
    ``features`` ``(T, N, D)`` and ``labels`` ``(T, N)`` int64 hold ``T`` independent problems
    (or ``(N, D)``, ``(N,)`` for one). Newton's method needs about ten steps here; each step tries
    step sizes 1, 1/2, 1/4, 1/8 and keeps the best, so the objective never increases, and the
    loop stops once no problem's objective improves by a relative ``tol``. Returns a
    :class:`LogisticModel` batched like ``features``.
    """
    check_positive_int("num_classes", num_classes)
    check_range("l2", l2, 0.0, low_open=True)
    check_positive_int("iters", iters)
    single = features.ndim == 2
    f = features[None] if single else features
    y = labels[None] if single else labels
    if y.shape != f.shape[:2]:
        raise ValueError(f"labels must have shape {tuple(f.shape[:2])}, got {tuple(y.shape)}")
    check_positive_int("n", f.shape[1])
    t, n, dim = f.shape
    c = num_classes
    kw = dict(dtype=f.dtype, device=f.device)
    f1 = torch.cat([f, torch.ones(t, n, 1, **kw)], -1)  # (T, N, D+1)
    y1h = torch.nn.functional.one_hot(y, c).to(f.dtype)
    p = dim + 1
    reg = l2 * torch.eye(p * c, **kw)  # parameters ordered (feature, class)
    w = torch.zeros(t, p, c, **kw)
    steps = torch.tensor([1.0, 0.5, 0.25, 0.125], **kw)
    rows = torch.arange(t, device=f.device)
    obj = _logistic_objective(f1, y1h, w, l2)
    for _ in range(iters):
        prob = torch.softmax(f1 @ w, -1)
        grad = f1.transpose(1, 2) @ (prob - y1h) + l2 * w
        # Hessian of the NLL: Σ_i (f_i f_iᵀ) ⊗ (diag(p_i) − p_i p_iᵀ)
        s = torch.diag_embed(prob) - prob[..., :, None] * prob[..., None, :]  # (T, N, C, C)
        fs = (f1[..., :, None] * s.reshape(t, n, 1, c * c)).reshape(t, n, p * c * c)
        hess = (f1.transpose(1, 2) @ fs).reshape(t, p, p, c, c).transpose(2, 3)
        hess = hess.reshape(t, p * c, p * c) + reg
        delta = torch.linalg.solve(hess, grad.reshape(t, p * c, 1)).reshape(t, p, c)
        cand = w[None] - steps[:, None, None, None] * delta[None]  # (S, T, p, c)
        objs = _logistic_objective(f1[None], y1h[None], cand, l2)  # (S, T)
        best = objs.argmin(0)
        new_obj = objs[best, rows]
        gain = obj - new_obj
        improve = gain > 0
        w = torch.where(improve[:, None, None], cand[best, rows], w)
        obj = torch.where(improve, new_obj, obj)
        if float((gain / (1 + obj.abs())).max()) < tol:
            break
    w = w[0] if single else w
    return LogisticModel(w[..., :-1, :], w[..., -1, :])


@dataclass
class VoteHead:
    """``ψ``: every mixture component votes for one class. ``table`` ``(..., K, C)`` is one-hot.

    ``p̂(y | x) = Σ_k φ_k(x)·table[k, y]``: the posterior mass of the components that vote ``y``.
    """

    table: torch.Tensor

    def predict_proba(self, posterior: torch.Tensor) -> torch.Tensor:
        """``posterior`` ``(..., N, K)`` → ``(..., N, C)``."""
        return posterior @ self.table


def fit_vote_head(posterior: torch.Tensor, labels: torch.Tensor, num_classes: int) -> VoteHead:
    """ERM over the finite class of maps {components} → {classes}: a soft majority vote.

    The map ``g`` maximising the expected number of correct training labels,
    ``Σ_i Σ_k φ_k(x_i)·[g(k) = y_i]``, decomposes over components: each component takes the class
    with the largest posterior-weighted count. A component no labeled point belongs to still gets
    the class of the labeled points nearest to it in posterior terms (its tiny soft counts).
    ``posterior`` ``(..., n, K)``, ``labels`` ``(..., n)`` int64 → :class:`VoteHead`.
    """
    check_positive_int("num_classes", num_classes)
    check_positive_int("n", posterior.shape[-2])
    y1h = torch.nn.functional.one_hot(labels, num_classes).to(posterior.dtype)
    counts = posterior.transpose(-1, -2) @ y1h  # (..., K, C)
    table = torch.nn.functional.one_hot(counts.argmax(-1), num_classes).to(posterior.dtype)
    return VoteHead(table)


HEADS = ("vote", "logistic")


@dataclass
class PretrainedClassifier:
    """``ψ∘φ``: the pretrained mixture ``φ`` (frozen) and a head ``ψ`` fit on its output."""

    mixture: GaussianMixture
    head: VoteHead | LogisticModel | None = None

    def representation(self, x: torch.Tensor) -> torch.Tensor:
        """``φ(x)``: the posterior over components, ``(..., N, d)`` → ``(..., N, K)``."""
        return log_posterior(x, self.mixture).exp()

    def head_input(self, x: torch.Tensor) -> torch.Tensor:
        """What the head reads: ``φ(x)`` for a vote, the centred log-posterior for a logistic head
        (centring changes nothing a softmax sees and keeps the numbers finite)."""
        if isinstance(self.head, LogisticModel):
            lp = log_joint(x, self.mixture)
            return lp - lp.mean(-1, keepdim=True)
        return self.representation(x)

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """``p̂(y | x)``: ``(..., N, d)`` → ``(..., N, C)``."""
        return self.head.predict_proba(self.head_input(x))


def pretrain_then_erm(
    x_unlabeled: torch.Tensor | None,
    x_labeled: torch.Tensor,
    y_labeled: torch.Tensor,
    num_components: int,
    num_classes: int,
    *,
    head: str = "logistic",
    l2: float = 1.0,
    em_iters: int = 100,
    n_init: int = 2,
    seed: int | None = 0,
    mixture: GaussianMixture | None = None,
) -> PretrainedClassifier:
    """The two-stage learner of *On the Provable Advantage of Unsupervised Pretraining* (2023,
    arXiv 2303.01566): MLE on unlabeled data, then ERM on labeled data.

    1. ``φ``: fit a ``num_components`` mixture by EM on ``x_unlabeled`` ``(T, m, d)``.
    2. ``ψ``: ERM on the labeled points ``x_labeled`` ``(T, n, d)``, ``y_labeled`` ``(T, n)``:
       ``head="vote"`` picks one class per component (:func:`fit_vote_head`, ``K`` choices),
       ``head="logistic"`` fits a multinomial logistic regression on the ``K`` log-posteriors
       (``K + 1`` numbers per class).

    Pass an already fitted ``mixture`` to skip step 1 (``x_unlabeled`` is then ignored).
    Unbatched ``(m, d)``/``(n, d)``/``(n,)`` inputs work too.
    """
    check_positive_int("num_components", num_components)
    check_positive_int("num_classes", num_classes)
    check_choice("head", head, HEADS)
    check_positive_int("n", x_labeled.shape[-2])
    if mixture is None:
        if x_unlabeled is None:
            raise ValueError("x_unlabeled is None: pass unlabeled data or a fitted mixture")
        check_range("m", x_unlabeled.shape[-2], num_components,
                    hint="EM needs at least as many unlabeled points as components")
        mixture = fit_em(x_unlabeled, num_components, iters=em_iters, n_init=n_init,
                         seed=seed).mixture
    clf = PretrainedClassifier(mixture)
    if head == "vote":
        clf.head = fit_vote_head(clf.representation(x_labeled), y_labeled, num_classes)
    else:
        clf.head = LogisticModel(torch.empty(0), torch.empty(0))
        clf.head = fit_logistic(clf.head_input(x_labeled), y_labeled, num_classes, l2=l2)
    return clf


def supervised_erm(
    x_labeled: torch.Tensor, y_labeled: torch.Tensor, num_classes: int, *, l2: float = 1.0,
) -> LogisticModel:
    """The baseline: ERM over the composite class ``ψ∘φ`` using the labels alone.

    With a shared-variance mixture, ``ψ∘φ`` is a multinomial logistic regression on the raw ``x``
    (``d + 1`` parameters per class), fit here with the same penalty as the pretrained head.
    ``x_labeled`` ``(T, n, d)``, ``y_labeled`` ``(T, n)``. Predict with ``.predict_proba(x)``.
    """
    check_positive_int("n", x_labeled.shape[-2])
    return fit_logistic(x_labeled, y_labeled, num_classes, l2=l2)
