"""Theory toys: why unlabeled data helps, and how deep linear networks learn.

Two small, exactly analysable worlds behind lecture 01.

**1. Pretraining on a latent-variable model.** *On the Provable Advantage of Unsupervised
Pretraining* (2023, arXiv 2303.01566) studies a two-stage learner: fit a latent-variable model
by maximum likelihood on ``m`` unlabeled points (the representation ``φ``), then fit a small
predictor ``ψ`` on top of ``φ`` by empirical risk minimisation (ERM) on ``n`` labeled points. It
compares it with ERM over the composite class ``ψ∘φ`` on the ``n`` labels alone. Here:

- the latent-variable model is a mixture of ``K`` spherical Gaussians in ``d`` dimensions with
  one shared variance (:class:`GaussianMixture`), fit by EM (:func:`e_step`, :func:`m_step`,
  :func:`fit_em`);
- ``φ(x)`` is the posterior over the ``K`` components (:func:`log_posterior`); ``ψ`` is a
  multinomial logistic regression on the ``K`` log-posteriors, or a vote that names each
  component's class (:func:`pretrain_then_erm`, :func:`fit_vote_head`);
- the supervised baseline is the same logistic regression on the raw ``x``
  (:func:`supervised_erm`). With a shared variance, the posterior's logits are *linear* in ``x``,
  so ``ψ∘φ`` is exactly a logistic regression on ``x``: both learners search the same function
  class, and only the pretrained one had help choosing ``d·K`` of its parameters;
- the label comes from a :class:`Problem`: ``task="latent"`` labels each point by its component
  (the informative case), ``task="orthogonal"`` by a direction orthogonal to every cluster mean
  (the uninformative case, where pretraining cannot help);
- :func:`excess_risk` measures the error above the Bayes error, exactly in expectation over the
  label given each test point; :func:`excess_risk_curves` sweeps ``m``, ``n`` and seeded trials.

Everything is batched: a leading ``(T,)`` axis holds independent trials, so one call of
:func:`fit_em` fits ``T`` mixtures at once.

**2. Deep linear networks.** *Exact solutions to the nonlinear dynamics of learning in deep
linear neural networks* (2013, arXiv 1312.6120): a two-layer linear network trained by gradient
descent from a small initialisation learns the singular modes of the input-output correlation
one at a time, each along a sigmoid whose timescale is ``1/s`` (:func:`deep_linear_dynamics`,
:func:`mode_strength_closed_form`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ._validate import check_choice, check_positive_int, check_range

__all__ = [
    "GaussianMixture", "Problem", "make_problem", "log_joint", "log_posterior", "e_step", "m_step",
    "EMResult", "fit_em", "LogisticModel", "fit_logistic", "VoteHead", "fit_vote_head",
    "PretrainedClassifier", "pretrain_then_erm", "supervised_erm", "excess_risk", "bayes_risk",
    "excess_risk_curves", "fit_rate_constants", "deep_linear_dynamics",
    "mode_strength_closed_form",
]

TASKS = ("latent", "orthogonal")
LOSSES = ("zero_one", "log")


def _generator(seed: int | None, generator: torch.Generator | None) -> torch.Generator:
    if generator is not None:
        return generator
    return torch.Generator().manual_seed(0 if seed is None else int(seed))


# ----------------------------------------------------------------------------------------------
# The latent-variable model
# ----------------------------------------------------------------------------------------------
@dataclass
class GaussianMixture:
    """A mixture of ``K`` spherical Gaussians with one shared variance, possibly batched.

    ``means`` ``(..., K, d)``, ``variance`` ``(...)`` (a float or tensor, > 0), ``weights``
    ``(..., K)`` (mixing proportions, summing to 1). ``p(x) = Σ_k w_k N(x; μ_k, σ² I)``.
    """

    means: torch.Tensor
    variance: torch.Tensor | float
    weights: torch.Tensor

    def __post_init__(self):
        var = torch.as_tensor(self.variance, dtype=self.means.dtype, device=self.means.device)
        bad = var[~(torch.isfinite(var) & (var > 0))]
        if bad.numel():
            value = float(bad.flatten()[0])
            check_range("variance", value, 0.0, math.inf, low_open=True, high_open=True)
        if self.means.ndim < 2:
            raise ValueError(f"means must have shape (..., K, d), got {tuple(self.means.shape)}")
        if self.weights.shape != self.means.shape[:-1]:
            raise ValueError(f"weights must have shape {tuple(self.means.shape[:-1])}, "
                             f"got {tuple(self.weights.shape)}")
        self.variance = var

    @property
    def num_components(self) -> int:
        return self.means.shape[-2]

    @property
    def dim(self) -> int:
        return self.means.shape[-1]

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw ``n`` points from an unbatched mixture: ``x`` ``(n, d)`` and components ``z``
        ``(n,)``, using ``generator`` (CPU) for every random number."""
        check_positive_int("n", n)
        if self.means.ndim != 2:
            raise ValueError("sample() needs an unbatched mixture (means of shape (K, d))")
        dev = self.means.device
        z = torch.multinomial(self.weights.cpu(), n, replacement=True, generator=generator)
        noise = torch.randn(n, self.dim, generator=generator, dtype=self.means.dtype)
        z, noise = z.to(dev), noise.to(dev)
        return self.means[z] + self.variance.sqrt() * noise, z


@dataclass
class Problem:
    """A latent-variable model plus a labelling rule: the whole data distribution ``p(x, y)``.

    ``task="latent"``: ``y`` is the component ``z`` (kept with probability ``1 - label_noise``,
    otherwise replaced by one of the other classes uniformly) — the latent model is *informative*.
    ``task="orthogonal"``: ``y ∈ {0, 1}`` with ``p(y=1 | x) = sigmoid(slope · vᵀx)`` for a unit
    vector ``v`` orthogonal to every mean — the clusters say nothing about ``y``.
    """

    mixture: GaussianMixture
    task: str = "latent"
    label_noise: float = 0.0
    slope: float = 4.0
    direction: torch.Tensor | None = None

    @property
    def num_classes(self) -> int:
        return self.mixture.num_components if self.task == "latent" else 2

    def bayes_proba(self, x: torch.Tensor) -> torch.Tensor:
        """The true ``p(y | x)``: ``(..., N, d)`` → ``(..., N, C)``. Its argmax is the Bayes
        classifier."""
        if self.task == "orthogonal":
            p1 = torch.sigmoid(self.slope * (x @ self.direction))
            return torch.stack([1 - p1, p1], dim=-1)
        post = log_posterior(x, self.mixture).exp()
        if self.label_noise == 0:
            return post
        k = self.num_classes
        eta = self.label_noise
        return post * (1 - eta) + (1 - post) * eta / (k - 1)

    def sample(
        self, n: int, trials: int = 1, *, seed: int | None = 0,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw ``trials`` independent data sets of ``n`` labeled points.

        Returns ``x`` ``(trials, n, d)`` float32 and ``y`` ``(trials, n)`` int64. Drop ``y`` to get
        unlabeled data.
        """
        check_positive_int("n", n)
        check_positive_int("trials", trials)
        g = _generator(seed, generator)
        x, z = self.mixture.sample(n * trials, g)
        if self.task == "latent":
            y = z
            if self.label_noise > 0:
                flip = (torch.rand(z.shape, generator=g) < self.label_noise).to(z.device)
                shift = torch.randint(1, self.num_classes, z.shape, generator=g).to(z.device)
                y = torch.where(flip, (z + shift) % self.num_classes, z)
        else:
            p1 = self.bayes_proba(x)[:, 1]
            y = (torch.rand(p1.shape, generator=g).to(p1.device) < p1).long()
        return x.reshape(trials, n, -1), y.reshape(trials, n)


def make_problem(
    dim: int = 30,
    num_components: int = 3,
    separation: float = 3.5,
    *,
    task: str = "latent",
    label_noise: float = 0.0,
    slope: float = 4.0,
    variance: float = 1.0,
) -> Problem:
    """A fixed (non-random) problem: ``K`` equally likely clusters in ``d`` dimensions, every pair
    of centres ``separation`` noise standard deviations apart (the defaults are lecture 01's).

    The means are the corners of a regular simplex, ``μ_k = separation·σ/√2 · (e_k − ē)`` (centred
    at the origin, spanning ``K − 1`` dimensions); the other ``d − K + 1`` coordinates are pure
    noise. ``task="orthogonal"`` labels points by the last coordinate, which no mean touches.
    """
    check_positive_int("num_components", num_components)
    check_range("num_components", num_components, 2)
    check_positive_int("dim", dim)
    check_range("dim", dim, num_components + 1, hint="need one coordinate orthogonal to the means")
    check_range("separation", separation, 0.0)
    check_range("variance", variance, 0.0, low_open=True)
    check_choice("task", task, TASKS)
    check_range("label_noise", label_noise, 0.0, 1 - 1 / num_components, high_open=True)
    check_range("slope", slope, 0.0, low_open=True)
    eye = torch.eye(num_components, dim)
    means = (eye - eye.mean(0)) * separation * math.sqrt(variance) / math.sqrt(2)
    weights = torch.full((num_components,), 1.0 / num_components)
    direction = torch.zeros(dim)
    direction[-1] = 1.0
    mixture = GaussianMixture(means, float(variance), weights)
    return Problem(mixture, task, float(label_noise), float(slope), direction)


# ----------------------------------------------------------------------------------------------
# Maximum likelihood by EM
# ----------------------------------------------------------------------------------------------
def log_joint(x: torch.Tensor, mixture: GaussianMixture) -> torch.Tensor:
    """``log w_k + log N(x_i; μ_k, σ² I)`` for every point and component.

    ``x`` ``(..., N, d)`` with a mixture batched as ``(...)`` → ``(..., N, K)``.
    """
    var = mixture.variance[..., None, None]
    sq = torch.cdist(x, mixture.means).square()  # (..., N, K)
    d = x.shape[-1]
    return (mixture.weights.clamp_min(1e-30).log()[..., None, :] - sq / (2 * var)
            - 0.5 * d * torch.log(2 * math.pi * var))


def log_posterior(x: torch.Tensor, mixture: GaussianMixture) -> torch.Tensor:
    """``log p(z = k | x)``: ``(..., N, d)`` → ``(..., N, K)``. Its logits are linear in ``x``."""
    return torch.log_softmax(log_joint(x, mixture), dim=-1)


def e_step(x: torch.Tensor, mixture: GaussianMixture) -> tuple[torch.Tensor, torch.Tensor]:
    """E-step: responsibilities ``r_ik = p(z=k | x_i)`` ``(..., N, K)`` and the mean
    log-likelihood ``(1/N) Σ_i log p(x_i)`` ``(...)`` of the current parameters."""
    lj = log_joint(x, mixture)
    ll = torch.logsumexp(lj, dim=-1)
    return (lj - ll[..., None]).exp(), ll.mean(-1)


def m_step(x: torch.Tensor, resp: torch.Tensor, *, min_variance: float = 1e-6) -> GaussianMixture:
    """M-step: the mixture maximising the expected log-likelihood given responsibilities.

    ``x`` ``(..., N, d)``, ``resp`` ``(..., N, K)`` → weights ``N_k/N``, means
    ``Σ_i r_ik x_i / N_k`` and the shared variance ``Σ_ik r_ik ||x_i − μ_k||² / (N d)``.
    """
    nk = resp.sum(-2)  # (..., K)
    means = (resp.transpose(-1, -2) @ x) / nk.clamp_min(1e-12)[..., None]
    # Σ_ik r_ik ||x_i − μ_k||² = Σ_i ||x_i||² − Σ_k N_k ||μ_k||² at the new means
    spread = x.square().sum((-1, -2)) - (nk * means.square().sum(-1)).sum(-1)
    variance = spread.clamp_min(0) / (x.shape[-2] * x.shape[-1])
    return GaussianMixture(means, variance.clamp_min(min_variance), nk / x.shape[-2])


def _kmeans_pp(x: torch.Tensor, k: int, g: torch.Generator) -> torch.Tensor:
    """k-means++ seeding, batched: ``x`` ``(B, N, d)`` → ``k`` data points ``(B, k, d)``."""
    b, n, _ = x.shape
    rows = torch.arange(b, device=x.device)
    idx = torch.randint(n, (b,), generator=g).to(x.device)
    centers = [x[rows, idx]]
    d2 = (x - centers[0][:, None]).square().sum(-1)
    for _ in range(1, k):
        probs = d2 / d2.sum(-1, keepdim=True).clamp_min(1e-30)
        probs = torch.where(probs.sum(-1, keepdim=True) > 0, probs, torch.ones_like(probs))
        idx = torch.multinomial(probs.cpu(), 1, generator=g)[:, 0].to(x.device)
        centers.append(x[rows, idx])
        d2 = torch.minimum(d2, (x - centers[-1][:, None]).square().sum(-1))
    return torch.stack(centers, 1)


@dataclass
class EMResult:
    """A fitted mixture (batched like the data), its log-likelihood after every iteration
    ``history`` ``(..., iters)`` (mean per point, non-decreasing) and the iterations run."""

    mixture: GaussianMixture
    history: torch.Tensor
    iterations: int


def fit_em(
    x: torch.Tensor,
    num_components: int,
    *,
    iters: int = 100,
    n_init: int = 2,
    tol: float = 1e-5,
    seed: int | None = 0,
    generator: torch.Generator | None = None,
) -> EMResult:
    """Maximum-likelihood fit of a shared-variance spherical Gaussian mixture by EM.

    ``x`` ``(N, d)`` or ``(T, N, d)`` (``T`` independent data sets fit at once). Each data set is
    fit from ``n_init`` k-means++ starts; the start with the highest final likelihood is kept.
    EM stops early when no data set's mean log-likelihood moved by more than ``tol``.

    Returns an :class:`EMResult` batched like ``x`` (no leading axis for ``(N, d)`` input).
    *Maximum likelihood from incomplete data via the EM algorithm* (Dempster, Laird & Rubin,
    1977); pretraining stage of *On the Provable Advantage of Unsupervised Pretraining* (2023,
    arXiv 2303.01566).
    """
    check_positive_int("num_components", num_components)
    check_positive_int("iters", iters)
    check_positive_int("n_init", n_init)
    if x.ndim not in (2, 3):
        raise ValueError(f"x must have shape (N, d) or (T, N, d), got {tuple(x.shape)}")
    check_range("m", x.shape[-2], num_components,
                hint="EM needs at least as many unlabeled points as components")
    g = _generator(seed, generator)
    single = x.ndim == 2
    xb = x[None] if single else x
    t, n, d = xb.shape
    xr = xb.repeat_interleave(n_init, 0)  # (T*R, N, d), starts of one data set are adjacent
    means = _kmeans_pp(xr, num_components, g)
    var = torch.cdist(xr, means).square().min(-1).values.mean(-1) / d
    weights = torch.full((t * n_init, num_components), 1.0 / num_components, device=x.device)
    mix = GaussianMixture(means, var.clamp_min(1e-6), weights)
    history = []
    for _ in range(iters):
        resp, ll = e_step(xr, mix)
        history.append(ll)
        mix = m_step(xr, resp)
        if len(history) > 1 and float((history[-1] - history[-2]).abs().max()) < tol:
            break
    _, ll = e_step(xr, mix)
    history.append(ll)
    hist = torch.stack(history[1:], -1).reshape(t, n_init, -1)  # after each M-step
    best = ll.reshape(t, n_init).argmax(1)
    rows = torch.arange(t, device=x.device)

    def pick(v: torch.Tensor) -> torch.Tensor:
        v = v.reshape(t, n_init, *v.shape[1:])[rows, best]
        return v[0] if single else v

    out = GaussianMixture(pick(mix.means), pick(mix.variance), pick(mix.weights))
    hist = hist[rows, best]
    return EMResult(out, hist[0] if single else hist, len(history) - 1)


# ----------------------------------------------------------------------------------------------
# ERM: multinomial logistic regression, batched over trials
# ----------------------------------------------------------------------------------------------
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


# ----------------------------------------------------------------------------------------------
# Risk
# ----------------------------------------------------------------------------------------------
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


# ----------------------------------------------------------------------------------------------
# Deep linear networks
# ----------------------------------------------------------------------------------------------
def mode_strength_closed_form(s, u0, t) -> torch.Tensor:
    """Strength ``u(t)`` of one singular mode of a two-layer linear network under gradient flow.

    Whitened inputs, small balanced start ``u0 > 0``, learning rate 1 (time = steps × lr):
    ``u(t) = s·e^{2st} / (e^{2st} − 1 + s/u0)``, a sigmoid from ``u0`` to ``s`` whose rise time is
    ``∝ 1/s`` and which is half done at ``t½ = ln(s/u0 − 1) / (2s)``. Broadcasts ``s``, ``u0``,
    ``t``. *Exact solutions to the nonlinear dynamics of learning in deep linear neural networks*
    (Saxe, McClelland & Ganguli, 2013, arXiv 1312.6120).
    """
    s, u0, t = (torch.as_tensor(v, dtype=torch.float64) for v in (s, u0, t))
    e = torch.exp(2 * s * t)
    return s * e / (e - 1 + s / u0)


def deep_linear_dynamics(
    singular_values: Sequence[float],
    *,
    dim_in: int = 8,
    dim_out: int = 8,
    hidden: int = 8,
    lr: float = 0.02,
    steps: int = 500,
    init_scale: float = 1e-3,
    init: str = "balanced",
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Train ``y = W2 W1 x`` by full-batch gradient descent on whitened inputs.

    The target correlation is ``Σ_yx = U diag(s) Vᵀ`` with random orthonormal ``U``, ``V``;
    the loss is ``½ E||y − W2 W1 x||² = ½||Σ_yx − W2 W1||²_F`` + const. ``init="balanced"``
    starts every mode at strength ``init_scale`` with ``W1 = √u0 · R Vᵀ``, ``W2 = √u0 · U Rᵀ``
    (``R`` a random orthonormal basis of the hidden layer: the paper's decoupled start, which the
    closed form describes exactly); ``init="random"`` draws ``N(0, init_scale)`` entries.

    Returns ``{"time": (steps+1,), "strength": (steps+1, r), "loss": (steps+1,)}`` where
    ``strength[:, a] = u_aᵀ W2 W1 v_a`` and ``time = step·lr``. *Exact solutions to the
    nonlinear dynamics of learning in deep linear neural networks* (2013, arXiv 1312.6120).
    """
    s = torch.as_tensor(list(singular_values), dtype=torch.float64)
    r = s.numel()
    check_positive_int("steps", steps)
    check_positive_int("hidden", hidden)
    check_range("hidden", hidden, r, hint="the hidden layer must hold every mode")
    check_range("dim_in", dim_in, r)
    check_range("dim_out", dim_out, r)
    check_range("lr", lr, 0.0, low_open=True)
    check_range("init_scale", init_scale, 0.0, low_open=True)
    check_choice("init", init, ("balanced", "random"))
    if bool((s <= 0).any()):
        check_range("singular_values", float(s.min()), 0.0, low_open=True)
    g = torch.Generator().manual_seed(seed)

    def orthonormal(rows, cols):
        q, _ = torch.linalg.qr(torch.randn(rows, cols, generator=g, dtype=torch.float64))
        return q

    u, v, rot = orthonormal(dim_out, r), orthonormal(dim_in, r), orthonormal(hidden, r)
    target = u @ torch.diag(s) @ v.T  # (dim_out, dim_in)
    if init == "balanced":
        w1 = math.sqrt(init_scale) * rot @ v.T
        w2 = math.sqrt(init_scale) * u @ rot.T
    else:
        w1 = init_scale * torch.randn(hidden, dim_in, generator=g, dtype=torch.float64)
        w2 = init_scale * torch.randn(dim_out, hidden, generator=g, dtype=torch.float64)
    strengths, losses = [], []
    for step in range(steps + 1):
        prod = w2 @ w1
        strengths.append(torch.einsum("oa,oi,ia->a", u, prod, v))
        err = target - prod
        losses.append(0.5 * err.square().sum())
        if step == steps:
            break
        w1, w2 = w1 + lr * (w2.T @ err), w2 + lr * (err @ w1.T)
    return {"time": torch.arange(steps + 1, dtype=torch.float64) * lr,
            "strength": torch.stack(strengths), "loss": torch.stack(losses)}
