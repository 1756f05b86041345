"""Self-checks of exercise 05 (clustering): Sinkhorn-Knopp codes and clustering accuracy.

The references are ``sslkit.cluster.sinkhorn_knopp`` (the equipartitioned soft codes of
*Self-labelling via simultaneous clustering and representation learning*, 2019, arXiv
1911.05371, and *Unsupervised Learning of Visual Features by Contrasting Cluster Assignments*,
2020, arXiv 2006.09882) and ``sslkit.cluster.cluster_accuracy`` (accuracy after the Hungarian
matching of clusters to classes, the metric of *SCAN: Learning to Classify Images without
Labels*, 2020, arXiv 2005.12320). A wrong answer is compared with the usual mistakes (rows
normalised only, the two steps in the wrong order, ``ε`` forgotten, a transposed output,
overflow; plain accuracy, greedy matching, a minimised matching, a square table) and the message
names the one it matches.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ._core import CheckFailed, compare, format_value, randn, run_checks

__all__ = ["sinkhorn_knopp", "cluster_accuracy"]


# ---------------------------------------------------------------------------- Sinkhorn-Knopp
_SINKHORN_RULE = ("start from log Q = scores / ε; each of the `iters` rounds first makes every "
                  "column hold the same mass (subtract the logsumexp over the batch, dim=0), "
                  "then every row hold 1 (subtract the logsumexp over the prototypes, dim=1); "
                  "return exp(log Q)")


def _cosines(b: int, k: int, seed: int, d: int = 16) -> torch.Tensor:
    """Scores of SwAV's kind: cosines of ``b`` unit vectors with ``k`` unit prototypes, in
    ``[-1, 1]``."""
    z = F.normalize(randn(b, d, seed=seed), dim=1)
    c = F.normalize(randn(k, d, seed=seed + 1000), dim=1)
    return z @ c.T


def _log_domain(scores: torch.Tensor, epsilon: float, iters: int, *, rows_first: bool = False
                ) -> torch.Tensor:
    """The alternating scaling in float64, columns then rows (or the reverse)."""
    log_q = scores.detach().double() / epsilon
    steps = (1, 0) if rows_first else (0, 1)
    for _ in range(iters):
        for dim in steps:
            log_q = log_q - log_q.logsumexp(dim=dim, keepdim=True)
    return log_q.exp()


def _sinkhorn_mistake(got: torch.Tensor, scores: torch.Tensor, epsilon: float, iters: int
                      ) -> str | None:
    """Name the usual mistake whose output ``got`` matches, if any."""
    from .. import cluster

    b, k = scores.shape
    if tuple(got.shape) == (k, b) and b != k:
        return (f"your codes have shape {tuple(got.shape)} = (K, B): the codes are one row per "
                f"sample, (B, K) = {(b, k)}, like the scores (if you worked on the transpose, "
                "as the authors' code does, transpose back before returning)")
    got = got.detach().double()
    if not bool(torch.isfinite(got).all()):
        return (f"your codes contain NaN or inf: exp(scores / ε) overflows float32 as soon as "
                f"scores / ε > 88 (here ε = {epsilon:g}, so a score of 1 gives exp"
                f"({1 / epsilon:g})). Work in the log domain (subtract logsumexp instead of "
                "dividing by sums of exponentials), or at least subtract the maximum before exp")
    variants = [
        (torch.softmax(scores.double() / epsilon, dim=1),
         "you normalised the rows only (a softmax over the prototypes): every sample holds 1 "
         "but nothing makes the prototypes share the batch equally. Each round must ALSO "
         "rescale the columns (the equipartition), and do it first"),
        (_log_domain(scores, epsilon, iters, rows_first=True),
         "you rescale the rows first and the columns last, so your rows do not sum to 1: each "
         "round ends with the rows (columns first, then rows)"),
        (torch.softmax(scores.double() / epsilon, dim=0),
         "you normalised the columns only: each round must end by making every row sum to 1"),
        (_log_domain(scores, 1.0, iters),
         "your codes are those of ε = 1: divide the scores by ε before exponentiating "
         "(log Q = scores / ε)"),
        (_log_domain(scores, 1.0 / epsilon, iters),
         "you multiplied the scores by ε instead of dividing by it"),
        (cluster.sinkhorn_knopp(scores.double(), epsilon, iters + 1),
         f"your codes are those of {iters + 1} rounds, not {iters}: one round is one column "
         "step followed by one row step"),
    ]
    if iters > 1:
        variants.append((cluster.sinkhorn_knopp(scores.double(), epsilon, iters - 1),
                         f"your codes are those of {iters - 1} rounds, not {iters}: run "
                         "`iters` rounds, each a column step then a row step"))
    if tuple(got.shape) != (b, k):
        return None
    for want, hint in variants:
        if torch.allclose(got, want, atol=1e-5, rtol=1e-4):
            return hint
    rows = got.sum(1)
    if not torch.allclose(rows, torch.ones_like(rows), atol=1e-4):
        worst = int((rows - 1).abs().argmax())
        return (f"your row {worst} sums to {format_value(rows[worst].item())}, not 1: each "
                "round must end with the row step (every sample holds one unit of mass)")
    return None


def _compare_sinkhorn(learner_fn: Callable, scores: torch.Tensor, epsilon: float, iters: int,
                      *, requires_grad: bool = False) -> None:
    from .. import cluster

    want = cluster.sinkhorn_knopp(scores.clone(), epsilon, iters)
    mine = scores.clone().requires_grad_(requires_grad)
    got = learner_fn(mine, epsilon, iters)
    if not torch.equal(mine.detach(), scores):
        raise CheckFailed("your function modified the scores in place; work on a copy "
                          "(log_q = scores / epsilon, not scores.div_(epsilon))")
    if not isinstance(got, torch.Tensor):
        raise CheckFailed(f"expected a torch.Tensor of codes, got {type(got).__name__}")
    if got.requires_grad or got.grad_fn is not None:
        raise CheckFailed("your codes require grad (they are still attached to the scores' "
                          "autograd graph): the codes are targets, constants of the loss. Hint: "
                          "decorate the function with @torch.no_grad() or start from "
                          "scores.detach()")
    mistake = _sinkhorn_mistake(got, scores, epsilon, iters)
    try:
        compare("codes", got, want, atol=1e-5, rtol=1e-4)
    except CheckFailed as err:
        raise CheckFailed(f"{err}. Hint: {mistake or _SINKHORN_RULE}") from None


def _columns_balance(learner_fn: Callable) -> None:
    """With many rounds the column sums reach B/K (and the rows stay at 1)."""
    scores = _cosines(12, 4, seed=140) * 3
    got = learner_fn(scores.clone(), 0.1, 200)
    if not isinstance(got, torch.Tensor) or tuple(got.shape) != (12, 4):
        raise CheckFailed(f"expected codes of shape (12, 4), got "
                          f"{tuple(got.shape) if isinstance(got, torch.Tensor) else type(got)}")
    cols, rows = got.detach().double().sum(0), got.detach().double().sum(1)
    if not torch.allclose(cols, torch.full_like(cols, 3.0), atol=1e-3):
        hint = _sinkhorn_mistake(got, scores, 0.1, 200) or _SINKHORN_RULE
        raise CheckFailed(f"after 200 rounds the column sums are "
                          f"{[round(v, 3) for v in cols.tolist()]}, expected B/K = 12/4 = 3 "
                          f"each. Hint: {hint}")
    if not torch.allclose(rows, torch.ones_like(rows), atol=1e-5):
        raise CheckFailed(f"after 200 rounds the row sums are "
                          f"{[round(v, 4) for v in rows.tolist()]}, expected 1. Hint: each "
                          "round ends with the row step")
    compare("codes after 200 rounds", got, _log_domain(scores, 0.1, 200).float(), atol=1e-5,
            rtol=1e-4, check_dtype=False)


def _raises_value_error(learner_fn: Callable, calls, why: str) -> None:
    for what, args in calls:
        try:
            learner_fn(*args)
        except ValueError:
            continue
        except NotImplementedError:
            raise
        except Exception as err:
            raise CheckFailed(f"{what}: your code raised {type(err).__name__}: {err}; expected "
                              f"ValueError. Hint: {why}") from err
        raise CheckFailed(f"{what}: no ValueError. Hint: {why}")


def sinkhorn_knopp(learner_fn: Callable) -> None:
    """Check ``learner_fn(scores, epsilon, iters) -> codes`` against
    ``sslkit.cluster.sinkhorn_knopp``.

    The soft codes of SeLa (*Self-labelling via simultaneous clustering and representation
    learning*, 2019, arXiv 1911.05371) and SwAV (*Unsupervised Learning of Visual Features by
    Contrasting Cluster Assignments*, 2020, arXiv 2006.09882): ``scores`` ``(B, K)`` → codes
    ``(B, K)`` close to ``softmax(scores / ε)`` whose rows sum to 1 and whose columns approach
    ``B/K``, by ``iters`` rounds of a column then a row rescaling; no gradient; the dtype of
    float32 or float64 scores. Cases (10): cosine scores ``(16, 8)`` with ``ε = 0.05`` and 3
    rounds (SwAV's setting; rows only, the wrong order, a forgotten ``ε``, a transposed output
    and a wrong number of rounds are named); ``B < K`` ``(6, 10)``; one round; a batch of one
    (uniform codes); 200 rounds (columns at ``B/K``); ``ε = 0.01`` (``exp(100)`` overflows
    float32); float64 scores; scores that require grad (the codes must not); a non-square
    output shape ``(5, 3)``; ``ValueError`` for ``ε ≤ 0``, ``iters < 1`` and scores that are
    not 2-D.
    """
    def same(b, k, seed, epsilon, iters, dtype=torch.float32, d=16, **kwargs):
        return lambda: _compare_sinkhorn(learner_fn, _cosines(b, k, seed, d).to(dtype), epsilon,
                                         iters, **kwargs)

    def batch_of_one() -> None:
        scores = _cosines(1, 5, seed=150)
        got = learner_fn(scores.clone(), 0.05, 3)
        compare("codes of a batch of one", got, torch.full((1, 5), 0.2), atol=1e-6, rtol=1e-5)

    def bad_arguments() -> None:
        scores = _cosines(4, 3, seed=160)
        _raises_value_error(learner_fn, [
            ("epsilon=0", (scores, 0.0, 3)), ("epsilon=-0.05", (scores, -0.05, 3)),
            ("iters=0", (scores, 0.05, 0)),
            ("1-D scores of shape (3,)", (scores[0], 0.05, 3)),
            ("3-D scores of shape (2, 4, 3)", (torch.stack([scores, scores]), 0.05, 3)),
        ], "check the arguments first: raise ValueError unless epsilon > 0, iters >= 1 and "
           "scores.ndim == 2")

    run_checks("sinkhorn_knopp", {
        "cosine scores (16, 8), ε=0.05, 3 rounds (SwAV's setting)": same(16, 8, 100, 0.05, 3),
        "more prototypes than samples (6, 10), ε=0.1, 3 rounds": same(6, 10, 110, 0.1, 3),
        "one round (iters=1): one column step, then one row step": same(9, 4, 120, 0.05, 1),
        "a batch of one (1, 5): the only balanced code is uniform": batch_of_one,
        "200 rounds on (12, 4): columns sum to B/K = 3, rows to 1": lambda: (
            _columns_balance(learner_fn)),
        "ε=0.01 and cosine scores: exp(scores / ε) would overflow float32": same(
            20, 6, 130, 0.01, 3, d=3),
        "float64 scores give float64 codes": same(8, 5, 170, 0.05, 3, dtype=torch.float64),
        "scores that require grad: the codes do not (they are targets)": same(
            10, 4, 180, 0.05, 3, requires_grad=True),
        "(5, 3) scores give (5, 3) codes, one row per sample": same(5, 3, 190, 0.2, 2),
        "ε ≤ 0, iters < 1 and scores that are not 2-D raise ValueError": bad_arguments,
    })


# ---------------------------------------------------------------------------- cluster accuracy
_ACCURACY_RULE = ("build the (K, C) table of counts n[i, j] = samples in cluster i with label j "
                  "(map the ids to 0…K−1 and 0…C−1 with torch.unique(..., return_inverse=True)), "
                  "find the one-to-one matching that MAXIMISES the matched counts "
                  "(scipy.optimize.linear_sum_assignment(table, maximize=True)) and divide their "
                  "sum by N")


# float32 arithmetic on counts is fine: one sample is at least 1/N of the accuracy, far above it
_TOLERANCE = 1e-6


def _table(pred: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    _, p = torch.unique(pred, return_inverse=True)
    _, c = torch.unique(labels, return_inverse=True)
    table = torch.zeros(int(p.max()) + 1, int(c.max()) + 1, dtype=torch.long)
    table.index_put_((p, c), torch.ones_like(p), accumulate=True)
    return table


def _from_table(table, cluster_ids, class_ids, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Samples realising a contingency table (rows: clusters, columns: classes), shuffled."""
    pred, labels = [], []
    for i, row in enumerate(table):
        for j, count in enumerate(row):
            pred += [cluster_ids[i]] * count
            labels += [class_ids[j]] * count
    order = torch.randperm(len(pred), generator=torch.Generator().manual_seed(seed))
    return torch.tensor(pred)[order], torch.tensor(labels)[order]


def _random_labelling(n: int, k: int, c: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Labels with ``c`` classes and a noisy clustering of them into ``k`` clusters."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % c
    labels = labels[torch.randperm(n, generator=g)]
    rename = torch.randperm(max(k, c), generator=g)[:c] % k
    pred = rename[labels]
    noisy = torch.rand(n, generator=g) < 0.35
    pred[noisy] = torch.randint(k, (int(noisy.sum()),), generator=g)
    pred[:k] = torch.arange(k)  # every cluster used
    return pred, labels


def _accuracy_mistake(got: float, pred: torch.Tensor, labels: torch.Tensor) -> str | None:
    from scipy.optimize import linear_sum_assignment

    table = _table(pred, labels)
    n = float(len(pred))
    rows, cols = linear_sum_assignment(table.numpy())
    variants = [
        (float((pred == labels).double().mean()),
         "this is the plain accuracy pred == labels: cluster ids are arbitrary names, so "
         "match each cluster to a class first"),
        (float(table.max(1).values.sum()) / n,
         "this is the greedy map (each cluster to its majority class), which can send two "
         "clusters to the same class; the matching must be one-to-one (each class used at most "
         "once)"),
        (float(table[torch.as_tensor(rows), torch.as_tensor(cols)].sum()) / n,
         "this is the WORST one-to-one matching: linear_sum_assignment minimises by default; "
         "pass maximize=True (or minimise −table)"),
    ]
    for value, hint in variants:
        if abs(got - value) < _TOLERANCE:
            return hint
    return None


def _compare_accuracy(learner_fn: Callable, pred: torch.Tensor, labels: torch.Tensor,
                      hint: str | None = None) -> None:
    from .. import cluster

    want = cluster.cluster_accuracy(pred.clone(), labels.clone())
    p, y = pred.clone(), labels.clone()
    try:
        got = learner_fn(p, y)
    except (NotImplementedError, AssertionError):
        raise
    except Exception as err:
        raise CheckFailed(f"your code raised {type(err).__name__}: {err}. Hint: "
                          f"{hint or _ACCURACY_RULE}") from err
    if not (torch.equal(p, pred) and torch.equal(y, labels)):
        raise CheckFailed("your function modified pred or labels in place; work on copies")
    if isinstance(got, torch.Tensor) or not isinstance(got, float):
        raise CheckFailed(f"expected a Python float, got {type(got).__name__} ({got!r}). "
                          "Hint: return float(matched) / n")
    if abs(got - want) > _TOLERANCE:
        k, c = len(torch.unique(pred)), len(torch.unique(labels))
        mistake = _accuracy_mistake(got, pred, labels) or hint or _ACCURACY_RULE
        raise CheckFailed(f"accuracy (N={len(pred)}, K={k} clusters, C={c} classes): got "
                          f"{format_value(got)}, expected {format_value(want)}. Hint: {mistake}")


def cluster_accuracy(learner_fn: Callable) -> None:
    """Check ``learner_fn(pred, labels) -> float`` against ``sslkit.cluster.cluster_accuracy``.

    Clustering accuracy (the metric of *SCAN: Learning to Classify Images without Labels*, 2020,
    arXiv 2005.12320): the share of samples right after the best one-to-one map of clusters to
    classes (the Hungarian matching of the contingency table); clusters left unmatched count as
    wrong. ``pred``, ``labels`` ``(N,)`` integer ids → a Python float in ``[0, 1]``. Cases (9): a
    perfect clustering with renamed clusters (1, not the plain accuracy); a table where the
    greedy map sends two clusters to one class; a noisy clustering with ``K = C = 4``; more
    clusters than classes (``K = 5``, ``C = 3``); fewer clusters than classes (``K = 2``,
    ``C = 4``, a square table breaks); ids that are not ``0…K−1``; ten clusters and classes (the
    matching must be exact, not a search over 10! maps); the result is a float; ``ValueError``
    for inputs of different lengths and for empty inputs.
    """
    greedy_table = [[5, 3, 0], [4, 0, 2], [1, 1, 4]]  # greedy: clusters 0 and 1 → class 0

    def perfect() -> None:
        labels = torch.arange(24) % 4
        # one class keeps its id, so the plain accuracy (1/4) and the worst matching (0) differ
        _compare_accuracy(learner_fn, torch.tensor([0, 3, 1, 2])[labels], labels)

    def returns_float() -> None:
        got = learner_fn(*_random_labelling(30, 3, 3, seed=230))
        if isinstance(got, torch.Tensor) or not isinstance(got, float):
            raise CheckFailed(f"expected a Python float, got {type(got).__name__} ({got!r}). "
                              "Hint: return float(matched) / n")
        if not 0.0 <= got <= 1.0:
            raise CheckFailed(f"the accuracy {format_value(got)} is not in [0, 1]")

    def bad_inputs() -> None:
        _raises_value_error(learner_fn, [
            ("pred of 5 ids and labels of 4", (torch.arange(5), torch.arange(4))),
            ("empty pred and labels", (torch.zeros(0, dtype=torch.long),
                                       torch.zeros(0, dtype=torch.long))),
        ], "check the inputs first: raise ValueError when len(pred) != len(labels) or when "
           "they are empty")

    square = ("with K ≠ C the table of counts is rectangular (K, C); do not assume as many "
              "clusters as classes. " + _ACCURACY_RULE)
    run_checks("cluster_accuracy", {
        "a perfect clustering whose clusters are renamed scores 1": perfect,
        "two clusters share a majority class: the matching is one-to-one": lambda: (
            _compare_accuracy(learner_fn, *_from_table(greedy_table, [0, 1, 2], [0, 1, 2], 200))),
        "a noisy clustering, K = C = 4, N = 60": lambda: _compare_accuracy(
            learner_fn, *_random_labelling(60, 4, 4, seed=210)),
        "more clusters than classes (K=5, C=3): unmatched clusters count as wrong": lambda: (
            _compare_accuracy(learner_fn, *_random_labelling(50, 5, 3, seed=212), hint=square)),
        "fewer clusters than classes (K=2, C=4)": lambda: _compare_accuracy(
            learner_fn, *_random_labelling(40, 2, 4, seed=214), hint=square),
        "ids that are not 0…K−1 (clusters 3, 7, 42; classes 10, 20, 30)": lambda: (
            _compare_accuracy(learner_fn, *_from_table(greedy_table, [3, 7, 42], [10, 20, 30],
                                                       216),
                              hint="the ids are names, not row numbers: map them to 0…K−1 "
                                   "first (torch.unique(pred, return_inverse=True))")),
        "ten clusters and ten classes, N = 500 (an exact matching, not a search)": lambda: (
            _compare_accuracy(learner_fn, *_random_labelling(500, 10, 10, seed=218))),
        "the result is a Python float in [0, 1]": returns_float,
        "pred and labels of different lengths, or empty, raise ValueError": bad_inputs,
    })
