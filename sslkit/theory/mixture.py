"""The latent-variable model of lecture 01 and its maximum-likelihood fit by EM.

A mixture of ``K`` spherical Gaussians in ``d`` dimensions with one shared variance
(:class:`GaussianMixture`), a labelling rule on top of it (:class:`Problem`, built by
:func:`make_problem`), and EM (:func:`e_step`, :func:`m_step`, :func:`fit_em`) started from
k-means++ seeds (:func:`sslkit.cluster.kmeans_pp`). ``φ(x)``, the representation that
pretraining learns, is the posterior over the components (:func:`log_posterior`).

Everything is batched: a leading ``(T,)`` axis holds independent trials, so one call of
:func:`fit_em` fits ``T`` mixtures at once. *Maximum likelihood from incomplete data via the EM
algorithm* (Dempster, Laird & Rubin, 1977); the pretraining stage of *On the Provable Advantage
of Unsupervised Pretraining* (2023, arXiv 2303.01566).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .._validate import check_choice, check_positive_int, check_range, seeded_generator
from ..cluster import kmeans_pp

__all__ = [
    "GaussianMixture", "Problem", "make_problem", "log_joint", "log_posterior", "e_step", "m_step",
    "EMResult", "fit_em",
]

TASKS = ("latent", "orthogonal")

# k-means++ seeding moved to sslkit.cluster; the old private name stays importable.
_kmeans_pp = kmeans_pp


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
        g = seeded_generator(seed, generator)
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
    g = seeded_generator(seed, generator)
    single = x.ndim == 2
    xb = x[None] if single else x
    t, n, d = xb.shape
    xr = xb.repeat_interleave(n_init, 0)  # (T*R, N, d), starts of one data set are adjacent
    means = kmeans_pp(xr, num_components, g)
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

