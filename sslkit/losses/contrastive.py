"""Contrastive losses: pick the positive out of many keys, with a softmax over similarities.

From the general to the particular:

- :func:`info_nce` — classify the positive key among many keys with a softmax over
  similarities / temperature ("Representation Learning with Contrastive Predictive Coding",
  2018, arXiv 1807.03748).
- :func:`nt_xent` — SimCLR's version: two views of each image, every other view in the batch is
  a negative ("A Simple Framework for Contrastive Learning of Visual Representations", 2020,
  arXiv 2002.05709).
- :func:`moco_loss` and :func:`update_queue` — negatives come from a queue of past keys made by
  a momentum encoder ("Momentum Contrast for Unsupervised Visual Representation Learning",
  2019, arXiv 1911.05722).
- :func:`supcon_loss` — with labels, every same-class view is a positive ("Supervised
  Contrastive Learning", 2020, arXiv 2004.11362).

Similarities are cosines (inputs are L2-normalised) computed in float32 even under bf16
autocast, because a temperature of 0.1 turns a rounding error of 0.01 into 0.1 nats.

Several GPUs. Under ``torch.distributed`` (e.g. ``torchrun`` + DDP), :func:`nt_xent` and
:func:`supcon_loss` use the embeddings of *every* rank as keys (more negatives), through
:func:`sslkit.losses.gather_with_grad`, but each rank's loss averages over its *local* anchors
only. Then (a) the mean of the per-rank losses equals the single-process loss on the
concatenated batch, and (b) because the gather sends every rank's gradient back to the rank
that owns the embedding, DDP's gradient averaging yields exactly the single-process gradient.
Every rank must pass the same batch size and call the loss the same number of times (the gather
is a collective). Without ``torch.distributed`` (the course's CPU notebooks) nothing extra
happens. :func:`moco_loss` needs no gather: its negatives are the queue, which the method fills
with ``gather_with_grad(k.detach())`` so that every rank holds the same queue.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._distributed import gather_with_grad, rank_offset
from .._validate import check_choice, check_same_shape, check_temperature, check_tensor

__all__ = ["info_nce", "nt_xent", "moco_loss", "update_queue", "supcon_loss"]


# --------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------
def _check_embeddings(name: str, x: torch.Tensor, dims: tuple[str, ...] = ("B", "D")) -> None:
    check_tensor(name, x, dims)


def _float32(*tensors: torch.Tensor, normalize: bool) -> list[torch.Tensor]:
    out = [t.float() for t in tensors]
    return [F.normalize(t, dim=-1) for t in out] if normalize else out


def _similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a (N, D)``, ``b (M, D)`` → ``(N, M)`` dot products in float32, autocast or not."""
    with torch.autocast(device_type=a.device.type, enabled=False):
        return a.float() @ b.float().T


# --------------------------------------------------------------------------------------------
# InfoNCE
# --------------------------------------------------------------------------------------------
def info_nce(
    query: torch.Tensor,
    keys: torch.Tensor,
    positive_idx: torch.Tensor,
    temperature: float = 0.1,
    *,
    normalize: bool = True,
    exclude: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """InfoNCE: pick each query's positive key out of all keys.

    "Representation Learning with Contrastive Predictive Coding" (2018, arXiv 1807.03748).
    With ``s_ij = q_i · k_j`` (cosines when ``normalize=True``)::

        loss_i = -log( exp(s_{i,p(i)} / τ) / Σ_j exp(s_ij / τ) )

    i.e. cross-entropy on the logits ``s / τ`` with the positive's index as the class.

    Args:
        query: ``(N, D)`` anchors.
        keys: ``(M, D)`` candidates: the positives and the negatives.
        positive_idx: ``(N,)`` int64, the column of each query's positive key in ``keys``.
        temperature: τ > 0; smaller τ weights the hardest negatives more.
        normalize: L2-normalise ``query`` and ``keys`` first (cosine similarity).
        exclude: optional bool ``(N, M)``; ``True`` removes that key from the query's softmax
            (e.g. a view's similarity with itself). Never exclude the positive.
        reduction: ``"mean"`` (scalar), ``"sum"`` (scalar) or ``"none"`` (``(N,)``).

    Returns:
        Loss in float32: a scalar, or ``(N,)`` with ``reduction="none"``.
    """
    _check_embeddings("query", query)
    _check_embeddings("keys", keys)
    if query.shape[1] != keys.shape[1]:
        raise ValueError(
            f"query and keys must have the same feature dimension, got shapes "
            f"{tuple(query.shape)} and {tuple(keys.shape)}"
        )
    if positive_idx.shape != (query.shape[0],):
        raise ValueError(
            f"positive_idx must have shape ({query.shape[0]},) (one index per query), got "
            f"{tuple(positive_idx.shape)}"
        )
    if exclude is not None and exclude.shape != (query.shape[0], keys.shape[0]):
        raise ValueError(
            f"exclude must have shape {(query.shape[0], keys.shape[0])} (queries x keys), got "
            f"{tuple(exclude.shape)}"
        )
    check_temperature(temperature)
    check_choice("reduction", reduction, ("mean", "sum", "none"))

    query, keys = _float32(query, keys, normalize=normalize)
    logits = _similarity(query, keys) / temperature  # (N, M)
    if exclude is not None:
        logits = logits.masked_fill(exclude, float("-inf"))
    return F.cross_entropy(logits, positive_idx, reduction=reduction)


# --------------------------------------------------------------------------------------------
# SimCLR
# --------------------------------------------------------------------------------------------
def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """NT-Xent, the normalised-temperature cross-entropy of SimCLR.

    "A Simple Framework for Contrastive Learning of Visual Representations" (2020,
    arXiv 2002.05709). The batch holds 2B views: ``z1[i]`` and ``z2[i]`` are two augmentations
    of image ``i``. For each view, its pair is the positive and the other 2B − 2 views are
    negatives; its similarity with itself is left out::

        loss = mean over the 2B views a of  -log( exp(s_{a,pair(a)}/τ) / Σ_{j≠a} exp(s_aj/τ) )

    with ``s`` the cosine similarity. Under ``torch.distributed`` the keys are the views of all
    ranks (see the module docstring); the mean runs over this rank's 2B views.

    Args:
        z1: ``(B, D)`` embeddings of the first views (any scale: they are normalised).
        z2: ``(B, D)`` embeddings of the second views, row ``i`` paired with ``z1[i]``.
        temperature: τ > 0 (SimCLR uses 0.5 at small batch sizes, 0.1 at large ones).

    Returns:
        Scalar float32 loss.

    Examples:
        >>> x1, x2 = views.two_views(images, views.simclr_recipe(32))
        >>> loss = nt_xent(projector(backbone(x1)), projector(backbone(x2)), temperature=0.2)
    """
    _check_embeddings("z1", z1)
    check_same_shape("z1", z1, "z2", z2)
    check_temperature(temperature)

    b = z1.shape[0]
    z1, z2 = _float32(z1, z2, normalize=True)
    anchors = torch.cat([z1, z2])                                     # (2B, D) local views
    keys = torch.cat([gather_with_grad(z1), gather_with_grad(z2)])    # (2·W·B, D) all views
    n = keys.shape[0] // 2                                            # W·B images in total

    local = torch.arange(b, device=z1.device) + rank_offset(b)        # global image index
    self_idx = torch.cat([local, local + n])                          # each view's own column
    pair_idx = torch.cat([local + n, local])                          # its other view's column
    exclude = torch.zeros(2 * b, 2 * n, dtype=torch.bool, device=z1.device)
    exclude[torch.arange(2 * b, device=z1.device), self_idx] = True
    return info_nce(anchors, keys, pair_idx, temperature, normalize=False, exclude=exclude)


# --------------------------------------------------------------------------------------------
# MoCo
# --------------------------------------------------------------------------------------------
def moco_loss(
    q: torch.Tensor,
    k: torch.Tensor,
    queue: torch.Tensor,
    temperature: float = 0.2,
    *,
    normalize: bool = True,
) -> torch.Tensor:
    """MoCo's InfoNCE: one positive key per query, negatives from a queue of past keys.

    "Momentum Contrast for Unsupervised Visual Representation Learning" (2019,
    arXiv 1911.05722); τ = 0.2 is the MoCo v2 default. Logits are ``(B, 1 + Q)``: column 0 is
    ``q_i · k_i``, columns 1..Q are ``q_i · queue_j``; the label is always 0. Other keys of the
    current batch are *not* negatives (they join the queue after the step).

    ``k`` (from the momentum encoder) and ``queue`` are constants: both are detached here, so
    gradients reach only the query encoder. The loss needs no gather across ranks; under DDP
    enqueue ``gather_with_grad(k.detach())`` so every rank keeps the same queue.

    Args:
        q: ``(B, D)`` queries from the online encoder.
        k: ``(B, D)`` keys from the momentum encoder, row ``i`` the positive of ``q[i]``.
        queue: ``(Q, D)`` negatives (Q may be 0).
        temperature: τ > 0.
        normalize: L2-normalise ``q``, ``k`` and ``queue`` (a no-op for already unit vectors).

    Returns:
        Scalar float32 loss (mean over the B queries).
    """
    _check_embeddings("q", q)
    check_same_shape("q", q, "k", k)
    if queue.ndim != 2 or queue.shape[1] != q.shape[1]:
        raise ValueError(
            f"queue must have shape (Q, {q.shape[1]}) to match q and k, got queue shape "
            f"{tuple(queue.shape)} and q shape {tuple(q.shape)}"
        )
    check_temperature(temperature)

    q, k, queue = _float32(q, k.detach(), queue.detach(), normalize=normalize)
    with torch.autocast(device_type=q.device.type, enabled=False):
        l_pos = (q * k).sum(dim=1, keepdim=True)                      # (B, 1)
    l_neg = _similarity(q, queue)                                     # (B, Q)
    logits = torch.cat([l_pos, l_neg], dim=1) / temperature           # (B, 1 + Q)
    labels = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
    return F.cross_entropy(logits, labels)


@torch.no_grad()
def update_queue(queue: torch.Tensor, keys: torch.Tensor, ptr: int) -> int:
    """Write ``keys`` into the ring buffer ``queue`` in place, oldest first; return the new pointer.

    ``queue`` ``(Q, D)``, ``keys`` ``(B, D)`` with ``B ≤ Q``, ``ptr`` in ``[0, Q)`` the row of
    the oldest entry. Rows ``ptr, ptr+1, …`` (wrapping past ``Q − 1`` to 0, so ``Q`` need not
    be a multiple of ``B``) receive ``keys`` in order, and ``(ptr + B) % Q`` is returned. The
    keys are detached and cast to the queue's dtype. MoCo (2019, arXiv 1911.05722) keeps the
    queue as a buffer of the method and calls this after each step.
    """
    _check_embeddings("keys", keys)
    if queue.ndim != 2 or queue.shape[1] != keys.shape[1]:
        raise ValueError(
            f"queue and keys must have the same feature dimension, got queue shape "
            f"{tuple(queue.shape)} and keys shape {tuple(keys.shape)}"
        )
    size, b = queue.shape[0], keys.shape[0]
    if b > size:
        raise ValueError(
            f"keys has {b} rows but the queue holds only {size}: use a queue of at least one "
            f"batch (queue shape {tuple(queue.shape)}, keys shape {tuple(keys.shape)})"
        )
    if isinstance(ptr, bool) or not isinstance(ptr, int) or not 0 <= ptr < size:
        raise ValueError(f"ptr={ptr!r} is invalid: must be an integer in [0, {size})")

    rows = (ptr + torch.arange(b, device=queue.device)) % size
    queue[rows] = keys.detach().to(device=queue.device, dtype=queue.dtype)
    return (ptr + b) % size


# --------------------------------------------------------------------------------------------
# Supervised contrastive
# --------------------------------------------------------------------------------------------
def supcon_loss(
    features: torch.Tensor,
    labels: torch.Tensor | None = None,
    temperature: float = 0.1,
) -> torch.Tensor:
    """Supervised contrastive loss, the L_out form (positives averaged outside the log).

    "Supervised Contrastive Learning" (2020, arXiv 2004.11362), Eq. 2. Every view is an anchor
    ``a``; its positives ``P(a)`` are all *other* views with the same label, and the softmax runs
    over all views but ``a`` itself::

        loss_a = -1/|P(a)| Σ_{p ∈ P(a)} log( exp(s_ap/τ) / Σ_{j≠a} exp(s_aj/τ) )

    Anchors with no positive are skipped; the loss is the mean over the others (0, still
    attached to the graph, when there are none). With ``labels=None`` each sample is its own
    class, and with two views this is exactly :func:`nt_xent`. Under ``torch.distributed`` the
    views and labels of all ranks are keys, and the mean runs over this rank's anchors.

    Args:
        features: ``(N, V, D)`` — V views of each of N samples — or ``(N, D)`` (one view).
        labels: ``(N,)`` integer class of each sample, or ``None`` (instance discrimination).
        temperature: τ > 0 (the paper uses 0.1).

    Returns:
        Scalar float32 loss.
    """
    if isinstance(features, torch.Tensor) and features.ndim == 2:
        features = features.unsqueeze(1)
    _check_embeddings("features", features, ("B", "V", "D"))
    n, v, d = features.shape
    if labels is not None and labels.shape != (n,):
        raise ValueError(
            f"labels must have shape ({n},) (one per sample), got labels shape "
            f"{tuple(labels.shape)} and features shape {tuple(features.shape)}"
        )
    check_temperature(temperature)

    device = features.device
    offset = rank_offset(n)
    if labels is None:  # instance ids, unique across ranks
        labels = torch.arange(n, device=device) + offset
    labels = labels.to(device)

    (features,) = _float32(features, normalize=True)
    everyone = gather_with_grad(features.reshape(n, v * d)).reshape(-1, v, d)   # (W·N, V, D)
    all_labels = gather_with_grad(labels)                                       # (W·N,)
    total = everyone.shape[0]
    # View-major order: row index = view · (number of samples) + sample.
    anchors = features.transpose(0, 1).reshape(v * n, d)                # (V·N, D) local
    keys = everyone.transpose(0, 1).reshape(v * total, d)               # (V·W·N, D)
    anchor_labels = labels.repeat(v)                                    # (V·N,)
    key_labels = all_labels.repeat(v)                                   # (V·W·N,)

    local = torch.arange(n, device=device) + offset
    self_idx = (torch.arange(v, device=device)[:, None] * total + local).reshape(-1)   # (V·N,)
    is_self = torch.zeros(v * n, v * total, dtype=torch.bool, device=device)
    is_self[torch.arange(v * n, device=device), self_idx] = True
    positive = (anchor_labels[:, None] == key_labels[None, :]) & ~is_self   # (V·N, V·W·N)

    logits = _similarity(anchors, keys) / temperature
    log_denominator = torch.logsumexp(logits.masked_fill(is_self, float("-inf")), dim=1)
    log_prob = logits - log_denominator[:, None]              # finite everywhere
    num_pos = positive.sum(dim=1)
    per_anchor = -(log_prob * positive).sum(dim=1) / num_pos.clamp(min=1)
    has_pos = num_pos > 0
    # Keep the graph even when no anchor has a positive: under DDP every rank must run the
    # gather's backward, or the others wait forever.
    return (per_anchor * has_pos).sum() / has_pos.sum().clamp(min=1)
