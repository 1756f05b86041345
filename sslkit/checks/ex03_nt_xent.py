"""Self-checks of exercise 03 (SimCLR): the NT-Xent loss.

The reference is ``sslkit.losses.nt_xent`` (*A Simple Framework for Contrastive Learning of
Visual Representations*, 2020, arXiv 2002.05709). A wrong value is compared with the values of
the usual mistakes (self-similarity kept, no temperature, no normalisation, a sum, one direction
only, negatives from the other view only) computed on the same inputs, and the one it matches is
named.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F

from ._core import (
    CheckFailed,
    check_gradient_flow,
    compare,
    format_value,
    randn,
    run_checks,
    unit_rows,
)

__all__ = ["nt_xent"]


def _nt_xent_variant(z1: torch.Tensor, z2: torch.Tensor, temperature: float, *,
                     normalise: bool = True, mask: bool = True, negatives: str = "all",
                     anchors: str = "both", reduction: str = "mean") -> float:
    """NT-Xent in float64, or one of its usual mistakes (see :data:`_NT_XENT_MISTAKES`)."""
    z1, z2 = z1.detach().double(), z2.detach().double()
    if normalise:
        z1, z2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    b = z1.shape[0]
    target = torch.arange(b)
    if negatives == "all":
        z = torch.cat([z1, z2])
        logits = z @ z.T / temperature                                  # (2B, 2B)
        if mask:
            logits = logits.masked_fill(torch.eye(2 * b, dtype=torch.bool), float("-inf"))
        per_anchor = F.cross_entropy(logits, torch.cat([target + b, target]), reduction="none")
    else:  # only the B views of the other side are keys
        logits = z1 @ z2.T / temperature                                # (B, B)
        per_anchor = torch.cat([F.cross_entropy(logits, target, reduction="none"),
                                F.cross_entropy(logits.T, target, reduction="none")])
    if anchors == "first":
        per_anchor = per_anchor[:b]
    return float(per_anchor.mean() if reduction == "mean" else per_anchor.sum())


class _Mistake(NamedTuple):
    """A usual NT-Xent mistake: the keywords of :func:`_nt_xent_variant` that compute it, the τ
    it uses instead of the given one (``None``: the given τ), and the hint that names it."""

    variant: dict
    tau: Callable[[float], float] | None
    hint: str


_SELF_SIMILARITY_KEPT = _Mistake(dict(mask=False), None, (
    "the self-similarity is not excluded: each view's similarity with itself, s_aa / τ = 1 / τ, "
    "is the largest logit of its row and sits in the denominator. Mask the diagonal of the "
    "(2B, 2B) logits before the softmax: logits.masked_fill(torch.eye(2 * B, dtype=torch.bool), "
    "float('-inf'))"))
_NO_TEMPERATURE = _Mistake({}, lambda tau: 1.0, (
    "the temperature is not applied: divide the cosine similarities by τ before the softmax "
    "(logits = sim / temperature)"))
_TIMES_TEMPERATURE = _Mistake({}, lambda tau: 1.0 / tau, (
    "you multiplied the similarities by τ: divide them by τ (logits = sim / temperature)"))
_NO_NORMALISATION = _Mistake(dict(normalise=False), None, (
    "the inputs are not normalised: the similarities must be cosines, so L2-normalise each row "
    "of z1 and z2 first (F.normalize(z, dim=1)); these inputs are not unit length"))
_SUM = _Mistake(dict(reduction="sum"), None,
                "the loss is the mean over the 2B anchors, not their sum")
_ONE_DIRECTION = _Mistake(dict(anchors="first"), None, (
    "only the B views of z1 are anchors: the views of z2 are anchors too (their positive is in "
    "z1), and the loss is the mean of all 2B terms, so that it is symmetric in z1 and z2"))
_OTHER_VIEW_ONLY = _Mistake(dict(negatives="other"), None, (
    "your negatives are only the B − 1 views of the other side: the negatives of a view are all "
    "2B − 2 other views, those of its own side included (one (2B, 2B) similarity matrix of "
    "torch.cat([z1, z2]))"))
_NT_XENT_MISTAKES = (  # tried in this order; the first whose value matches is named
    _SELF_SIMILARITY_KEPT, _NO_TEMPERATURE, _TIMES_TEMPERATURE, _NO_NORMALISATION, _SUM,
    _ONE_DIRECTION, _OTHER_VIEW_ONLY,
)


def _nt_xent_diagnosis(got: float, z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> str:
    """The hint of the usual mistake whose value ``got`` is, or a general hint."""
    want = _nt_xent_variant(z1, z2, temperature)

    def same(a, b):  # float32 rounding, well inside the check's tolerance (rtol=1e-4)
        return math.isclose(a, b, rel_tol=2e-5, abs_tol=1e-6)

    if math.isfinite(got):
        if z1.shape[0] > 1 and same(got, 2 * want):
            return "you divided by B; the mean runs over all 2B anchors (divide by 2B)"
        for mistake in _NT_XENT_MISTAKES:
            tau = mistake.tau(temperature) if mistake.tau else temperature
            value = _nt_xent_variant(z1, z2, tau, **mistake.variant)
            if math.isfinite(value) and same(got, value) and not same(value, want):
                return mistake.hint
    return ("for each of the 2B views a: loss_a = −log( exp(s_a,pair(a) / τ) / Σ_{j ≠ a} "
            "exp(s_aj / τ) ), s the cosine similarity, pair(i) = i + B and pair(i + B) = i; "
            "return the mean of the 2B terms (F.cross_entropy on the masked (2B, 2B) logits)")


def _compare_nt_xent(learner_fn: Callable, z1: torch.Tensor, z2: torch.Tensor,
                     temperature: float, *, hint: str | None = None) -> None:
    """Compare ``learner_fn(z1, z2, temperature)`` with ``losses.nt_xent`` on copies."""
    from .. import losses

    want = losses.nt_xent(z1.clone(), z2.clone(), temperature)
    c1, c2 = z1.clone(), z2.clone()
    got = learner_fn(c1, c2, temperature)
    if not (torch.equal(c1, z1) and torch.equal(c2, z2)):
        raise CheckFailed("your function modified z1 or z2 in place; F.normalize returns a new "
                          "tensor (z = z / z.norm(...) rather than z /= ...)")
    if not isinstance(got, torch.Tensor):
        raise CheckFailed(f"loss: expected a 0-d torch.Tensor, got {type(got).__name__} (keep it "
                          "a tensor: .item() or float() would cut the gradient)")
    if got.dim() != 0:
        raise CheckFailed(f"loss: shape {tuple(got.shape)} differs from the expected () : return "
                          "the mean over the 2B anchors, a 0-d tensor")
    check_dtype = z1.dtype == torch.float32
    try:
        compare("loss", got, want, atol=1e-5, rtol=1e-4, check_dtype=check_dtype)
    except CheckFailed as err:
        detail = hint if hint and not math.isfinite(float(got)) else _nt_xent_diagnosis(
            float(got), z1, z2, temperature)
        raise CheckFailed(f"{err}. Hint: {detail}") from None


def _hand_case(learner_fn: Callable) -> None:
    """B = 2, z1 = z2 = the unit vectors of the plane, τ = 0.5: every anchor sees its positive at
    cosine 1 and two negatives at cosine 0, so the loss is log(1 + 2·e^(−1/τ))."""
    z = torch.eye(2)
    want = math.log(1 + 2 * math.exp(-2.0))
    got = learner_fn(z.clone(), z.clone(), 0.5)
    if not isinstance(got, torch.Tensor) or got.numel() != 1:
        raise CheckFailed(f"loss: expected a 0-d tensor, got {type(got).__name__}"
                          + (f" of shape {tuple(got.shape)}" if isinstance(got, torch.Tensor)
                             else ""))
    value = float(got)
    if not math.isclose(value, want, rel_tol=1e-4, abs_tol=1e-6):
        raise CheckFailed(f"loss: got {format_value(value)}, expected log(1 + 2·e^−2) = "
                          f"{want:.6g}. Hint: {_nt_xent_diagnosis(value, z, z, 0.5)}")


_STABILITY_HINT = ("compute −log softmax with F.cross_entropy on the logits, or with "
                   "torch.logsumexp: both subtract the row maximum before exp. exp(s / τ) "
                   "itself overflows float32 once s / τ > 88.7, and subtracting exp(1 / τ) from a "
                   "sum that includes it loses all precision; mask the diagonal with -inf instead")


def nt_xent(learner_fn: Callable) -> None:
    """Check ``learner_fn(z1, z2, temperature) -> loss`` against ``sslkit.losses.nt_xent``.

    NT-Xent of *A Simple Framework for Contrastive Learning of Visual Representations* (2020,
    arXiv 2002.05709): ``z1``, ``z2`` ``(B, D)``, row ``i`` of each a view of image ``i`` → the
    mean over the ``2B`` views of ``−log(exp(s_pos / τ) / Σ_{j ≠ a} exp(s_aj / τ))``, cosine
    similarities, a 0-d float32 tensor. Cases (11): the hand-computable ``B = 2`` case
    ``log(1 + 2e^−2)``; random inputs for three ``(B, D, τ)``; inputs of norms 0.02 to 50 (must be
    normalised); ``τ = 0.05`` with norm-100 inputs and ``τ = 0.01`` with nearly identical pairs
    (numerical stability); ``B = 1`` (only the positive is left: the loss is 0); symmetry in
    ``z1``, ``z2``; float64 inputs; gradient flow to both inputs. A wrong value is matched with
    the usual mistakes and the hint names the one it is.
    """
    def same(z1, z2, tau, hint=None):
        return lambda: _compare_nt_xent(learner_fn, z1, z2, tau, hint=hint)

    def lengths(n, seed):  # norms from about 0.02 to 50
        return randn(n, 1, seed=seed, scale=2.0).exp()

    near = unit_rows(randn(6, 12, seed=36))

    def symmetric() -> None:
        z1, z2 = randn(6, 8, seed=37), randn(6, 8, seed=38)
        a, b = learner_fn(z1.clone(), z2.clone(), 0.3), learner_fn(z2.clone(), z1.clone(), 0.3)
        try:
            compare("nt_xent(z2, z1)", b, a, atol=1e-6, rtol=1e-5)
        except CheckFailed as err:
            raise CheckFailed(f"{err} = nt_xent(z1, z2): swapping the two views changed the loss. "
                              f"Hint: {_ONE_DIRECTION.hint}") from None

    run_checks("nt_xent", {
        "by hand: B=2, z1 = z2 = [[1, 0], [0, 1]], τ=0.5 gives log(1 + 2·e^−2) = 0.23954":
            lambda: _hand_case(learner_fn),
        "random z (8, 16), τ=0.5": same(randn(8, 16, seed=30), randn(8, 16, seed=31), 0.5),
        "random z (4, 3), τ=0.1": same(randn(4, 3, seed=32), randn(4, 3, seed=33), 0.1),
        "random z (16, 32), τ=0.2": same(randn(16, 32, seed=34), randn(16, 32, seed=35), 0.2),
        "unnormalised inputs, norms 0.02 to 50: the loss uses cosines": same(
            randn(8, 5, seed=39) * lengths(8, 40), randn(8, 5, seed=41) * lengths(8, 42), 0.5),
        "τ=0.05 with inputs of norm 100: finite, no overflow": same(
            100 * unit_rows(randn(8, 6, seed=43)), 100 * unit_rows(randn(8, 6, seed=44)), 0.05,
            hint=_NO_NORMALISATION.hint + "; " + _STABILITY_HINT),
        "τ=0.01 with nearly identical pairs: exp(0.99 / 0.01) overflows float32": same(
            near, near + 0.01 * randn(6, 12, seed=45), 0.01, hint=_STABILITY_HINT),
        "B=1: only the positive is left in the denominator, so the loss is 0": same(
            randn(1, 4, seed=46), randn(1, 4, seed=47), 0.5),
        "symmetric: nt_xent(z2, z1) equals nt_xent(z1, z2)": symmetric,
        "float64 inputs (5, 7), τ=0.3 (any float dtype is accepted for the result)": same(
            randn(5, 7, seed=48, dtype=torch.float64), randn(5, 7, seed=49, dtype=torch.float64),
            0.3),
        "gradient flows to both z1 and z2": lambda: check_gradient_flow(
            "nt_xent", lambda a, b: learner_fn(a, b, 0.5), randn(4, 6, seed=50),
            randn(4, 6, seed=51)),
    })
