"""Self-checks of exercise 07 (redundancy reduction): VICReg's variance and covariance terms and
the whole loss.

The references are ``sslkit.losses.variance``, ``sslkit.losses.covariance`` and
``sslkit.losses.vicreg_loss``, from *VICReg: Variance-Invariance-Covariance Regularization for
Self-Supervised Learning* (2021, arXiv 2105.04906). A wrong answer is compared with the usual
mistakes (a hinge on the variance instead of the standard deviation, the biased variance, ε
outside the square root or forgotten, no hinge, a sum over the dimensions, statistics over the
wrong axis; a covariance that is not centred, divided by B, keeps its diagonal, is not divided by
D or takes absolute values; one view's terms only, an invariance summed over the dimensions,
swapped weights) and the message names the one it matches.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ._core import CheckFailed, check_gradient_flow, compare, mistake_hint, randn, run_checks

__all__ = ["variance", "covariance", "vicreg_loss"]

_TOL = dict(atol=1e-5, rtol=1e-4)


def _call(learner_fn: Callable, *args):
    """The learner's output on copies of ``args``; fails if an argument was changed in place."""
    copies = [a.detach().clone() if isinstance(a, torch.Tensor) else a for a in args]
    out = learner_fn(*copies)
    for i, (a, c) in enumerate(zip(args, copies, strict=True)):
        if isinstance(a, torch.Tensor) and not torch.equal(a, c):
            raise CheckFailed(f"your function modified its argument {i} in place; work on a copy")
    if not isinstance(out, torch.Tensor) or out.ndim != 0:
        raise CheckFailed(f"expected a scalar tensor (ndim 0), got "
                          f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out)}")
    return out


# ---------------------------------------------------------------------------- the variance
_VARIANCE_RULE = ("the mean over the D dimensions of max(0, γ − sqrt(Var_j + ε)), with Var_j the "
                  "unbiased variance of column j over the batch (z.var(dim=0))")


def _variance_variants(z, gamma, eps) -> list[tuple[torch.Tensor, str]]:
    z = z.double()
    var = z.var(dim=0)
    return [
        (F.relu(gamma - var).mean(),
         "your hinge is on the variance: VICReg's is on the standard deviation, "
         "sqrt(Var + ε), so that a dimension is penalised linearly as it shrinks"),
        (F.relu(gamma - torch.sqrt(z.var(dim=0, unbiased=False) + eps)).mean(),
         "you used the biased variance (divided by B): VICReg uses the unbiased one, "
         "torch.var's default (divided by B − 1)"),
        (F.relu(gamma - (torch.sqrt(var) + eps)).mean(),
         "ε goes inside the square root, sqrt(Var + ε): it keeps the gradient finite when a "
         "dimension collapses (the derivative of sqrt at 0 is infinite)"),
        (F.relu(gamma - torch.sqrt(var)).mean(),
         "you forgot ε: sqrt(Var + ε), which keeps the gradient finite when a dimension "
         "collapses"),
        ((gamma - torch.sqrt(var + eps)).mean(),
         "there is no hinge: a dimension whose std is above γ must contribute 0, not a "
         "negative reward (max(0, ·), F.relu)"),
        (F.relu(gamma - torch.sqrt(var + eps)).sum(),
         "you summed over the dimensions: take the mean over the D dimensions"),
        (F.relu(gamma - torch.sqrt(z.var(dim=1) + eps)).mean(),
         "your statistics run over the dimensions (dim=1): the variance of each dimension is "
         "taken over the batch (dim=0)"),
    ]


def _compare_variance(learner_fn: Callable, z, gamma=1.0, eps=1e-4):
    from .. import losses

    want = losses.variance(z.clone(), gamma, eps)
    got = _call(learner_fn, z, gamma, eps)
    try:
        compare("variance term", got, want, check_dtype=False, **_TOL)
    except CheckFailed as err:
        hint = mistake_hint(got, _variance_variants(z, gamma, eps), _VARIANCE_RULE, **_TOL)
        raise CheckFailed(f"{err}. Hint: {hint}") from None


def _finite_gradient_when_collapsed(learner_fn: Callable) -> None:
    z = torch.ones(6, 4).requires_grad_(True)
    loss = learner_fn(z, 1.0, 1e-4)
    if not isinstance(loss, torch.Tensor) or not loss.requires_grad:
        raise CheckFailed("the output is cut off from z (no gradient can flow): avoid .detach(), "
                          ".item() and torch.no_grad()")
    loss.backward()
    if z.grad is None or not torch.isfinite(z.grad).all():
        raise CheckFailed("the gradient for a collapsed batch (every row the same) is NaN or "
                          "infinite: put ε inside the square root, sqrt(Var + ε)")


def variance(learner_fn: Callable) -> None:
    """Check ``learner_fn(z, gamma, eps) -> scalar`` against ``sslkit.losses.variance``.

    VICReg's variance term (*VICReg*, 2021, arXiv 2105.04906): ``z`` ``(B, D)``, the mean over
    the ``D`` dimensions of ``max(0, γ − sqrt(Var_j + ε))`` with the unbiased variance over the
    batch. Cases (6): a batch whose dimensions all have a std below γ (a hinge on the variance,
    the biased variance, a sum over dimensions and statistics over the wrong axis are named);
    dimensions on both sides of γ (no hinge); a collapsed batch (ε outside the root or
    forgotten); γ = 2; a batch of two; a finite gradient for a collapsed batch.
    """
    spread = torch.tensor([0.3, 0.5, 1.5, 2.0, 0.8, 3.0])
    run_checks("variance", {
        "B=16, D=8, every std below γ = 1": lambda: _compare_variance(
            learner_fn, randn(16, 8, seed=1, scale=0.4)),
        "stds on both sides of γ": lambda: _compare_variance(
            learner_fn, randn(20, 6, seed=2) * spread),
        "a collapsed batch (every row the same)": lambda: _compare_variance(
            learner_fn, randn(1, 5, seed=3).expand(10, 5).clone()),
        "γ = 2": lambda: _compare_variance(learner_fn, randn(12, 4, seed=4), gamma=2.0),
        "a batch of two": lambda: _compare_variance(learner_fn, randn(2, 6, seed=5, scale=0.5)),
        "finite gradient for a collapsed batch": lambda: _finite_gradient_when_collapsed(
            learner_fn),
    })


# ---------------------------------------------------------------------------- the covariance
_COVARIANCE_RULE = ("centre each column over the batch, Cov = zcᵀ zc / (B − 1) (D × D); then the "
                    "sum of the squared off-diagonal entries, divided by D")


def _covariance_variants(z) -> list[tuple[torch.Tensor, str]]:
    z = z.double()
    b, d = z.shape
    zc = z - z.mean(dim=0)
    cov = zc.T @ zc / (b - 1)
    off = ~torch.eye(d, dtype=torch.bool)
    uncentred = z.T @ z / (b - 1)
    corr = torch.corrcoef(z.T)
    return [
        (uncentred[off].pow(2).sum() / d,
         "your covariance is not centred: subtract each column's mean over the batch first"),
        ((zc.T @ zc / b)[off].pow(2).sum() / d,
         "you divided by B: the covariance of VICReg is unbiased, divided by B − 1"),
        (cov.pow(2).sum() / d,
         "you kept the diagonal: the variances are the variance term's business, the "
         "covariance term sums the off-diagonal entries only"),
        (cov[off].pow(2).sum(),
         "you did not divide by D: the sum of squared off-diagonal entries is divided by D"),
        (cov[off].pow(2).sum() / (d * d),
         "you divided by D²: divide by D (the paper's 1/d)"),
        (cov[off].pow(2).mean(),
         "you averaged over the D² − D entries: sum them, then divide by D"),
        (cov[off].abs().sum() / d,
         "you summed absolute values: square the off-diagonal entries"),
        (corr[off].pow(2).sum() / d,
         "you computed correlations (each column standardised): VICReg uses the covariance "
         "itself, the standardisation is Barlow Twins'"),
    ]


def _compare_covariance(learner_fn: Callable, z):
    from .. import losses

    want = losses.covariance(z.clone())
    got = _call(learner_fn, z)
    try:
        compare("covariance term", got, want, check_dtype=False, **_TOL)
    except CheckFailed as err:
        hint = mistake_hint(got, _covariance_variants(z), _COVARIANCE_RULE, **_TOL)
        raise CheckFailed(f"{err}. Hint: {hint}") from None


def _correlated(b: int, d: int, seed: int) -> torch.Tensor:
    base = randn(b, 2, seed=seed)
    mix = randn(2, d, seed=seed + 1)
    return base @ mix + 0.3 * randn(b, d, seed=seed + 2)


def covariance(learner_fn: Callable) -> None:
    """Check ``learner_fn(z) -> scalar`` against ``sslkit.losses.covariance``.

    VICReg's covariance term (*VICReg*, 2021, arXiv 2105.04906): ``z`` ``(B, D)``, the sum of
    the squared off-diagonal entries of the unbiased covariance over the batch, divided by
    ``D``. Cases (6): correlated dimensions (no centring, a 1/B, the diagonal kept, a missing or
    wrong division, absolute values and correlations instead of covariances are named);
    independent dimensions; columns with large means (no centring); D = 1 (no off-diagonal
    entry: 0); a batch of two; gradient to ``z``.
    """
    run_checks("covariance", {
        "B=16, D=6, correlated dimensions": lambda: _compare_covariance(
            learner_fn, _correlated(16, 6, seed=10)),
        "independent dimensions": lambda: _compare_covariance(learner_fn, randn(32, 5, seed=13)),
        "columns with large means": lambda: _compare_covariance(
            learner_fn, _correlated(12, 4, seed=14) + 5.0),
        "D = 1: no off-diagonal entry": lambda: _compare_covariance(
            learner_fn, randn(8, 1, seed=17)),
        "a batch of two": lambda: _compare_covariance(learner_fn, randn(2, 4, seed=18)),
        "gradient reaches z": lambda: check_gradient_flow("covariance term", learner_fn,
                                                          _correlated(10, 4, seed=19)),
    })


# ---------------------------------------------------------------------------- the whole loss
_LOSS_RULE = ("λ·MSE(z1, z2) (the mean over the batch and the dimensions) + μ·[variance(z1) + "
              "variance(z2)] + ν·[covariance(z1) + covariance(z2)]")


def _loss_variants(z1, z2, w) -> list[tuple[torch.Tensor, str]]:
    from .. import losses

    z1, z2 = z1.double(), z2.double()
    lam, mu, nu = w
    inv = F.mse_loss(z1, z2)
    var = losses.variance(z1).double() + losses.variance(z2).double()
    cov = losses.covariance(z1).double() + losses.covariance(z2).double()
    return [
        (lam * (z1 - z2).pow(2).sum(1).mean() + mu * var + nu * cov,
         "your invariance sums over the dimensions: it is the mean squared difference over the "
         "batch *and* the dimensions (F.mse_loss)"),
        (lam * inv + 2 * mu * losses.variance(z1).double()
         + 2 * nu * losses.covariance(z1).double(),
         "the variance and covariance terms must be computed for each view and added: "
         "variance(z1) + variance(z2)"),
        (lam * inv + mu * var / 2 + nu * cov / 2,
         "you averaged the two views' terms: VICReg adds them, variance(z1) + variance(z2)"),
        (mu * inv + lam * var + nu * cov,
         "the weights are swapped: sim_weight (λ) multiplies the invariance, var_weight (μ) "
         "the variance terms, cov_weight (ν) the covariance terms"),
        (lam * inv + nu * var + mu * cov,
         "the weights are swapped: var_weight (μ) multiplies the variance terms, cov_weight (ν) "
         "the covariance terms"),
    ]


def _compare_loss(learner_fn: Callable, z1, z2, w=(25.0, 25.0, 1.0)):
    from .. import losses

    want = losses.vicreg_loss(z1.clone(), z2.clone(), *w)
    got = _call(learner_fn, z1, z2, *w)
    try:
        compare("VICReg loss", got, want, check_dtype=False, **_TOL)
    except CheckFailed as err:
        hint = mistake_hint(got, _loss_variants(z1, z2, w), _LOSS_RULE + (
            "; if your variance or covariance fails its own check, fix that first"), **_TOL)
        raise CheckFailed(f"{err}. Hint: {hint}") from None


def vicreg_loss(learner_fn: Callable) -> None:
    """Check ``learner_fn(z1, z2, sim_weight, var_weight, cov_weight) -> scalar`` against
    ``sslkit.losses.vicreg_loss``.

    VICReg (*VICReg*, 2021, arXiv 2105.04906, Eq. 6): ``λ·MSE(z1, z2) + μ·[v(z1) + v(z2)] +
    ν·[c(z1) + c(z2)]`` for ``z1``, ``z2`` ``(B, D)``. Cases (6): the paper's weights on two
    related views (an invariance summed over the dimensions, one view's terms only and averaged
    terms are named); weights (1, 2, 3) (swapped weights); identical views (only the variance
    and covariance terms remain); the variance term switched off (μ = 0); the covariance term
    switched off (ν = 0); gradient to both views.
    """
    z1 = _correlated(16, 6, seed=30)
    z2 = z1 + 0.3 * randn(16, 6, seed=33)
    run_checks("vicreg_loss", {
        "the paper's weights λ = μ = 25, ν = 1": lambda: _compare_loss(learner_fn, z1, z2),
        "weights (λ, μ, ν) = (1, 2, 3)": lambda: _compare_loss(learner_fn, z1, z2, (1.0, 2.0, 3.0)),
        "identical views": lambda: _compare_loss(learner_fn, z1, z1.clone()),
        "μ = 0 (no variance term)": lambda: _compare_loss(learner_fn, z1, z2, (25.0, 0.0, 1.0)),
        "ν = 0 (no covariance term)": lambda: _compare_loss(learner_fn, z1, z2, (25.0, 25.0, 0.0)),
        "gradient reaches both views": lambda: check_gradient_flow(
            "VICReg loss", lambda a, b: learner_fn(a, b, 25.0, 25.0, 1.0), z1, z2),
    })
