"""Self-checks of exercise 06 (self-distillation): DINO's loss and its centre update.

The references are ``sslkit.losses.dino_loss`` and ``sslkit.methods.update_center_``, from
*Emerging Properties in Self-Supervised Vision Transformers* (DINO, 2021, arXiv 2104.14294). A
wrong answer is compared with the usual mistakes (no centring, the student centred too, the two
temperatures swapped or forgotten, a view paired with itself, a softmax over the batch, a sum
instead of a mean, a teacher that passes gradient; a centre moved by the swapped momentum, by
the mean over prototypes, by probabilities instead of logits, by one view only, or not in place)
and the message names the one it matches.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ._core import CheckFailed, compare, mistake_hint, randn, run_checks

__all__ = ["dino_loss", "update_center"]

_LOSS_RULE = ("P_t = softmax((teacher − center) / τ_t) over the prototypes (dim=-1), log P_s = "
              "log_softmax(student / τ_s, dim=-1); the cross-entropy −Σ_k P_t·log P_s, averaged "
              "over the batch, for every pair (teacher view i, student view j) with i ≠ j, "
              "then averaged over those pairs")


def _pairs(p_t: torch.Tensor, log_p_s: torch.Tensor, *, same_view: bool = False,
           reduce: str = "mean") -> torch.Tensor:
    """Cross-entropy per (teacher view, student view) pair, reduced over the pairs kept."""
    ce = -torch.einsum("ibk,jbk->ijb", p_t, log_p_s).mean(dim=-1)        # (Vt, Vs)
    keep = torch.ones_like(ce, dtype=torch.bool)
    if not same_view:
        keep &= ~torch.eye(*ce.shape, dtype=torch.bool)
    return ce[keep].mean() if reduce == "mean" else ce[keep].sum()


def _loss_variants(student, teacher, center, tau_s, tau_t) -> list[tuple[torch.Tensor, str]]:
    s, t, c = student.double(), teacher.double(), center.double()
    p_t = F.softmax((t - c) / tau_t, dim=-1)
    log_p_s = F.log_softmax(s / tau_s, dim=-1)
    return [
        (_pairs(F.softmax(t / tau_t, dim=-1), log_p_s),
         "your loss ignores the centre: subtract it from the teacher's logits before the "
         "softmax, (teacher − center) / τ_t"),
        (_pairs(p_t, F.log_softmax((s - c) / tau_s, dim=-1)),
         "you centred the student too: only the teacher is centred (the centre is a statistic "
         "of the teacher's outputs)"),
        (_pairs(F.softmax((t - c) / tau_s, dim=-1), F.log_softmax(s / tau_t, dim=-1)),
         "you swapped the temperatures: the teacher is sharpened with the small τ_t, the "
         "student uses τ_s"),
        (_pairs(F.softmax(t - c, dim=-1), log_p_s),
         "the teacher's softmax has no temperature: divide (teacher − center) by τ_t (the "
         "sharpening)"),
        (_pairs(p_t, F.log_softmax(s, dim=-1)),
         "the student's log-softmax has no temperature: divide the student's logits by τ_s"),
        (_pairs(p_t, log_p_s, same_view=True),
         "you also paired each global view with itself: skip the pairs i == j (a view must "
         "predict the teacher's output on another view)"),
        (_pairs(p_t, log_p_s, reduce="sum"),
         "you summed over the view pairs: average over them"),
        (_pairs(F.softmax((t - c) / tau_t, dim=1), F.log_softmax(s / tau_s, dim=1)),
         "your softmax runs over the batch (dim=1): it runs over the K prototypes (dim=-1)"),
    ]


def _compare_loss(learner_fn: Callable, student, teacher, center, tau_s=0.1, tau_t=0.04):
    from .. import losses

    want = losses.dino_loss(student.clone(), teacher.clone(), center.clone(), tau_s, tau_t)
    got = learner_fn(student.clone(), teacher.clone(), center.clone(), tau_s, tau_t)
    try:
        compare("loss", got, want, atol=1e-5, rtol=1e-4, check_dtype=False)
    except CheckFailed as err:
        hint = mistake_hint(got, _loss_variants(student, teacher, center, tau_s, tau_t),
                            _LOSS_RULE, atol=1e-5, rtol=1e-4)
        raise CheckFailed(f"{err}. Hint: {hint}") from None


def _logits(v: int, b: int, k: int, seed: int, scale: float = 1.0) -> torch.Tensor:
    return randn(v, b, k, seed=seed, scale=scale)


def _gradient_only_to_the_student(learner_fn: Callable) -> None:
    student = _logits(4, 6, 8, seed=20).requires_grad_(True)
    teacher = _logits(2, 6, 8, seed=21).requires_grad_(True)
    loss = learner_fn(student, teacher, torch.zeros(8), 0.1, 0.04)
    if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
        raise CheckFailed(f"expected a scalar tensor, got {getattr(loss, 'shape', type(loss))}")
    loss.backward()
    if student.grad is None or not bool(student.grad.abs().sum() > 0):
        raise CheckFailed("no gradient reaches the student's logits: keep them in the graph "
                          "(no .detach() or torch.no_grad() around the student)")
    if teacher.grad is not None and bool(teacher.grad.abs().sum() > 0):
        raise CheckFailed("gradient reaches the teacher's logits: the teacher is a target, "
                          "detach it (teacher.detach()) before its softmax")


def dino_loss(learner_fn: Callable) -> None:
    """Check ``learner_fn(student_logits, teacher_logits, center, student_temperature,
    teacher_temperature) -> loss`` against ``sslkit.losses.dino_loss``.

    DINO's loss (*Emerging Properties in Self-Supervised Vision Transformers*, 2021, arXiv
    2104.14294): ``student_logits`` ``(Vs, B, K)`` for every view, ``teacher_logits``
    ``(Vt, B, K)`` for the global views (the student's first ``Vt`` views are the same crops),
    ``center`` ``(K,)``; the teacher's centred and sharpened softmax is the target of the
    student's softmax on every *other* view. Cases (7): two global and two local views with a
    non-zero centre (a forgotten centre, a centred student, swapped or missing temperatures,
    same-view pairs, a sum over pairs and a softmax over the batch are named); two views only
    (one pair each way); the teacher equal to the student (the loss is then the mean entropy
    over different views, not zero); large logits (no overflow); ``τ_t = τ_s`` (no sharpening);
    a batch of one; gradient to the student and none to the teacher.
    """
    center = randn(8, seed=3, scale=0.5)

    def equal_teacher() -> None:
        s = _logits(2, 5, 8, seed=30)
        _compare_loss(learner_fn, s, s[:2].clone(), torch.zeros(8))

    run_checks("dino_loss", {
        "2 global + 2 local views, B=6, K=8, a centre": lambda: _compare_loss(
            learner_fn, _logits(4, 6, 8, seed=1), _logits(2, 6, 8, seed=2), center),
        "2 views only": lambda: _compare_loss(
            learner_fn, _logits(2, 6, 8, seed=4), _logits(2, 6, 8, seed=5), center),
        "teacher = student": equal_teacher,
        "large logits (×30)": lambda: _compare_loss(
            learner_fn, _logits(3, 4, 8, seed=6, scale=30.0), _logits(2, 4, 8, seed=7, scale=30.0),
            center * 30),
        "τ_t = τ_s = 0.1 (no sharpening)": lambda: _compare_loss(
            learner_fn, _logits(3, 4, 8, seed=8), _logits(2, 4, 8, seed=9), center, 0.1, 0.1),
        "a batch of one": lambda: _compare_loss(
            learner_fn, _logits(4, 1, 8, seed=10), _logits(2, 1, 8, seed=11), center),
        "gradient reaches the student, not the teacher": lambda: _gradient_only_to_the_student(
            learner_fn),
    })


# ---------------------------------------------------------------------------- the centre
def _center_variants(center, teacher, m) -> list[tuple[torch.Tensor, str]]:
    c, t = center.double(), teacher.double()
    k = c.shape[0]
    batch_mean = t.reshape(-1, k).mean(0)
    return [
        ((1 - m) * c + m * batch_mean,
         f"you swapped the momentum: the old centre keeps the weight m = {m:g} and the new "
         "batch mean gets 1 − m"),
        (m * c + (1 - m) * t.mean(-1).mean(),
         "you averaged over the prototypes (dim=-1): the centre has one value per prototype, the "
         "mean over every view and sample"),
        (m * c + (1 - m) * F.softmax(t, dim=-1).reshape(-1, k).mean(0),
         "you averaged probabilities: the centre is a running mean of the teacher's *logits*"),
        (m * c + (1 - m) * t[0].mean(0),
         "you used the first view only: average over every teacher view and sample"),
        (m * c + (1 - m) * t.reshape(-1, k).sum(0),
         "you summed the logits: take their mean over the views and samples"),
    ]


def _compare_center(learner_fn: Callable, center, teacher, m):
    from ..methods import update_center_

    want = center.clone()
    update_center_(want, teacher.clone(), m)
    mine = center.clone()
    out = learner_fn(mine, teacher.clone(), m)
    if torch.equal(mine, center):
        returned = isinstance(out, torch.Tensor) and tuple(out.shape) == tuple(center.shape)
        raise CheckFailed("the centre did not change: update it in place (center.mul_(m).add_("
                          "…)), as the method keeps it in a buffer" + (
                              "; you returned a new tensor instead" if returned else ""))
    try:
        compare("center after the update", mine, want, atol=1e-6, rtol=1e-5)
    except CheckFailed as err:
        hint = mistake_hint(mine, _center_variants(center, teacher, m),
                            "c ← m·c + (1 − m)·mean of the teacher's logits over every view and "
                            "sample", atol=1e-6, rtol=1e-5)
        raise CheckFailed(f"{err}. Hint: {hint}") from None


def update_center(learner_fn: Callable) -> None:
    """Check ``learner_fn(center, teacher_logits, momentum)`` (in place) against
    ``sslkit.methods.update_center_``.

    DINO's centre (*Emerging Properties in Self-Supervised Vision Transformers*, 2021, arXiv
    2104.14294) is an exponential moving average of the teacher's mean logit:
    ``c ← m·c + (1 − m)·mean(teacher_logits)`` over every view and sample, updated in place.
    Cases (5): two views, ``m = 0.9`` from a non-zero centre (a swapped momentum, a mean over the
    prototypes, probabilities instead of logits, one view only and a sum are named); ``m = 0``
    (the centre becomes the batch mean); ``m = 0.99``; a teacher given as ``(N, K)``; the
    update must happen in place.
    """
    c0 = randn(8, seed=40, scale=0.5)
    run_checks("update_center", {
        "two views, m=0.9": lambda: _compare_center(learner_fn, c0, _logits(2, 6, 8, seed=41),
                                                    0.9),
        "m=0: the centre becomes the batch mean": lambda: _compare_center(
            learner_fn, c0, _logits(2, 6, 8, seed=42), 0.0),
        "m=0.99": lambda: _compare_center(learner_fn, c0, _logits(2, 6, 8, seed=43), 0.99),
        "teacher logits as (N, K)": lambda: _compare_center(
            learner_fn, c0, randn(10, 8, seed=44), 0.9),
        "updated in place": lambda: _compare_center(learner_fn, torch.zeros(8),
                                                    _logits(2, 3, 8, seed=45), 0.5),
    })
