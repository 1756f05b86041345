"""Self-checks of exercise 01 (why unlabeled data helps): the E-step and the M-step of EM for a
mixture of spherical Gaussians with one shared variance, and the pretrain-then-ERM learner.

The references are ``sslkit.theory.e_step`` and ``sslkit.theory.m_step`` (*Maximum likelihood
from incomplete data via the EM algorithm*, Dempster, Laird & Rubin, 1977) and
``sslkit.theory.pretrain_then_erm`` (*On the Provable Advantage of Unsupervised Pretraining*,
2023, arXiv 2303.01566).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ._core import (
    CheckFailed,
    compare,
    detached_copy,
    format_value,
    randn,
    run_checks,
    unit_rows,
    with_hint,
)

__all__ = ["e_step", "m_step", "pretrain_then_erm"]

_E_HINT = ("log r_ik = log w_k − ||x_i − μ_k||² / (2σ²) − (d/2)·log(2πσ²) − log p(x_i), with "
           "log p(x_i) = logsumexp over k of the first three terms (torch.logsumexp(..., dim=-1))")
_STABLE_HINT = ("exp() of a log-density this small is 0 in floating point, and 0 / 0 = nan: "
                "stay in log space. log p(x_i) = torch.logsumexp(log_joint, dim=-1) subtracts the "
                "largest term before exponentiating; r = (log_joint − log p(x)[:, None]).exp()")
_M_HINTS = {
    "weights": "w_k = N_k / N with N_k = Σ_i r_ik (the column sums of resp): a share of the "
               "N points, so the weights sum to 1",
    "means": "μ_k = Σ_i r_ik x_i / N_k: every point counts, weighted by its responsibility, "
             "and divided by the total responsibility N_k of the component (resp.T @ x / N_k)",
    "variance": "σ² = Σ_i Σ_k r_ik ||x_i − μ_k||² / (N·d) with the NEW centres μ_k: the "
                "maximum-likelihood estimate divides by all N·d numbers (no N − 1), then "
                "clamp_min(min_variance)",
}


def _mixture_copy(mixture, dtype=None):
    """A new ``theory.GaussianMixture`` with cloned (optionally cast) tensors."""
    from .. import theory

    def cast(t):
        t = torch.as_tensor(t).detach().clone()
        return t if dtype is None else t.to(dtype)

    return theory.GaussianMixture(cast(mixture.means), cast(mixture.variance),
                                  cast(mixture.weights))


def _same_mixture(before, after) -> bool:
    return all(torch.equal(torch.as_tensor(a), torch.as_tensor(b)) for a, b in (
        (before.means, after.means), (before.variance, after.variance),
        (before.weights, after.weights)))


def _e_step_reference(x: torch.Tensor, mixture):
    """``theory.e_step`` computed in float64 and cast back to ``x.dtype`` (a precise target)."""
    from .. import theory

    resp, ll = theory.e_step(x.double(), _mixture_copy(mixture, torch.float64))
    return resp.to(x.dtype), ll.to(x.dtype)


def _call_e_step(learner_fn: Callable, x: torch.Tensor, mixture):
    """Call ``learner_fn(x, mixture)`` on copies; check it returns ``(resp (N, K), ll ())`` and
    modified nothing in place."""
    x_copy, mix_copy = x.clone(), _mixture_copy(mixture)
    out = learner_fn(x_copy, mix_copy)
    if not torch.equal(x_copy, x):
        raise CheckFailed("your e_step modified x in place; work on new tensors "
                          "(d = x - mu rather than x -= mu)")
    if not _same_mixture(mixture, mix_copy):
        raise CheckFailed("your e_step modified the mixture's means, variance or weights in place")
    if not (isinstance(out, tuple | list) and len(out) == 2):
        raise CheckFailed(f"expected a pair (responsibilities (N, K), mean log-likelihood), got "
                          f"{type(out).__name__}: return both, as theory.e_step does")
    resp, ll = out
    n, k = x.shape[0], mixture.means.shape[0]
    for name, value, shape in (("responsibilities", resp, (n, k)),
                               ("mean log-likelihood", ll, ())):
        if not isinstance(value, torch.Tensor):
            raise CheckFailed(f"{name}: expected a torch.Tensor of shape {shape}, got "
                              f"{type(value).__name__}")
        if tuple(value.shape) != shape:
            raise CheckFailed(f"{name}: shape {tuple(value.shape)} differs from the expected "
                              f"{shape}" + (" (a 0-d tensor: the mean over the N points)"
                                            if not shape else " (one row per point, one column "
                                            "per component)"))
    return resp, ll


def _compare_e_step(learner_fn: Callable, x: torch.Tensor, mixture, *, atol: float = 1e-5,
                    rtol: float = 1e-4) -> None:
    resp, ll = _call_e_step(learner_fn, x, mixture)
    want_resp, want_ll = _e_step_reference(x, mixture)
    compare("responsibilities", resp, want_resp, atol=atol, rtol=rtol)
    compare("mean log-likelihood", ll, want_ll, atol=atol, rtol=rtol)


def _e_cases() -> dict[str, tuple[tuple, str | None]]:
    """The cases of :func:`e_step`: name → ``((x, mixture), hint)``; the first is also used for
    the row-sum check."""
    from .. import theory

    def mix(means, variance, weights):
        return theory.GaussianMixture(torch.as_tensor(means, dtype=torch.float32),
                                      torch.tensor(float(variance)),
                                      torch.as_tensor(weights, dtype=torch.float32))

    means = randn(3, 5, seed=30, scale=2.0)
    random_mix = mix(means, 1.7, [0.5, 0.3, 0.2])
    x = means[torch.arange(20) % 3] + randn(20, 5, seed=31, scale=1.3)
    lecture = mix([[-1.0], [1.0]], 1.0, [0.5, 0.5])
    x4 = torch.tensor([[-2.0], [-1.0], [1.0], [2.0]])
    tie_means = torch.stack([means[0], means[0], means[1]])
    direction = unit_rows(randn(1, 5, seed=32))
    far = torch.cat([x[:3], means[:1] + 1000.0 * direction, means[2:3] - 700.0 * direction])
    high = randn(2, 2000, seed=33)
    return {
        "random data: N=20, d=5, K=3, weights (0.5, 0.3, 0.2), σ²=1.7": (
            (x, random_mix), _E_HINT + "; weights and variance both matter here"),
        "the lecture's four points in 1-d: p(clump 2 | x) = sigmoid(2x)": (
            (x4, lecture), None),
        "a single point (1, 5)": ((x[7:8], random_mix), None),
        "ties: components 0 and 1 share a centre and a weight (equal responsibilities)": (
            (x, mix(tie_means, 1.0, [0.4, 0.4, 0.2])), None),
        "ties: all centres equal, so the responsibilities are the weights": (
            (x, mix(torch.zeros(3, 5), 2.0, [0.5, 0.3, 0.2])), "with equal centres the Gaussian "
            "terms cancel in Bayes' rule: r_ik = w_k"),
        "points 700 and 1,000 away from the centres: exp(-290,000) is 0, no NaN allowed": (
            (far, random_mix), _STABLE_HINT),
        "d=2,000: every density is below exp(-1,800), even at a centre": (
            (high[[0, 1, 1]] + 0.1 * randn(3, 2000, seed=34), mix(high, 1.0, [0.5, 0.5])),
            _STABLE_HINT),
    }


def e_step(learner_fn: Callable) -> None:
    """Check ``learner_fn(x, mixture) -> (responsibilities, mean log-likelihood)`` against
    ``sslkit.theory.e_step``.

    The E-step of *Maximum likelihood from incomplete data via the EM algorithm* (Dempster, Laird
    & Rubin, 1977) for a ``theory.GaussianMixture`` of ``K`` spherical Gaussians with one shared
    variance: ``x`` ``(N, d)``, ``mixture.means`` ``(K, d)``, ``mixture.variance`` a 0-d tensor
    ``σ²``, ``mixture.weights`` ``(K,)`` → responsibilities ``r_ik = p(z=k | x_i)`` ``(N, K)`` and
    ``(1/N) Σ_i log p(x_i)`` (0-d). The reference is computed in float64. Cases (9): the output's
    structure and rows summing to 1; random data with unequal weights; the lecture's 1-d example;
    a single point; two kinds of ties (shared centres; all centres equal, where the
    responsibilities are the weights); points 1,000 away from the centres and ``d = 2000``
    (every ``exp`` of a log-density underflows to 0, so only a log-sum-exp implementation
    avoids ``0 / 0``); and a run under ``torch.no_grad()`` (EM needs no gradients) that leaves
    its inputs unchanged.
    """
    cases = _e_cases()
    (x, mixture), _ = next(iter(cases.values()))

    def structure() -> None:
        resp, _ = _call_e_step(learner_fn, x, mixture)
        sums = resp.detach().double().sum(-1)
        bad = ~torch.isclose(sums, torch.ones_like(sums), rtol=0, atol=1e-4)
        if bad.any():
            i = int(bad.nonzero()[0])
            raise CheckFailed(
                f"row {i} of the responsibilities sums to {format_value(float(sums[i]))}, not 1 "
                f"({int(bad.sum())} of {len(sums)} rows): responsibilities are probabilities "
                "over the K components. Hint: divide each point's K joint densities by their "
                "sum p(x_i) (in log space: subtract torch.logsumexp(log_joint, dim=-1) over the "
                "components, dim=-1, not over the points)")

    def case(args, hint):
        return with_hint(lambda: _compare_e_step(learner_fn, *args), hint)

    def no_grad() -> None:
        with torch.no_grad():
            _compare_e_step(learner_fn, x, mixture)

    run_checks("e_step", {
        "returns (responsibilities (N, K), mean log-likelihood ()) and every row sums to 1":
            structure,
        **{name: case(args, hint) for name, (args, hint) in cases.items()},
        "EM needs no gradients: runs under torch.no_grad(), inputs unchanged": with_hint(
            no_grad, "the E-step is a formula: no .backward(), torch.autograd or optimiser"),
    })


def _m_step_reference(x: torch.Tensor, resp: torch.Tensor, min_variance: float = 1e-6):
    """``theory.m_step`` computed in float64 and cast back to ``x.dtype``."""
    from .. import theory

    mix = theory.m_step(x.double(), resp.double(), min_variance=min_variance)
    return theory.GaussianMixture(mix.means.to(x.dtype), mix.variance.to(x.dtype),
                                  mix.weights.to(x.dtype))


def _variance_diagnosis(got: float, want: float, n: int, d: int) -> str:
    """Name a wrong denominator when ``got/want`` is exactly the ratio it would cause."""
    if not (math.isfinite(got) and want > 0):
        return ""
    for denominator, text in (((n - 1) * d, f"(N − 1)·d = {(n - 1) * d}"),
                              (n * d - 1, f"N·d − 1 = {n * d - 1}"),
                              (n, f"N = {n} (forgetting the d = {d} coordinates)"),
                              (d, f"d = {d} (forgetting the N = {n} points)"),
                              (n * (d - 1), f"N·(d − 1) = {n * (d - 1)}")):
        if denominator > 0 and denominator != n * d and math.isclose(
                got / want, n * d / denominator, rel_tol=1e-3):
            return (f". Your variance is exactly the expected one × {n * d}/{denominator}: you "
                    f"divided by {text} instead of N·d = {n * d}")
    return ""


def _compare_m_step(learner_fn: Callable, x: torch.Tensor, resp: torch.Tensor,
                    min_variance: float | None = None, *, exact_clamp: bool = False) -> None:
    """Compare weights, means and variance (in that order) with the float64 reference; with
    ``exact_clamp`` the variance is compared relatively (``atol=0``), so that a variance of
    ``1e-14`` is not mistaken for a clamped ``1e-6``."""
    from .. import theory

    kwargs = {} if min_variance is None else {"min_variance": min_variance}
    want = _m_step_reference(x, resp, **kwargs)
    x_copy, resp_copy = x.clone(), resp.clone()
    try:
        got = learner_fn(x_copy, resp_copy, **kwargs)
    except ValueError as err:
        if "variance" not in str(err):
            raise
        raise CheckFailed(f"your code raised ValueError: {err}. Hint: "
                          f"{_M_HINTS['variance']}") from err
    if not (torch.equal(x_copy, x) and torch.equal(resp_copy, resp)):
        raise CheckFailed("your m_step modified x or resp in place; work on new tensors")
    if not isinstance(got, theory.GaussianMixture):
        raise CheckFailed(f"expected a theory.GaussianMixture(means, variance, weights), got "
                          f"{type(got).__name__}")
    n, d = x.shape
    k = resp.shape[1]
    for name, shape in (("weights", (k,)), ("means", (k, d)), ("variance", ())):
        value = getattr(got, name)
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != shape:
            found = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise CheckFailed(f"{name}: expected shape {shape}, got {found}"
                              + (" (one variance shared by all components and coordinates)"
                                 if name == "variance" else ""))
    for name in ("weights", "means", "variance"):
        atol, rtol = (0.0, 1e-3) if exact_clamp and name == "variance" else (1e-5, 1e-4)
        try:
            compare(name, getattr(got, name), getattr(want, name), atol=atol, rtol=rtol)
        except CheckFailed as err:
            detail = (_variance_diagnosis(float(got.variance), float(want.variance), n, d)
                      if name == "variance" else "")
            raise CheckFailed(f"{err}{detail}. Hint: {_M_HINTS[name]}") from None


def _soft(logits: torch.Tensor) -> torch.Tensor:
    return torch.softmax(logits, dim=1)


def m_step(learner_fn: Callable) -> None:
    """Check ``learner_fn(x, resp, min_variance=1e-6) -> theory.GaussianMixture`` against
    ``sslkit.theory.m_step``.

    The M-step of EM for a mixture of spherical Gaussians with one shared variance (Dempster,
    Laird & Rubin, 1977): ``x`` ``(N, d)``, responsibilities ``resp`` ``(N, K)`` → weights
    ``N_k / N``, means ``Σ_i r_ik x_i / N_k`` and the variance
    ``Σ_ik r_ik ||x_i − μ_k||² / (N·d)`` (at least ``min_variance``). The reference is computed
    in float64. Cases (6): soft responsibilities (a wrong weight, mean or variance is named,
    with its formula; a variance off by a known denominator such as ``(N − 1)·d`` says so); the
    lecture's 1-d example; hard (one-hot) responsibilities, the k-means update; a single point
    (the variance is 0 and must be clamped); ``min_variance`` passed by keyword; and a run under
    ``torch.no_grad()`` that leaves its inputs unchanged.
    """
    x = randn(12, 3, seed=40, scale=2.0)
    resp = _soft(randn(12, 3, seed=41, scale=2.0))
    x4 = torch.tensor([[-2.0], [-1.0], [1.0], [2.0]])
    resp4 = torch.stack([1 - torch.sigmoid(2 * x4[:, 0]), torch.sigmoid(2 * x4[:, 0])], 1)
    hard = torch.nn.functional.one_hot(torch.arange(12) % 3, 3).float()
    tight = randn(5, 3, seed=42, scale=0.01) + 4.0

    def no_grad() -> None:
        with torch.no_grad():
            _compare_m_step(learner_fn, x, resp)

    run_checks("m_step", {
        "soft responsibilities: N=12, d=3, K=3": lambda: _compare_m_step(learner_fn, x, resp),
        "the lecture's four points in 1-d: centres ±1.3448, variance 0.6914, weights 0.5":
            lambda: _compare_m_step(learner_fn, x4, resp4),
        "hard (one-hot) responsibilities: the k-means update":
            lambda: _compare_m_step(learner_fn, x, hard),
        "a single point: every centre moves onto it, σ² = 0 is clamped to min_variance":
            lambda: _compare_m_step(learner_fn, x[:1], resp[:1], exact_clamp=True),
        "min_variance=0.5 passed by keyword (tight data: spread 1e-4)":
            lambda: _compare_m_step(learner_fn, tight, _soft(randn(5, 2, seed=43)), 0.5),
        "EM needs no gradients: runs under torch.no_grad(), inputs unchanged": with_hint(
            no_grad, "the M-step is a formula (weighted averages): no .backward(), "
            "torch.autograd or optimiser"),
    })


def _pipeline_data():
    """A small informative problem (d=6, K=3) and its uninformative twin, seeded: unlabeled
    ``(m=150, d)``, labeled ``(n=12, d)`` and test ``(60, d)`` points, plus 3 trials at once."""
    from .. import theory

    problem = theory.make_problem(6, 3, 4.0)
    twin = theory.make_problem(6, 3, 4.0, task="orthogonal")
    x_unl, _ = problem.sample(150, seed=50)
    x_lab, y_lab = problem.sample(12, seed=51)
    x_test, _ = problem.sample(60, seed=52)
    tx_lab, ty_lab = twin.sample(12, seed=53)
    bx_unl, _ = problem.sample(80, 3, seed=54)
    bx_lab, by_lab = problem.sample(9, 3, seed=55)
    return {"x_unl": x_unl[0], "x_lab": x_lab[0], "y_lab": y_lab[0], "x_test": x_test[0],
            "tx_lab": tx_lab[0], "ty_lab": ty_lab[0], "bx_unl": bx_unl, "bx_lab": bx_lab,
            "by_lab": by_lab}


_PIPELINE_HINT = ("fit ψ on exactly what the classifier feeds it when it predicts "
                  "(PretrainedClassifier.head_input): for head='logistic' the centred "
                  "log-posterior lp − lp.mean(-1, keepdim=True), lp = theory.log_posterior("
                  "x_labeled, mixture), with theory.fit_logistic(features, y_labeled, "
                  "num_classes, l2=l2); for head='vote' the posterior lp.exp() with "
                  "theory.fit_vote_head(posterior, y_labeled, num_classes)")


def pretrain_then_erm(learner_fn: Callable) -> None:
    """Check ``learner_fn(x_unlabeled, x_labeled, y_labeled, num_components, num_classes, *,
    head="logistic", l2=1.0, em_iters=100, n_init=2, seed=0, mixture=None)`` against
    ``sslkit.theory.pretrain_then_erm``.

    The two-stage learner of *On the Provable Advantage of Unsupervised Pretraining* (2023, arXiv
    2303.01566): ``φ`` = a mixture fit by ``theory.fit_em`` on the unlabeled points only, ``ψ`` =
    a head fit by ERM on ``φ`` of the labeled points; it returns a
    ``theory.PretrainedClassifier(mixture, head)``. Cases (9) on a seeded ``d = 6``, ``K = 3``
    problem: the returned types and the head's input size (``K`` features, not ``d``); the
    mixture is ``fit_em`` on ``x_unlabeled`` alone with the given ``em_iters``, ``n_init`` and
    ``seed``; ``p̂(y | x)`` on test points; ``l2`` and ``seed`` passed on; ``head="vote"``; a
    given ``mixture`` (no EM, ``x_unlabeled=None``); three trials at once ``(T, m, d)``; a single
    labeled example; and the uninformative twin (2 classes from 3 components).
    """
    from .. import theory

    data = _pipeline_data()
    runs: dict = {}

    def run(key, args, **kwargs):
        if key not in runs:
            got = learner_fn(*[detached_copy(a) for a in args], **kwargs)
            want = theory.pretrain_then_erm(*[detached_copy(a) for a in args], **kwargs)
            runs[key] = (got, want)
        return runs[key]

    base = (data["x_unl"], data["x_lab"], data["y_lab"], 3, 3)

    def structure(key="base", args=base, head="logistic", **kwargs):
        got, want = run(key, args, head=head, **kwargs)
        if not isinstance(got, theory.PretrainedClassifier):
            raise CheckFailed(f"expected a theory.PretrainedClassifier(mixture, head), got "
                              f"{type(got).__name__}")
        if not isinstance(got.mixture, theory.GaussianMixture):
            raise CheckFailed(f"the classifier's mixture is a {type(got.mixture).__name__}, "
                              "expected the theory.GaussianMixture fit by EM")
        vote = head == "vote"
        kind, fit = ((theory.VoteHead, "fit_vote_head") if vote
                     else (theory.LogisticModel, "fit_logistic"))
        if not isinstance(got.head, kind):
            raise CheckFailed(f"head={head!r}: the classifier's head is a "
                              f"{type(got.head).__name__}, expected a theory.{kind.__name__} "
                              f"(from theory.{fit})")
        part = "table" if vote else "weight"
        shape, expected = (tuple(getattr(h.head, part).shape) for h in (got, want))
        if shape != expected:
            raise CheckFailed(
                f"the head's {part} has shape {shape}, expected {expected}: ψ reads φ(x), the "
                f"K = {expected[0]} numbers of the representation (rows), and names "
                "num_classes classes (columns); a head fit on raw x has d rows")
        return got, want

    def same_mixture(key="base", args=base, **kwargs):
        got, want = structure(key, args, **kwargs)
        try:
            for name in ("weights", "means", "variance"):
                compare(f"mixture.{name}", getattr(got.mixture, name),
                        getattr(want.mixture, name), atol=1e-5, rtol=1e-4)
        except CheckFailed as err:
            raise CheckFailed(
                f"{err}. Hint: pretraining sees the unlabeled points only: mixture = "
                "theory.fit_em(x_unlabeled, num_components, iters=em_iters, n_init=n_init, "
                "seed=seed).mixture; the labeled points are not part of it") from None

    def same_predictions(key="base", args=base, x_test=None, **kwargs):
        got, want = structure(key, args, **kwargs)
        x_test = data["x_test"] if x_test is None else x_test
        try:
            compare("p̂(y | x) on the test points", got.predict_proba(x_test),
                    want.predict_proba(x_test), atol=1e-4, rtol=1e-3)
        except CheckFailed as err:
            raise CheckFailed(f"{err}. Hint: {_PIPELINE_HINT}") from None

    def given_mixture():
        fitted = theory.fit_em(data["x_unl"], 3, seed=7).mixture
        got, _ = structure("given", (None, data["x_lab"], data["y_lab"], 3, 3), mixture=fitted)
        if got.mixture is not fitted and not _same_mixture(fitted, got.mixture):
            raise CheckFailed("with mixture= given, the classifier must use that mixture "
                              "(no EM: x_unlabeled may be None)")
        same_predictions("given", (None, data["x_lab"], data["y_lab"], 3, 3), mixture=fitted)

    batched = (data["bx_unl"], data["bx_lab"], data["by_lab"], 3, 3)
    twin = (data["x_unl"], data["tx_lab"], data["ty_lab"], 3, 2)
    run_checks("pretrain_then_erm", {
        "returns theory.PretrainedClassifier(mixture, LogisticModel) whose head reads K=3 "
        "features": structure,
        "the mixture is theory.fit_em on the 150 unlabeled points only": same_mixture,
        "logistic head: p̂(y | x) on 60 test points": same_predictions,
        "l2=0.1, em_iters=20, n_init=1, seed=3 are passed on": lambda: (
            same_mixture("kw", base, l2=0.1, em_iters=20, n_init=1, seed=3),
            same_predictions("kw", base, l2=0.1, em_iters=20, n_init=1, seed=3)),
        "head='vote': a theory.VoteHead fit on the posterior": lambda: same_predictions(
            "vote", base, head="vote"),
        "mixture= given: no EM, x_unlabeled=None": given_mixture,
        "three trials at once: (3, 80, 6), (3, 9, 6), (3, 9)": lambda: (
            same_mixture("batched", batched),
            same_predictions("batched", batched, x_test=data["x_test"])),
        "a single labeled example (n=1)": lambda: same_predictions(
            "one", (data["x_unl"], data["x_lab"][:1], data["y_lab"][:1], 3, 3)),
        "the uninformative twin: K=3 components, num_classes=2": lambda: same_predictions(
            "twin", twin),
    })
