"""Label-free diagnostics: read the geometry of an embedding without any label.

Collapse (:func:`embedding_std`), dimensional collapse (:func:`effective_rank`), and the two
properties a contrastive loss optimises (:func:`alignment`, :func:`uniformity`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .._validate import check_positive_int, check_range, check_same_shape
from .features import _check_features

__all__ = ["embedding_std", "effective_rank", "collapse_logs", "alignment", "uniformity"]


def embedding_std(z: torch.Tensor) -> torch.Tensor:
    """Per-dimension standard deviation of the L2-normalised embeddings: ``(N, D)`` → ``(D,)``.

    The collapse monitor of *Exploring Simple Siamese Representation Learning* (2020, arXiv
    2011.10566): a collapsed encoder (every input → the same vector) gives 0; embeddings spread
    like an isotropic Gaussian give about ``1/sqrt(D)`` in every dimension.
    """
    _check_features("z", z, min_rows=2)
    return F.normalize(z.float(), dim=1).std(dim=0)


def effective_rank(z: torch.Tensor, eps: float = 1e-7) -> float:
    """RankMe, the effective rank of an embedding matrix ``(N, D)`` → float in ``[1, min(N, D)]``.

    From *RankMe: Assessing the Downstream Performance of Pretrained Self-Supervised
    Representations by Their Rank* (2022, arXiv 2210.02885): with singular values ``σ_k`` of
    ``z`` (not centred, as in the paper), ``p_k = σ_k / Σσ + eps`` and
    ``rank = exp(-Σ p_k log p_k)``. It is ``D`` for isotropic data and ``r`` for data spanning ``r``
    equally strong directions; a collapsing method drives it towards 1.
    """
    _check_features("z", z)
    check_range("eps", eps, 0.0, None)
    s = torch.linalg.svdvals(z.double())
    if float(s.sum()) == 0.0:
        return 1.0  # all-zero embeddings: fully collapsed
    p = s / s.sum() + eps
    return float(torch.exp(-(p * p.log()).sum()))


@torch.no_grad()
def collapse_logs(z: torch.Tensor) -> dict[str, float]:
    """What a method logs each step to watch for collapse, from a batch of embeddings ``(N, D)``:
    ``z_std``, the mean of :func:`embedding_std` (about ``1/sqrt(D)`` when spread, 0 when
    collapsed), and ``z_rank``, the :func:`effective_rank` (RankMe) of the batch."""
    z = z.detach().float()
    return {"z_std": embedding_std(z).mean().item(), "z_rank": effective_rank(z)}


def alignment(z1: torch.Tensor, z2: torch.Tensor, alpha: float = 2.0) -> float:
    """Alignment ``E ‖f(x) - f(y)‖₂^α`` over positive pairs, ``(N, D)``, ``(N, D)`` → float ≥ 0.

    From *Understanding Contrastive Representation Learning through Alignment and Uniformity on
    the Hypersphere* (2020, arXiv 2005.10242); rows are L2-normalised first. Row ``i`` of ``z1`` and
    of ``z2`` are two views of the same input; 0 means perfectly aligned (lower is better).
    """
    check_range("alpha", alpha, 0.0, None, low_open=True)
    _check_features("z1", z1)
    _check_features("z2", z2)
    check_same_shape("z1", z1, "z2", z2)
    z1, z2 = F.normalize(z1.float(), dim=1), F.normalize(z2.float(), dim=1)
    return (z1 - z2).norm(dim=1).pow(alpha).mean().item()


def uniformity(z: torch.Tensor, t: float = 2.0, *, batch_size: int = 1024) -> float:
    """Uniformity ``log E_{i<j} exp(-t ‖f(x_i) - f(x_j)‖₂²)``, ``(N, D)`` → float ≤ 0.

    From *Understanding Contrastive Representation Learning through Alignment and Uniformity on
    the Hypersphere* (2020, arXiv 2005.10242); rows are L2-normalised first. A collapsed set gives
    the maximum, 0; points spread evenly over the sphere give lower (better) values. Computed
    with a log-sum-exp over row blocks of ``batch_size``, so memory is ``O(batch_size · N)``
    rather than the ``N²/2`` distances of ``torch.pdist``.
    """
    check_range("t", t, 0.0, None, low_open=True)
    check_positive_int("batch_size", batch_size)
    _check_features("z", z, min_rows=2)
    z = F.normalize(z.float(), dim=1)
    n = z.shape[0]
    cols = torch.arange(n, device=z.device)
    parts = []
    for start in range(0, n, batch_size):
        block = z[start : start + batch_size]
        sq = (2 - 2 * block @ z.T).clamp_min(0)  # ‖a - b‖² = 2 - 2 a·b on the unit sphere
        rows = torch.arange(start, start + block.shape[0], device=z.device)
        upper = cols.unsqueeze(0) > rows.unsqueeze(1)  # pairs i < j only
        parts.append(torch.logsumexp((-t * sq)[upper], dim=0))
    return (torch.logsumexp(torch.stack(parts), dim=0) - math.log(n * (n - 1) / 2)).item()
