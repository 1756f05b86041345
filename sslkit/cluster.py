"""Clustering as pretraining's pseudo-labeller: k-means, equipartition by Sinkhorn-Knopp, metrics.

The clustering family of self-supervised methods turns features into pseudo-labels and trains
the network to predict them. This module holds the pieces that are not neural networks:

- :func:`kmeans_pp` picks starting centroids far apart (k-means++), :func:`kmeans` runs Lloyd's
  algorithm from them, batched in chunks and on the device of its input, as DeepCluster does
  between epochs to relabel the whole data set;
- :func:`sinkhorn_knopp` turns a batch's prototype scores into soft codes that use every
  prototype equally (SeLa, SwAV), which is how those methods avoid putting everything in one
  cluster;
- :func:`cluster_accuracy` (Hungarian matching of clusters to classes), :func:`nmi` and
  :func:`ari` score a clustering against the true labels, as SCAN's tables do.

Every function takes tensors and returns tensors or floats; nothing here trains a network.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F

from ._distributed import rank_world
from ._validate import (
    check_choice,
    check_positive_int,
    check_range,
    check_tensor,
    seeded_generator,
)

__all__ = [
    "kmeans_pp", "KMeansResult", "kmeans", "sinkhorn_knopp", "contingency_table",
    "cluster_accuracy", "nmi", "ari",
]

METRICS = ("euclidean", "cosine")
# Default chunk of the assignment step: about this many point-to-centroid distances at once
# (2**24 float32 = 64 MiB), so 100k points × 10k centroids never build a 4 GB matrix.
_CHUNK_ELEMENTS = 2**24


# ----------------------------------------------------------------------------------------------
# k-means
# ----------------------------------------------------------------------------------------------
def kmeans_pp(
    x: torch.Tensor, k: int, generator: torch.Generator | None = None, *, seed: int | None = 0,
) -> torch.Tensor:
    """k-means++ seeding: ``k`` data points drawn far apart, the start of :func:`kmeans`.

    The first centroid is a uniformly drawn point; every next one is drawn with probability
    proportional to its squared distance to the nearest centroid chosen so far (``D²``
    sampling), so a new centroid lands in a region no centroid covers yet. *k-means++: The
    Advantages of Careful Seeding* (Arthur & Vassilvitskii, 2007).

    ``x`` ``(N, D)`` → centroids ``(k, D)``, or batched ``(B, N, D)`` → ``(B, k, D)`` (``B``
    independent seedings, the draws for the batch made together). Random numbers come from
    ``generator`` (else a CPU generator seeded with ``seed``); the ``D²`` weights travel to the
    generator's device for each draw. Memory: one temporary the size of ``x``.
    """
    if not isinstance(x, torch.Tensor) or x.ndim not in (2, 3):
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must have shape (N, D) or (B, N, D), got {got}")
    check_positive_int("k", k)
    check_range("k", k, 1, x.shape[-2], hint="need at least as many points as clusters")
    g = seeded_generator(seed, generator)
    single = x.ndim == 2
    xb = x[None] if single else x
    b, n, _ = xb.shape
    rows = torch.arange(b, device=x.device)
    idx = torch.randint(n, (b,), generator=g, device=g.device).to(x.device)
    centers = [xb[rows, idx]]
    d2 = (xb - centers[0][:, None]).square().sum(-1)  # (B, N) distance² to the nearest centroid
    for _ in range(1, k):
        probs = d2 / d2.sum(-1, keepdim=True).clamp_min(1e-30)
        # every point already a centroid (duplicates only): draw uniformly
        probs = torch.where(probs.sum(-1, keepdim=True) > 0, probs, torch.ones_like(probs))
        idx = torch.multinomial(probs.to(g.device), 1, generator=g)[:, 0].to(x.device)
        centers.append(xb[rows, idx])
        d2 = torch.minimum(d2, (xb - centers[-1][:, None]).square().sum(-1))
    out = torch.stack(centers, 1)
    return out[0] if single else out


@dataclass
class KMeansResult:
    """What :func:`kmeans` found: ``centroids`` ``(k, D)``, ``assignments`` ``(N,)`` int64 (the
    nearest centroid of every point), ``inertia`` (``Σ_i ||x_i − c_{a_i}||²`` at the end),
    ``iterations`` (update steps run) and ``history`` ``(iterations + 1,)`` float64, the inertia
    after the first assignment and after every update (non-increasing)."""

    centroids: torch.Tensor
    assignments: torch.Tensor
    inertia: float
    iterations: int
    history: torch.Tensor


def _assign(x: torch.Tensor, centroids: torch.Tensor, chunk: int):
    """Nearest centroid of every point and its squared distance, ``chunk`` rows at a time."""
    n = x.shape[0]
    assign = torch.empty(n, dtype=torch.long, device=x.device)
    d2 = torch.empty(n, dtype=x.dtype, device=x.device)
    c_sq = centroids.square().sum(1)  # (k,)
    for start in range(0, n, chunk):
        xc = x[start:start + chunk]  # (C, D)
        # ||x − c||² = ||x||² − 2 x·c + ||c||²; ||x||² is the same for every centroid
        a = torch.addmm(c_sq, xc, centroids.T, alpha=-2).argmin(1)  # (C,)
        assign[start:start + chunk] = a
        # the distance itself without the cancellation of the expanded form
        d2[start:start + chunk] = (xc - centroids[a]).square().sum(1)
    return assign, d2


def _update(x, assign, d2, k: int, spherical: bool) -> torch.Tensor:
    """Mean of every cluster; an empty cluster restarts at a point far from its centroid."""
    counts = torch.bincount(assign, minlength=k)  # (k,)
    sums = torch.zeros(k, x.shape[1], dtype=x.dtype, device=x.device).index_add_(0, assign, x)
    centroids = sums / counts.clamp_min(1)[:, None].to(x.dtype)
    empty = counts == 0
    num_empty = int(empty.sum())
    if num_empty:
        # the worst-fitted points (largest distance to their centroid) seed the empty clusters
        centroids[empty] = x[d2.topk(num_empty).indices]
    return F.normalize(centroids, dim=1) if spherical else centroids


def _lloyd(x, centroids, iters: int, tol: float, chunk: int, spherical: bool) -> KMeansResult:
    assign, d2 = _assign(x, centroids, chunk)
    inertia = d2.sum(dtype=torch.float64)
    history = [inertia]
    for _ in range(iters):
        centroids = _update(x, assign, d2, centroids.shape[0], spherical)
        new_assign, d2 = _assign(x, centroids, chunk)
        new_inertia = d2.sum(dtype=torch.float64)
        history.append(new_inertia)
        done = torch.equal(new_assign, assign) or bool(inertia - new_inertia <= tol * inertia)
        assign, inertia = new_assign, new_inertia
        if done:
            break
    return KMeansResult(centroids, assign, float(inertia), len(history) - 1,
                        torch.stack(history).cpu())


def kmeans(
    x: torch.Tensor,
    k: int,
    *,
    iters: int = 100,
    tol: float = 1e-4,
    n_init: int = 1,
    metric: str = "euclidean",
    init: torch.Tensor | None = None,
    chunk_size: int | None = None,
    seed: int | None = 0,
    generator: torch.Generator | None = None,
) -> KMeansResult:
    """k-means by Lloyd's algorithm: assign every point to its nearest centroid, move every
    centroid to the mean of its points, repeat. *Least squares quantization in PCM* (Lloyd,
    1982); DeepCluster re-clusters its features this way every epoch (*Deep Clustering for
    Unsupervised Learning of Visual Features*, 2018, arXiv 1807.05520).

    ``x`` ``(N, D)`` on any device (the loop stays there); ``k`` ≤ ``N`` clusters. Starts from
    :func:`kmeans_pp` seeds (or from ``init`` ``(k, D)``), ``n_init`` times with fresh seeds,
    keeping the lowest inertia. Stops after ``iters`` updates, when no assignment changes or
    when the inertia fell by less than the fraction ``tol``. Distances are computed
    ``chunk_size`` points at a time (default: about 2**24 distances per chunk); the result does
    not depend on it. Half-precision input is computed in float32.

    An empty cluster would stay dead forever. DeepCluster splits a random non-empty cluster in
    two; here each empty cluster restarts at one of the points farthest from their centroid,
    which never raises the inertia and needs no random number.

    ``metric="cosine"`` is spherical k-means for L2-normalised features (DeepCluster, SwAV):
    points and centroids are normalised, and ``||x − c||² = 2 − 2 cos(x, c)``.
    On CUDA the centroid sums use atomic adds, so runs may differ in the last bits unless
    ``torch.use_deterministic_algorithms(True)``.

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.cat([torch.randn(50, 2, generator=g), torch.randn(50, 2, generator=g) + 10])
        >>> result = kmeans(x, 2, seed=0)
        >>> result.centroids.shape, result.assignments.shape
        (torch.Size([2, 2]), torch.Size([100]))
        >>> bool((result.assignments[:50] != result.assignments[50:]).all())
        True
    """
    check_tensor("x", x, ("N", "D"))
    check_positive_int("k", k)
    check_range("k", k, 1, x.shape[0], hint="need at least as many points as clusters")
    check_positive_int("iters", iters)
    check_range("tol", tol, 0.0)
    check_positive_int("n_init", n_init)
    check_choice("metric", metric, METRICS)
    if chunk_size is not None:
        check_positive_int("chunk_size", chunk_size)
    if init is not None and (not isinstance(init, torch.Tensor) or init.shape != (k, x.shape[1])):
        got = tuple(init.shape) if isinstance(init, torch.Tensor) else type(init).__name__
        raise ValueError(f"init must have shape (k, D) = {(k, x.shape[1])}, got {got}")
    x = x.detach()
    if x.dtype not in (torch.float32, torch.float64):
        x = x.float()
    if not bool(torch.isfinite(x).all()):
        raise ValueError("x contains NaN or inf")
    spherical = metric == "cosine"
    if spherical:
        x = F.normalize(x, dim=1)
    chunk = chunk_size or max(1, _CHUNK_ELEMENTS // k)
    if init is not None:
        start = init.detach().to(x.device, x.dtype)
        return _lloyd(x, F.normalize(start, dim=1) if spherical else start, iters, tol, chunk,
                      spherical)
    g = seeded_generator(seed, generator)
    best = None
    for _ in range(n_init):
        result = _lloyd(x, kmeans_pp(x, k, g), iters, tol, chunk, spherical)
        if best is None or result.inertia < best.inertia:
            best = result
    return best


# ----------------------------------------------------------------------------------------------
# Equipartition
# ----------------------------------------------------------------------------------------------
def _logsumexp_over_batch(log_q: torch.Tensor, world: int) -> torch.Tensor:
    """``log Σ_b exp(log_q[b, k])`` over the batch of every rank: ``(B, K)`` → ``(K,)``."""
    local = log_q.logsumexp(dim=0)
    if world == 1:
        return local
    top = local.clone()
    dist.all_reduce(top, op=dist.ReduceOp.MAX)  # shift by the global max, so exp cannot overflow
    total = (local - top).exp()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return top + total.log()


@torch.no_grad()
def sinkhorn_knopp(scores: torch.Tensor, epsilon: float = 0.05, iters: int = 3) -> torch.Tensor:
    """Soft cluster codes that share the batch equally among the prototypes.

    Finds ``Q`` close to ``softmax(scores / ε)`` whose rows sum to 1 (one unit of mass per
    sample) and whose columns each hold ``B/K`` of it (every prototype used equally), by
    alternately rescaling the columns and the rows of ``exp(scores / ε)`` (Sinkhorn-Knopp
    matrix scaling). The rows end exact; the columns approach ``B/K`` with ``iters``. Without
    that constraint, putting every sample in one cluster would be a perfect, useless solution.
    *Self-labelling via simultaneous clustering and representation learning* (SeLa, 2019, arXiv
    1911.05371); *Unsupervised Learning of Visual Features by Contrasting Cluster Assignments*
    (SwAV, 2020, arXiv 2006.09882), which uses ``ε = 0.05`` and 3 iterations.

    ``scores`` ``(B, K)`` (e.g. features · prototypes) → codes ``Q`` ``(B, K)``, in float32 (or
    float64 for float64 input), without gradient: the codes are targets. Computed in the log
    domain, so a small ``ε`` with large scores does not overflow.

    Under ``torch.distributed`` with several ranks, each rank passes its own slice of the batch;
    the column sums run over the whole global batch (``all_reduce``), so ``B`` is the global
    batch size and every rank's codes match those of one process holding the full batch.
    """
    check_tensor("scores", scores, ("B", "K"))
    check_range("epsilon", epsilon, 0.0, low_open=True)
    check_positive_int("iters", iters)
    _, world = rank_world()
    dtype = torch.promote_types(scores.dtype, torch.float32)
    log_q = scores.detach().to(dtype) / epsilon  # (B, K) log of the unscaled kernel
    for _ in range(iters):
        # every prototype gets the same total (1; any common value would do, as the row step
        # removes a factor shared by all entries); rows of 1 then make it B/K in the limit
        log_q = log_q - _logsumexp_over_batch(log_q, world)
        log_q = log_q - log_q.logsumexp(dim=1, keepdim=True)  # every sample holds 1
    return log_q.exp()


# ----------------------------------------------------------------------------------------------
# Metrics against the true labels
# ----------------------------------------------------------------------------------------------
def _check_labelling(pred, labels) -> tuple[torch.Tensor, torch.Tensor]:
    pred, labels = (torch.as_tensor(v).detach().cpu() for v in (pred, labels))
    for name, v in (("pred", pred), ("labels", labels)):
        if v.ndim != 1:
            raise ValueError(f"{name} must be 1-D (one id per sample), got shape {tuple(v.shape)}")
    if len(pred) != len(labels):
        raise ValueError(f"labels has {len(labels)} entries but pred has {len(pred)}: "
                         "pass one cluster id and one label per sample")
    if len(pred) == 0:
        raise ValueError("pred and labels are empty")
    for name, v in (("pred", pred), ("labels", labels)):
        if v.is_floating_point() or v.is_complex():
            raise ValueError(f"{name} must hold integer ids, got dtype {v.dtype}")
    return pred, labels


def contingency_table(pred, labels) -> torch.Tensor:
    """Counts ``n_ij`` of samples in cluster ``i`` with label ``j``: ``pred`` ``(N,)``,
    ``labels`` ``(N,)`` integer ids (any values) → ``(P, C)`` int64 on the CPU, rows and columns
    in increasing order of the ids present."""
    pred, labels = _check_labelling(pred, labels)
    _, p = torch.unique(pred, return_inverse=True)
    classes, c = torch.unique(labels, return_inverse=True)
    num_clusters = int(p.max()) + 1
    flat = torch.bincount(p * len(classes) + c, minlength=num_clusters * len(classes))
    return flat.reshape(num_clusters, len(classes))


def cluster_accuracy(pred, labels) -> float:
    """Accuracy under the best one-to-one map of clusters to classes (Hungarian matching).

    Cluster ids are arbitrary, so a clustering is scored after renaming each cluster to a class,
    each class used at most once, choosing the renaming that gets the most samples right
    (solved exactly by ``scipy.optimize.linear_sum_assignment`` on the contingency table). With
    more clusters than classes the unmatched clusters count as errors. ``pred``, ``labels``
    ``(N,)`` → a float in [0, 1]. The metric of *SCAN: Learning to Classify Images without
    Labels* (2020, arXiv 2005.12320) and of DeepCluster's evaluations.
    """
    from scipy.optimize import linear_sum_assignment

    table = contingency_table(pred, labels)
    rows, cols = linear_sum_assignment(table.numpy(), maximize=True)
    return float(table[torch.as_tensor(rows), torch.as_tensor(cols)].sum()) / float(table.sum())


def _entropy(p: torch.Tensor) -> torch.Tensor:
    p = p[p > 0]
    return -(p * p.log()).sum()


def nmi(pred, labels) -> float:
    """Normalised mutual information between a clustering and the labels, in [0, 1].

    ``I(P; C) / ((H(P) + H(C)) / 2)`` with the empirical distributions of the contingency table
    (the arithmetic-mean normalisation, scikit-learn's default). 1 for the same partition up to
    renaming, 0 for independent ones; two single-cluster partitions score 1. ``pred``,
    ``labels`` ``(N,)`` integer ids. *Cluster Ensembles – A Knowledge Reuse Framework for
    Combining Multiple Partitions* (Strehl & Ghosh, 2002) introduced the normalised form.
    """
    joint = contingency_table(pred, labels).double()
    joint = joint / joint.sum()
    pi, pj = joint.sum(1), joint.sum(0)
    nz = joint > 0
    mi = (joint[nz] * (joint[nz].log() - (pi[:, None] * pj[None, :])[nz].log())).sum()
    h = (_entropy(pi) + _entropy(pj)) / 2
    if float(h) == 0.0:
        return 1.0
    return min(max(float(mi / h), 0.0), 1.0)


def ari(pred, labels) -> float:
    """Adjusted Rand index: agreement on pairs of samples, corrected for chance.

    Over all ``N(N−1)/2`` pairs, the Rand index counts those both partitions put together or
    both put apart; the adjusted index rescales it so that its expectation under random
    partitions with the same cluster sizes is 0 and identical partitions score 1 (it can be
    negative). From the contingency table: ``(Σ_ij C(n_ij, 2) − E) / ((A + B)/2 − E)`` with
    ``A = Σ_i C(a_i, 2)``, ``B = Σ_j C(b_j, 2)`` over the row and column sums and
    ``E = A·B / C(N, 2)``. *Comparing partitions* (Hubert & Arabie, 1985). ``pred``, ``labels``
    ``(N,)`` integer ids → a float in [−1, 1].
    """
    table = contingency_table(pred, labels).double()

    def pairs(v: torch.Tensor) -> float:
        return float((v * (v - 1) / 2).sum())

    n = float(table.sum())
    index, a, b = pairs(table), pairs(table.sum(1)), pairs(table.sum(0))
    expected = a * b / (n * (n - 1) / 2) if n > 1 else 0.0
    denom = (a + b) / 2 - expected
    if denom == 0.0:  # both partitions all-singletons or both one cluster: identical
        return 1.0
    return (index - expected) / denom
