"""`sslkit.cluster`: k-means++ and Lloyd's k-means, Sinkhorn-Knopp equipartition, and the
clustering metrics, against hand-computed cases and independent formulations.

Tolerances come from the computation: a float32 sum of ``n`` terms is off by at most about
``n · eps · max|term|`` (``eps = 2**-23``), whatever the CPU's vector width or thread count.
Discrete outputs (assignments) are compared exactly only where a float64 reference shows that
the nearest centroid wins by a margin far above that rounding.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import pytest
import torch
from distributed_helpers import run_on_ranks

from sslkit import theory
from sslkit.cluster import (
    ari,
    cluster_accuracy,
    contingency_table,
    kmeans,
    kmeans_pp,
    nmi,
    sinkhorn_knopp,
)

EPS32 = torch.finfo(torch.float32).eps


def _blobs(sizes, centres, std, seed):
    g = torch.Generator().manual_seed(seed)
    centres = torch.as_tensor(centres, dtype=torch.float32)
    parts = [centres[i] + std * torch.randn(n, centres.shape[1], generator=g)
             for i, n in enumerate(sizes)]
    labels = torch.cat([torch.full((n,), i) for i, n in enumerate(sizes)])
    return torch.cat(parts), labels


# ----------------------------------------------------------------------------------------------
# k-means++
# ----------------------------------------------------------------------------------------------
def test_kmeans_pp_puts_one_seed_in_every_blob_even_the_tiny_ones():
    # Uniform seeding would miss the 1- and 3-point blobs most of the time; D² sampling picks a
    # point of an unseeded blob with probability ≥ 1 − (spread / distance)² ≈ 1 − 1e-5.
    x, labels = _blobs([200, 60, 3, 1], [[0, 0], [1000, 0], [0, 1000], [1000, 1000]], 1.0, 0)
    for seed in range(5):
        seeds = kmeans_pp(x, 4, seed=seed)
        assert seeds.shape == (4, 2)
        rows = [int(torch.nonzero((x == s).all(1))[0]) for s in seeds]  # seeds are data points
        assert sorted(int(labels[r]) for r in rows) == [0, 1, 2, 3]
    torch.testing.assert_close(kmeans_pp(x, 4, seed=3), kmeans_pp(x, 4, seed=3), rtol=0, atol=0)


def test_kmeans_pp_draws_the_next_seed_proportionally_to_squared_distance():
    # Points 0, 1, 3 on a line, 6000 independent seedings (batched). After a first seed at 0 the
    # second is 3 with probability 9/(1+9) = 0.9 under D² sampling (0.75 under D, 0.5 uniform).
    b = 6000
    x = torch.tensor([[0.0], [1.0], [3.0]]).expand(b, 3, 1)
    seeds = kmeans_pp(x, 2, seed=0)[..., 0]  # (B, 2)
    first_at_0 = seeds[:, 0] == 0
    m = int(first_at_0.sum())
    assert abs(m / b - 1 / 3) < 5 * math.sqrt(2 / 9 / b)  # the first seed is uniform
    share = float((seeds[first_at_0, 1] == 3).double().mean())
    assert abs(share - 0.9) < 5 * math.sqrt(0.9 * 0.1 / m)
    # from a first seed at 1: distances² 1 and 4 → 3 with probability 0.8
    first_at_1 = seeds[:, 0] == 1
    share = float((seeds[first_at_1, 1] == 3).double().mean())
    assert abs(share - 0.8) < 5 * math.sqrt(0.8 * 0.2 / int(first_at_1.sum()))


def test_theory_uses_the_public_kmeans_pp():
    assert theory._kmeans_pp is kmeans_pp
    assert theory.mixture.kmeans_pp is kmeans_pp


# ----------------------------------------------------------------------------------------------
# Lloyd's k-means
# ----------------------------------------------------------------------------------------------
SIX = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [10.0, 10.0], [10.0, 11.0], [11.0, 10.0]])


def test_kmeans_on_two_obvious_clusters_gives_the_hand_computed_answer():
    res = kmeans(SIX, 2, seed=0)
    a = res.assignments
    assert a.dtype == torch.int64 and a.shape == (6,)
    assert len(set(a[:3].tolist())) == 1 and len(set(a[3:].tolist())) == 1 and a[0] != a[3]
    order = res.centroids[:, 0].argsort()
    want = torch.tensor([[1 / 3, 1 / 3], [31 / 3, 31 / 3]])
    atol = 4 * 3 * EPS32 * 11  # a float32 mean of 3 coordinates ≤ 11
    torch.testing.assert_close(res.centroids[order], want, rtol=0, atol=atol)
    # each triangle: 2/9 + 5/9 + 5/9 around its mean
    assert res.inertia == pytest.approx(8 / 3, rel=64 * EPS32)
    assert res.history.shape == (res.iterations + 1,)
    assert float(res.history[-1]) == res.inertia


def test_an_empty_cluster_restarts_at_the_worst_fitted_point():
    # Start with a third centroid far from every point: nobody picks it. The point farthest from
    # its centroid, (3, 0) at distance² 9, seeds it; the left blob then splits in two.
    x = torch.tensor([[0.0, 0.0], [0.0, 1.0], [3.0, 0.0], [10.0, 10.0], [10.0, 11.0],
                      [11.0, 10.0]])
    init = torch.tensor([[0.0, 0.0], [10.0, 10.0], [100.0, 100.0]])
    res = kmeans(x, 3, init=init, tol=0.0)
    assert res.assignments.tolist() == [0, 0, 2, 1, 1, 1]
    want = torch.tensor([[0.0, 0.5], [31 / 3, 31 / 3], [3.0, 0.0]])
    torch.testing.assert_close(res.centroids, want, rtol=0, atol=4 * 3 * EPS32 * 11)
    # 0.25 + 0.25 + 0 on the left, 12/9 on the right
    assert res.inertia == pytest.approx(0.5 + 4 / 3, rel=64 * EPS32)
    # first assignment (third centroid empty): 0 + 1 + 9 + 0 + 1 + 1
    assert float(res.history[0]) == pytest.approx(12.0, rel=64 * EPS32)
    assert bool((res.history.diff() <= 0).all())


def _reference_lloyd(x, init, steps):
    """Plain float64 Lloyd (no chunks, no empty clusters expected) and the smallest margin
    between the nearest and the second-nearest centroid seen at any assignment."""
    x, c = x.double(), init.double()
    margin = math.inf
    for step in range(steps + 1):
        d2 = torch.cdist(x, c).square()
        two = d2.topk(2, dim=1, largest=False).values
        margin = min(margin, float((two[:, 1] - two[:, 0]).min()))
        a = d2.argmin(1)
        if step == steps:
            return c, a, margin
        c = torch.stack([x[a == j].mean(0) for j in range(len(c))])


def test_kmeans_matches_a_plain_float64_lloyd_for_every_chunk_size():
    x, _ = _blobs([12, 10, 8, 6], [[0, 0], [4, 0], [0, 4], [4, 4]], 0.8, 9)
    init = x[[0, 1, 2, 12]]  # a poor start: three seeds in the first blob
    n, d = x.shape
    # Float32 against float64: a centroid (a mean of ≤ n points) is off by at most
    # delta = n·eps·max|x| per coordinate, which moves a distance² by ≤ 2·|x − c|·|δ| for each
    # of the two centroids compared; the distance² itself rounds by ~(d + 2)·eps·(|x|² + |c|²).
    delta = n * EPS32 * float(x.abs().max()) * math.sqrt(d)
    far = 2 * float(x.abs().max()) * math.sqrt(d)
    rounding = 4 * far * delta + 2 * (d + 2) * EPS32 * 2 * far**2
    for steps in (1, 2, 3, 5):
        want_c, want_a, margin = _reference_lloyd(x, init, steps)
        assert margin > 4 * rounding  # no near-tie anywhere: float32 must pick the same centroid
        for chunk in (1, 7, 16, None):
            res = kmeans(x, 4, init=init, iters=steps, tol=0.0, chunk_size=chunk)
            assert torch.equal(res.assignments, want_a), (steps, chunk)
            torch.testing.assert_close(res.centroids.double(), want_c, rtol=0, atol=2 * delta)
    # the reference needed several steps: one or two updates are not yet the answer
    final = _reference_lloyd(x, init, 5)[1]
    assert not torch.equal(_reference_lloyd(x, init, 2)[1], final)


def test_inertia_never_increases_on_overlapping_clusters():
    g = torch.Generator().manual_seed(2)
    x = torch.rand(600, 5, generator=g) * 10  # no cluster structure: many slow iterations
    res = kmeans(x, 8, iters=60, tol=0.0, seed=4)
    h = res.history
    assert res.iterations > 3 and h.shape == (res.iterations + 1,)
    # each distance² is a float32 sum of 5 squares (relative error ≤ ~(5 + 2)·eps), summed in
    # float64: two inertias of the same exact value differ by at most ~2·7·eps of it.
    slack = 4 * 2 * 7 * EPS32 * h[:-1]
    assert bool((h.diff() <= slack).all()), h.diff()
    assert float(h[-1]) < 0.95 * float(h[0])


def test_kmeans_stops_once_the_inertia_falls_by_less_than_tol():
    g = torch.Generator().manual_seed(2)
    x = torch.rand(600, 5, generator=g) * 10
    full = kmeans(x, 8, iters=60, tol=0.0, seed=4)
    assert kmeans(x, 8, iters=60, tol=1.0, seed=4).iterations == 1  # any fall is < 100 %
    res = kmeans(x, 8, iters=60, tol=0.02, seed=4)
    h = res.history
    assert 1 < res.iterations < full.iterations
    assert torch.equal(h, full.history[:len(h)])  # the same path, cut short
    fall = (h[:-1] - h[1:]) / h[:-1]
    assert bool((fall[:-1] > 0.02 * (1 - 1e-9)).all()) and float(fall[-1]) <= 0.02 * (1 + 1e-9)


def test_same_seed_same_result_and_n_init_keeps_the_best_start():
    x, _ = _blobs([40] * 6, [[0, 0], [6, 0], [12, 0], [0, 6], [6, 6], [12, 6]], 1.5, 3)
    a, b = kmeans(x, 6, seed=11), kmeans(x, 6, seed=11)
    assert torch.equal(a.centroids, b.centroids) and torch.equal(a.assignments, b.assignments)
    c = kmeans(x, 6, generator=torch.Generator().manual_seed(11))
    assert torch.equal(a.centroids, c.centroids)
    single = kmeans(x, 6, seed=0).inertia
    best = kmeans(x, 6, n_init=4, seed=0).inertia
    assert best <= single  # the first of the four starts is kmeans(seed=0)'s start


def test_cosine_kmeans_groups_by_direction_not_by_length():
    x = torch.tensor([[1.0, 0.0], [9.0, 0.5], [0.3, 0.0], [0.0, 2.0], [0.4, 8.0], [0.0, 0.2]])
    res = kmeans(x, 2, metric="cosine", seed=0)
    a = res.assignments
    assert len(set(a[:3].tolist())) == 1 and len(set(a[3:].tolist())) == 1 and a[0] != a[3]
    torch.testing.assert_close(res.centroids.norm(dim=1), torch.ones(2), rtol=0, atol=8 * EPS32)
    unit = x / x.norm(dim=1, keepdim=True)
    want = unit[:3].sum(0) / unit[:3].sum(0).norm()
    torch.testing.assert_close(res.centroids[a[0]], want, rtol=0, atol=16 * EPS32)
    # Euclidean k-means splits by length instead (the longest vector alone, here)
    eu = kmeans(x, 2, seed=0).assignments
    assert eu[0] == eu[3]


def test_kmeans_keeps_float64_and_computes_half_precision_in_float32():
    assert kmeans(SIX.double(), 2).centroids.dtype == torch.float64
    assert kmeans(SIX.half(), 2).centroids.dtype == torch.float32


# ----------------------------------------------------------------------------------------------
# Sinkhorn-Knopp
# ----------------------------------------------------------------------------------------------
def _reference_sinkhorn(scores, epsilon, iters):
    """The textbook matrix scaling in float64: columns to B/K, then rows to 1."""
    q = torch.exp(scores.double() / epsilon)
    b, k = q.shape
    for _ in range(iters):
        for j in range(k):
            q[:, j] = q[:, j] * (b / k) / q[:, j].sum()
        for i in range(b):
            q[i] = q[i] / q[i].sum()
    return q


def _log_bound(scores, epsilon, iters):
    """Float32 error of the log-domain codes: each of the 2·iters + 1 steps adds rounding of
    order eps · (largest |log-entry|), which is at most |scores|/ε + log(B·K) + 1."""
    b, k = scores.shape
    big = float(scores.abs().max()) / epsilon + math.log(b * k) + 1
    return 4 * (2 * iters + 1) * EPS32 * big


def test_sinkhorn_matches_the_textbook_matrix_scaling_in_float64():
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(6, 3, generator=g)
    for iters in (1, 3, 10):
        q = sinkhorn_knopp(scores, epsilon=0.5, iters=iters)
        assert q.dtype == torch.float32 and q.shape == (6, 3)
        want = _reference_sinkhorn(scores, 0.5, iters)
        torch.testing.assert_close(q.double(), want, rtol=_log_bound(scores, 0.5, iters),
                                   atol=0)


def test_sinkhorn_rows_sum_to_one_and_columns_approach_b_over_k():
    # Every sample prefers prototype 0: a softmax would put the whole batch there.
    g = torch.Generator().manual_seed(1)
    b, k = 64, 8
    scores = 0.3 * torch.randn(b, k, generator=g)
    scores[:, 0] += 1.0
    assert float(torch.softmax(scores / 0.1, 1).sum(0)[0]) > 0.9 * b
    errors = []
    for iters in (1, 2, 3, 5, 10, 20, 50):
        q = sinkhorn_knopp(scores, epsilon=0.1, iters=iters)
        bound = _log_bound(scores, 0.1, iters)
        torch.testing.assert_close(q.sum(1), torch.ones(b), rtol=0, atol=k * bound)
        errors.append(float((q.sum(0) - b / k).abs().sum()))
    # the L1 distance of the column sums to B/K never grows with more scaling, up to rounding
    slack = 4 * b * _log_bound(scores, 0.1, 50)
    assert all(e2 <= e1 + slack for e1, e2 in zip(errors, errors[1:], strict=False)), errors
    assert errors[-1] < 1e-3 * errors[0]
    q = sinkhorn_knopp(scores, epsilon=0.1, iters=50)
    torch.testing.assert_close(q.sum(0), torch.full((k,), b / k), rtol=0,
                               atol=b * _log_bound(scores, 0.1, 50) + errors[-1])


def _reference_sinkhorn_log(scores, epsilon, iters):
    """Dual form in float64: ``Q = diag(u) exp(S/ε) diag(v)`` with log-scalings updated in turn."""
    s = scores.double() / epsilon
    b, k = s.shape
    log_u = torch.zeros(b, 1, dtype=torch.float64)
    log_v = torch.zeros(1, k, dtype=torch.float64)
    for _ in range(iters):
        log_v = math.log(b / k) - torch.logsumexp(s + log_u, 0, keepdim=True)
        log_u = -torch.logsumexp(s + log_v, 1, keepdim=True)
    return torch.exp(s + log_u + log_v)


@pytest.mark.parametrize("scale", [1.0, 50.0])
def test_sinkhorn_with_a_small_epsilon_and_large_scores_does_not_overflow(scale):
    g = torch.Generator().manual_seed(2)
    scores = scale * torch.randn(32, 5, generator=g)  # scores/ε reach ~250 and ~12,000
    assert not bool(torch.isfinite(torch.exp(scores / 0.01)).all())  # the naive kernel overflows
    q = sinkhorn_knopp(scores, epsilon=0.01, iters=3)
    assert bool(torch.isfinite(q).all())
    bound = _log_bound(scores, 0.01, 3)
    torch.testing.assert_close(q.sum(1), torch.ones(32), rtol=0, atol=5 * bound)
    torch.testing.assert_close(q.double(), _reference_sinkhorn_log(scores, 0.01, 3),
                               rtol=bound, atol=1e-30)


def test_sinkhorn_gives_targets_without_gradient_and_computes_half_in_float32():
    scores = torch.randn(4, 3, requires_grad=True)
    q = sinkhorn_knopp(scores)
    assert not q.requires_grad
    assert sinkhorn_knopp(scores.detach().half()).dtype == torch.float32
    assert sinkhorn_knopp(scores.detach().double()).dtype == torch.float64


# ---------------------------------------------------------------- two processes (torch.distributed)
SIZES = (5, 3)  # uneven slices: rank 0 holds 5 samples, rank 1 holds 3


def _full_scores():
    return torch.randn(sum(SIZES), 4, generator=torch.Generator().manual_seed(5))


def _sinkhorn_on_my_slice(rank: int) -> torch.Tensor:
    start = sum(SIZES[:rank])
    return sinkhorn_knopp(_full_scores()[start:start + SIZES[rank]], epsilon=0.2, iters=4)


def test_two_process_sinkhorn_equals_one_process_on_the_whole_batch(tmp_path):
    got = torch.cat(run_on_ranks(_sinkhorn_on_my_slice, len(SIZES), tmp_path))
    scores = _full_scores()
    want = sinkhorn_knopp(scores, epsilon=0.2, iters=4)
    torch.testing.assert_close(got, want, rtol=_log_bound(scores, 0.2, 4), atol=0)
    # without the all_reduce each rank would equalise its own slice only
    local = torch.cat([sinkhorn_knopp(scores[:5], 0.2, 4), sinkhorn_knopp(scores[5:], 0.2, 4)])
    assert float((local - want).abs().max()) > 1e-2


# ----------------------------------------------------------------------------------------------
# Metrics
# ----------------------------------------------------------------------------------------------
# pred [0,0,1,1,1] against labels [0,0,0,1,1]: contingency [[2,0],[1,2]], N = 5
PRED, LABELS = [0, 0, 1, 1, 1], [0, 0, 0, 1, 1]


def test_contingency_table_counts_pairs_of_ids():
    assert contingency_table(PRED, LABELS).tolist() == [[2, 0], [1, 2]]
    # ids need not start at 0 nor be contiguous
    assert contingency_table([7, 7, -1], np.array([3, 9, 9])).tolist() == [[0, 1], [1, 1]]


def test_nmi_and_ari_of_a_hand_computed_two_by_two_table():
    # p(cluster) = (2/5, 3/5), p(label) = (3/5, 2/5): both entropies are H = h(0.4).
    # MI = 2/5·ln((2/5)/(2/5·3/5)) + 1/5·ln((1/5)/(3/5·3/5)) + 2/5·ln((2/5)/(3/5·2/5))
    h = -(0.4 * math.log(0.4) + 0.6 * math.log(0.6))
    mi = 0.8 * math.log(5 / 3) + 0.2 * math.log(5 / 9)
    assert nmi(PRED, LABELS) == pytest.approx(mi / h, abs=1e-12)  # 0.4325…
    # pairs: Σ C(n_ij,2) = 2, rows C(2,2)+C(3,2) = 4, columns 4, all pairs C(5,2) = 10:
    # expected 4·4/10 = 1.6, ARI = (2 − 1.6) / ((4 + 4)/2 − 1.6) = 1/6
    assert ari(PRED, LABELS) == pytest.approx(1 / 6, abs=1e-12)


def test_cluster_accuracy_matches_one_to_one_not_greedily():
    # cluster 0 holds 3 of class 0 and 2 of class 1, cluster 1 holds 2 of class 0. Greedy
    # (0 → 0, then 1 → 1) gets 3; majority vote per cluster gets 5 (class 0 used twice); the best
    # one-to-one map (0 → 1, 1 → 0) gets 2 + 2 = 4 of 7.
    pred = [0] * 5 + [1] * 2
    labels = [0, 0, 0, 1, 1, 0, 0]
    assert cluster_accuracy(pred, labels) == pytest.approx(4 / 7, abs=1e-12)
    # the 3×3 confusion where each cluster holds two of "its" class and one of another
    pred = [0, 0, 0, 1, 1, 1, 2, 2, 2]
    labels = [0, 0, 1, 1, 1, 2, 2, 2, 0]
    assert cluster_accuracy(pred, labels) == pytest.approx(6 / 9, abs=1e-12)


def test_metrics_are_one_for_a_renamed_labelling():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 5, (100,), generator=g)
    renamed = torch.tensor([3, 0, 42, 7, 1])[labels]
    assert cluster_accuracy(renamed, labels) == 1.0
    assert nmi(renamed, labels) == pytest.approx(1.0, abs=1e-12)
    assert ari(renamed, labels) == pytest.approx(1.0, abs=1e-12)
    one = torch.zeros(10, dtype=torch.long)
    assert nmi(one, one) == 1.0 and ari(one, one) == 1.0  # one cluster against one class
    two = torch.arange(10) % 2
    assert nmi(one, two) == 0.0 and ari(one, two) == 0.0


def _brute_force_accuracy(pred, labels):
    clusters, classes = sorted(set(pred)), sorted(set(labels))
    pad = max(len(clusters), len(classes))
    best = 0
    for perm in itertools.permutations(range(pad)):  # cluster i ↦ class perm[i] (if both exist)
        mapping = {c: classes[perm[i]] for i, c in enumerate(clusters) if perm[i] < len(classes)}
        best = max(best, sum(mapping.get(p) == y for p, y in zip(pred, labels, strict=True)))
    return best / len(pred)


def _entropy_nmi(pred, labels):
    n = len(pred)

    def entropy(counts):
        return -sum(c / n * math.log(c / n) for c in counts.values())

    hp, hl = entropy(Counter(pred)), entropy(Counter(labels))
    mi = hp + hl - entropy(Counter(zip(pred, labels, strict=True)))  # I = H(P) + H(C) − H(P, C)
    return 1.0 if hp + hl == 0 else mi / ((hp + hl) / 2)


def _pair_counting_ari(pred, labels):
    n11 = n10 = n01 = n00 = 0
    for i, j in itertools.combinations(range(len(pred)), 2):
        same_p, same_l = pred[i] == pred[j], labels[i] == labels[j]
        n11 += same_p and same_l
        n10 += same_p and not same_l
        n01 += same_l and not same_p
        n00 += not same_p and not same_l
    num = 2 * (n00 * n11 - n01 * n10)
    return num / ((n00 + n01) * (n01 + n11) + (n00 + n10) * (n10 + n11))


@pytest.mark.parametrize("seed", range(8))
def test_metrics_match_independent_formulations(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 70))
    num_clusters, num_classes = int(rng.integers(2, 6)), int(rng.integers(2, 6))
    labels = rng.integers(0, num_classes, n).tolist()
    # a clustering that partly follows the labels, so the metrics are not all near 0
    pred = [y % num_clusters if rng.random() < 0.6 else int(rng.integers(0, num_clusters))
            for y in labels]
    assert cluster_accuracy(pred, labels) == pytest.approx(_brute_force_accuracy(pred, labels),
                                                           abs=1e-12)
    assert nmi(pred, labels) == pytest.approx(_entropy_nmi(pred, labels), abs=1e-12)
    assert ari(pred, labels) == pytest.approx(_pair_counting_ari(pred, labels), abs=1e-12)
    assert ari(pred, labels) == pytest.approx(ari(labels, pred), abs=1e-12)


# ----------------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------------
X = torch.randn(10, 3)


@pytest.mark.parametrize("call, match", [
    (lambda: kmeans(torch.randn(10), 2), r"^x must be a 2-D tensor"),
    (lambda: kmeans(X, 0), r"^k=0 is invalid"),
    (lambda: kmeans(X, 11), r"^k=11 is invalid: allowed range is \[1, 10\]"),
    (lambda: kmeans(X, 2, iters=0), r"^iters=0 is invalid"),
    (lambda: kmeans(X, 2, tol=-1.0), r"^tol=-1.0 is invalid"),
    (lambda: kmeans(X, 2, n_init=0), r"^n_init=0 is invalid"),
    (lambda: kmeans(X, 2, metric="manhattan"), r"^metric='manhattan' is invalid"),
    (lambda: kmeans(X, 2, chunk_size=0), r"^chunk_size=0 is invalid"),
    (lambda: kmeans(X, 2, init=torch.zeros(3, 3)), r"^init must have shape"),
    (lambda: kmeans(torch.full((4, 2), math.nan), 2), r"^x contains NaN"),
    (lambda: kmeans_pp(torch.randn(10), 2), r"^x must have shape"),
    (lambda: kmeans_pp(X, 11), r"^k=11 is invalid"),
    (lambda: sinkhorn_knopp(torch.randn(4), 0.05), r"^scores must be a 2-D tensor"),
    (lambda: sinkhorn_knopp(torch.randn(2, 4, 3), 0.05), r"^scores must be a 2-D tensor"),
    (lambda: sinkhorn_knopp(X, 0.0), r"^epsilon=0.0 is invalid: allowed range is \(0, inf"),
    (lambda: sinkhorn_knopp(X, -0.5), r"^epsilon=-0.5 is invalid"),
    (lambda: sinkhorn_knopp(X, 0.05, iters=0), r"^iters=0 is invalid"),
    (lambda: nmi([0, 1, 1], [0, 1]), r"^labels has 2 entries but pred has 3"),
    (lambda: ari([[0, 1]], [[0, 1]]), r"^pred must be 1-D"),
    (lambda: cluster_accuracy([0, 1], [0.0, 1.0]), r"^labels must hold integer ids"),
    (lambda: contingency_table([], []), r"^pred and labels are empty"),
])
def test_bad_arguments_raise_a_value_error_naming_the_parameter(call, match):
    with pytest.raises(ValueError, match=match):
        call()

