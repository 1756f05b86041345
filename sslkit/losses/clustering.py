"""Clustering losses: learn features by predicting cluster assignments.

The assignments themselves come from :mod:`sslkit.cluster` (k-means pseudo-labels, balanced
Sinkhorn-Knopp codes) and are computed by the method; these functions are the pure losses.

- :func:`swapped_prediction` — SwAV: the code of one view, predicted from the prototype scores
  of every other view ("Unsupervised Learning of Visual Features by Contrasting Cluster
  Assignments", 2020, arXiv 2006.09882).
- :func:`scan_loss` — SCAN: an image and its mined nearest neighbours get the same cluster, and
  the mean assignment keeps a high entropy so that no cluster takes everything ("SCAN: Learning
  to Classify Images without Labels", 2020, arXiv 2005.12320).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._validate import check_range, check_same_shape, check_temperature, check_tensor

__all__ = ["swapped_prediction", "scan_consistency", "assignment_entropy", "scan_loss"]


def swapped_prediction(scores: torch.Tensor, codes: torch.Tensor,
                       temperature: float = 0.1) -> torch.Tensor:
    """SwAV's swapped prediction over all pairs of different views.

    ``scores`` ``(V, B, K)``: every view's cosine similarities to the ``K`` prototypes (global
    crops first, then the small crops of multi-crop). ``codes`` ``(Vc, B, K)``: the Sinkhorn codes
    (rows summing to 1, no gradient) of the first ``Vc`` views. With
    ``log p_j = log_softmax(scores_j / τ)``::

        loss = mean over pairs (i < Vc, j ≠ i) of mean_b  −Σ_k codes[i, b, k] · log p_j[b, k]

    Each code is predicted from the *other* views only: predicting a view's code from its own
    scores would be solved by copying. Returns a scalar.
    """
    check_tensor("scores", scores, ("V", "B", "K"))
    check_tensor("codes", codes, ("Vc", "B", "K"))
    v, b, k = scores.shape
    vc = codes.shape[0]
    if codes.shape[1:] != (b, k) or vc > v:
        raise ValueError(f"codes has shape {tuple(codes.shape)} for scores {tuple(scores.shape)}:"
                         f" expected (Vc, {b}, {k}) with Vc <= {v}")
    if v < 2:
        raise ValueError(f"scores has {v} view: swapped prediction needs at least 2 views")
    check_temperature(temperature)
    with torch.autocast(device_type=scores.device.type, enabled=False):
        log_p = F.log_softmax(scores.float() / temperature, dim=-1)           # (V, B, K)
        ce = -torch.einsum("ibk,jbk->ijb", codes.float(), log_p).mean(dim=-1)  # (Vc, V)
    same = torch.eye(vc, v, dtype=torch.bool, device=ce.device)
    return ce[~same].mean()


def scan_consistency(anchor_logits: torch.Tensor, neighbor_logits: torch.Tensor) -> torch.Tensor:
    """SCAN's consistency term: ``−mean_b log ⟨softmax(anchor)[b], softmax(neighbor)[b]⟩``.

    ``anchor_logits``, ``neighbor_logits`` ``(B, K)``: the clustering head's logits for a batch of
    images and for one mined nearest neighbour of each. 0 when both put all their mass on the
    same cluster; ``log K`` for two uniform assignments.
    """
    check_tensor("anchor_logits", anchor_logits, ("B", "K"))
    check_same_shape("anchor_logits", anchor_logits, "neighbor_logits", neighbor_logits)
    with torch.autocast(device_type=anchor_logits.device.type, enabled=False):
        log_p_a = F.log_softmax(anchor_logits.float(), dim=-1)
        log_p_n = F.log_softmax(neighbor_logits.float(), dim=-1)
        return -torch.logsumexp(log_p_a + log_p_n, dim=-1).mean()   # log Σ_k p_a p_n, stable


def assignment_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of the mean cluster assignment ``H(mean_b softmax(logits)[b])``, ``(B, K)`` →
    scalar in ``[0, log K]``; ``log K`` when the batch uses the clusters equally."""
    check_tensor("logits", logits, ("B", "K"))
    with torch.autocast(device_type=logits.device.type, enabled=False):
        mean_p = F.softmax(logits.float(), dim=-1).mean(dim=0)                 # (K,)
        return -torch.special.xlogy(mean_p, mean_p).sum()


def scan_loss(anchor_logits: torch.Tensor, neighbor_logits: torch.Tensor,
              entropy_weight: float = 5.0) -> torch.Tensor:
    """SCAN: ``scan_consistency(anchor, neighbor) − λ·assignment_entropy(anchor)``, ``(B, K)``
    each → scalar. Without the entropy term the consistency is solved by putting every image in
    one cluster; the paper uses λ = 5."""
    check_range("entropy_weight", entropy_weight, 0.0, None)
    return (scan_consistency(anchor_logits, neighbor_logits)
            - entropy_weight * assignment_entropy(anchor_logits))
