"""Contrastive losses against hand-computed values, independent formulations, and two processes.

The two-process test runs the losses under ``torch.distributed`` (gloo, CPU) and checks that
the embeddings of both ranks are used with their gradients, against one process on the
concatenated batch.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from distributed_helpers import run_on_ranks

from sslkit.losses import (
    gather_with_grad,
    info_nce,
    moco_loss,
    nt_xent,
    rank_offset,
    supcon_loss,
    update_queue,
)

EPS = torch.finfo(torch.float32).eps  # 2**-23; a float32 rounding of x errs by ≤ |x|·EPS/2


def ce_atol(dim: int, keys: int, tau: float, anchors: int, positives: int = 1) -> float:
    """Bound on |float32 − exact| of a mean over ``anchors`` softmax cross-entropies, each over
    ``keys`` logits ``s / τ`` with ``s`` the cosine of two raw ``dim``-vectors (InfoNCE, NT-Xent,
    MoCo; SupCon averages ``positives`` log-probabilities per anchor).

    A cosine: normalising (a dim-term sum, sqrt, divide: ≤ (dim/2 + 2)·EPS/2 per component,
    twice) and a dim-term dot: ≤ (dim + 2)·EPS; ÷ τ: a logit errs by ≤ (dim + 2.5)·EPS / τ.
    log_softmax moves by ≤ 2× that (log-sum-exp is 1-Lipschitz, plus the positive's logit) and
    rounds x - max (≤ EPS/τ, twice), exp (≤ EPS), the sum of ``keys`` terms (≤ keys·EPS/2), the
    log and the subtraction (≤ L·EPS with |values| ≤ L = 2/τ + log(keys)); summing and dividing
    the ``positives`` and the ``anchors`` adds ≤ (positives + anchors + 2)·L·EPS/2.
    """
    logit = (dim + 2.5) * EPS / tau
    big = 2 / tau + math.log(keys)
    per_anchor = 2 * logit + 2 * EPS / tau + EPS + keys * EPS / 2 + big * EPS
    return per_anchor + (positives + anchors + 2) * big * EPS / 2


def ce_grad_atol(dim: int, keys: int, tau: float, anchors: int, min_norm: float) -> float:
    """Bound on |float32 − exact| of the gradient of such a loss w.r.t. a raw embedding of norm
    ≥ ``min_norm`` that is both an anchor and a key (NT-Xent, SupCon).

    The softmax probabilities err relatively by ≤ r = 2·(logit error) + EPS/τ + (keys + 3)·EPS/2,
    so the logits' gradient (p - y) / anchors errs by ≤ (r + EPS) / anchors over a row and, as a
    column of p sums to ≤ anchors, by ≤ r + EPS over a column (the exact sums: 2 / anchors and 2).
    Back through the two similarity GEMMs (≤ keys + anchors terms) and the unit embeddings' own
    error (≤ (dim/2 + 2)·EPS): × (1 + 1/anchors) / τ. normalize's backward, (g - u(u·g)) / |z|,
    doubles that and adds ≤ (dim + 4)·EPS of the gradient |g| ≤ 2·(1 + 1/anchors) / τ.
    """
    r = 2 * (dim + 2.5) * EPS / tau + EPS / tau + (keys + 3) * EPS / 2
    gain = (1 + 1 / anchors) / tau
    unit_grad = gain * (r + EPS + (dim / 2 + 2) * EPS + (keys + anchors + 2) * EPS)
    return (2 * unit_grad + (dim + 4) * EPS * 2 * gain) / min_norm


def _eye(*idx, dim=4):
    return torch.eye(dim)[list(idx)]


def _loop_nt_xent(z1, z2, tau):
    """NT-Xent one anchor at a time, written from the SimCLR paper's definition."""
    z = F.normalize(torch.cat([z1, z2]).double(), dim=1)
    n, b = len(z), len(z1)
    total = 0.0
    for i in range(n):
        pair = (i + b) % n
        denom = sum(math.exp(float(z[i] @ z[j]) / tau) for j in range(n) if j != i)
        total += -math.log(math.exp(float(z[i] @ z[pair]) / tau) / denom)
    return total / n


# ----------------------------------------------------------------------------- nt_xent
def test_nt_xent_hand_computed_two_pairs():
    # Views [e1, e2 | e1, e3]: pair 0 agrees perfectly, pair 1 is orthogonal.
    z1, z2 = _eye(0, 1, dim=3), _eye(0, 2, dim=3)
    sim = [  # cosine similarities written by hand; rows/cols = e1, e2, e1, e3
        [1, 0, 1, 0],
        [0, 1, 0, 0],
        [1, 0, 1, 0],
        [0, 0, 0, 1],
    ]
    tau = 0.5
    pair = [2, 3, 0, 1]
    terms = []
    for i in range(4):
        denom = sum(math.exp(sim[i][j] / tau) for j in range(4) if j != i)
        terms.append(-math.log(math.exp(sim[i][pair[i]] / tau) / denom))
    expected = sum(terms) / 4
    # the same number in closed form: anchors 0, 2 see e^2 vs e^2 + 2; anchors 1, 3 see 1 of 3
    closed = (2 * math.log((math.e**2 + 2) / math.e**2) + 2 * math.log(3)) / 4
    assert expected == pytest.approx(closed)  # float64 on both sides
    # Unit basis vectors: the cosines and logits (0 and 2) are exact; log_softmax of 3 finite
    # logits (exp ≤ 1 ulp, 2 additions and a log of values ≤ 3, a subtraction): ≤ 3.8·EPS per
    # anchor, and the mean of 4 values (sum ≤ 2.7) ≤ 1·EPS more.
    assert nt_xent(z1, z2, temperature=tau).item() == pytest.approx(expected, abs=5 * EPS)


def test_nt_xent_matches_loop_and_is_scale_invariant_and_symmetric():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    for tau in (0.1, 0.5, 2.0):
        loss = nt_xent(z1, z2, tau)
        assert loss.ndim == 0 and loss.dtype == torch.float32
        # the loop is float64 (exact here): one float32 bound, 2e-5 at τ = 0.1
        assert loss.item() == pytest.approx(_loop_nt_xent(z1, z2, tau),
                                            abs=ce_atol(5, 11, tau, anchors=12))
    base = nt_xent(z1, z2, 0.3)
    # scaled or swapped inputs round differently: two float32 bounds (1.1e-5)
    atol = 2 * ce_atol(5, 11, 0.3, anchors=12)
    torch.testing.assert_close(nt_xent(7.0 * z1, 0.01 * z2, 0.3), base, rtol=0, atol=atol)
    torch.testing.assert_close(nt_xent(z2, z1, 0.3), base, rtol=0, atol=atol)
    # a wrong pairing (rolled z2) must give a different value, far beyond that rounding
    assert abs(nt_xent(z1, z2.roll(1, 0), 0.3).item() - base.item()) > 1e-3


def test_nt_xent_gradient_reaches_both_views_and_large_logits_stay_finite():
    g = torch.Generator().manual_seed(1)
    z1 = torch.randn(4, 8, generator=g, requires_grad=True)
    z2 = torch.randn(4, 8, generator=g, requires_grad=True)
    nt_xent(z1, z2, 0.5).backward()
    assert z1.grad.abs().sum() > 0 and z2.grad.abs().sum() > 0

    base = torch.randn(4, 8, generator=g)
    a = (base + 1e-4 * torch.randn(4, 8, generator=g)).requires_grad_()
    b = (base + 1e-4 * torch.randn(4, 8, generator=g)).requires_grad_()
    loss = nt_xent(a, b, temperature=0.01)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()
    # Both are 0 by construction: every negative's cosine is ≤ 0.63 while the positive's is
    # ≈ 1 - 1e-8, so exp((s_neg - s_pos) / 0.01) < e^-37 vanishes next to 1 in float32 (and
    # float64); a rounding of the cosines (≤ 1e-6) cannot bring it near EPS.
    assert loss.item() == pytest.approx(_loop_nt_xent(a.detach(), b.detach(), 0.01), abs=EPS)


def test_nt_xent_validation():
    z = torch.randn(3, 4)
    with pytest.raises(ValueError, match="temperature"):
        nt_xent(z, z, temperature=0.0)
    with pytest.raises(ValueError, match="temperature"):
        nt_xent(z, z, temperature=-0.1)
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(2, 4\)"):
        nt_xent(z, z[:2])
    with pytest.raises(ValueError, match="empty"):
        nt_xent(z[:0], z[:0])
    with pytest.raises(ValueError, match="2-D"):
        nt_xent(z[0], z[0])


# ----------------------------------------------------------------------------- info_nce
def test_info_nce_is_cross_entropy_on_similarity_logits():
    g = torch.Generator().manual_seed(2)
    q, k = torch.randn(5, 3, generator=g), torch.randn(7, 3, generator=g)
    pos = torch.tensor([0, 6, 2, 2, 4])
    tau = 0.3
    logits = torch.empty(5, 7)
    for i in range(5):
        for j in range(7):
            logits[i, j] = float(q[i] @ k[j]) / (q[i].norm() * k[j].norm()) / tau
    # cosines by another formula (dot, then divide by the norms): two float32 bounds, 1.4e-5
    atol = 2 * ce_atol(3, 7, tau, anchors=5)
    torch.testing.assert_close(info_nce(q, k, pos, tau), F.cross_entropy(logits, pos),
                               rtol=0, atol=atol)
    raw = (q @ k.T) / tau  # the same ops as info_nce's: bit-identical
    torch.testing.assert_close(info_nce(q, k, pos, tau, normalize=False), F.cross_entropy(raw, pos))
    per = info_nce(q, k, pos, tau, reduction="none")
    torch.testing.assert_close(per, F.cross_entropy(logits, pos, reduction="none"), rtol=0,
                               atol=2 * ce_atol(3, 7, tau, anchors=1))
    # excluding a key removes it from the softmax
    exclude = torch.zeros(5, 7, dtype=torch.bool)
    exclude[:, 5] = True
    masked = logits.clone()
    masked[:, 5] = -math.inf
    torch.testing.assert_close(
        info_nce(q, k, pos, tau, exclude=exclude), F.cross_entropy(masked, pos), rtol=0, atol=atol
    )


def test_info_nce_validation():
    q, k = torch.randn(2, 3), torch.randn(4, 3)
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 5\)"):
        info_nce(q, torch.randn(4, 5), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="positive_idx"):
        info_nce(q, k, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="temperature"):
        info_nce(q, k, torch.tensor([0, 1]), temperature=0)
    with pytest.raises(ValueError, match="reduction"):
        info_nce(q, k, torch.tensor([0, 1]), reduction="avg")
    with pytest.raises(ValueError, match="exclude"):
        info_nce(q, k, torch.tensor([0, 1]), exclude=torch.zeros(2, 3, dtype=torch.bool))


# ----------------------------------------------------------------------------- MoCo
def test_moco_loss_hand_value_with_orthogonal_queue():
    tau, qsize = 0.2, 3
    q = k = _eye(0, 0, dim=4)                      # q = k = e1 for both samples: s_pos = 1
    queue = _eye(1, 2, 3, dim=4)                   # orthogonal to e1: s_neg = 0
    expected = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + qsize * math.exp(0)))
    # Exact cosines; the loss is log(1 + 3·e^-5) = 0.02: the sum 1 + 3·e^-5 rounds ≤ 3 times
    # (≤ 1.6·EPS), the log adds ≤ 0.02·EPS, and the logits' rounding (5·EPS/2) and exp's
    # (≤ 1 ulp) reach the loss only through the negatives' weight 0.02.
    assert moco_loss(q, k, queue, tau).item() == pytest.approx(expected, abs=2 * EPS)
    # with an empty queue the positive is the only class: log_softmax = 0 - log(exp(0)) = 0
    assert moco_loss(q, k, queue[:0], tau).item() == pytest.approx(0.0, abs=1e-7)


def test_moco_loss_matches_loop_and_stops_gradient_at_keys_and_queue():
    g = torch.Generator().manual_seed(3)
    q = torch.randn(4, 6, generator=g, requires_grad=True)
    k = torch.randn(4, 6, generator=g, requires_grad=True)
    queue = torch.randn(9, 6, generator=g, requires_grad=True)
    tau = 0.2
    loss = moco_loss(q, k, queue, tau)
    qn, kn, un = (F.normalize(t.detach().double(), dim=1) for t in (q, k, queue))
    expected = 0.0
    for i in range(4):
        # only its own key; the other keys of the batch are not negatives
        pos = math.exp(float(qn[i] @ kn[i]) / tau)
        neg = sum(math.exp(float(qn[i] @ un[j]) / tau) for j in range(9))
        expected += -math.log(pos / (pos + neg)) / 4
    assert loss.item() == pytest.approx(expected, abs=ce_atol(6, 10, tau, anchors=4))  # 1.2e-5
    loss.backward()
    assert q.grad.abs().sum() > 0
    assert k.grad is None and queue.grad is None


def test_moco_validation():
    q = torch.randn(2, 4)
    with pytest.raises(ValueError, match=r"queue.*\(5, 3\).*\(2, 4\)"):
        moco_loss(q, q, torch.randn(5, 3))
    with pytest.raises(ValueError, match=r"\(2, 4\).*\(3, 4\)"):
        moco_loss(q, torch.randn(3, 4), torch.randn(5, 4))
    with pytest.raises(ValueError, match="temperature"):
        moco_loss(q, q, torch.randn(5, 4), temperature=-1.0)
    with pytest.raises(ValueError, match="empty"):
        moco_loss(q[:0], q[:0], torch.randn(5, 4))


def test_update_queue_fifo_wraparound_and_pointer():
    queue = torch.zeros(5, 1)
    ptr = update_queue(queue, torch.tensor([[1.0], [2.0]]), 0)
    assert ptr == 2 and queue.squeeze(1).tolist() == [1, 2, 0, 0, 0]
    ptr = update_queue(queue, torch.tensor([[3.0], [4.0]]), ptr)
    assert ptr == 4 and queue.squeeze(1).tolist() == [1, 2, 3, 4, 0]
    ptr = update_queue(queue, torch.tensor([[5.0], [6.0]]), ptr)   # Q % B != 0: wraps around
    assert ptr == 1 and queue.squeeze(1).tolist() == [6, 2, 3, 4, 5]
    ptr = update_queue(queue, torch.tensor([[7.0], [8.0]]), ptr)   # oldest (2, 3) go first
    assert ptr == 3 and queue.squeeze(1).tolist() == [6, 7, 8, 4, 5]
    keys = torch.ones(5, 1, requires_grad=True)
    assert update_queue(queue, keys, 3) == 3 and not queue.requires_grad
    assert queue.squeeze(1).tolist() == [1] * 5


def test_update_queue_validation():
    queue = torch.zeros(4, 3)
    with pytest.raises(ValueError, match=r"\(4, 3\).*\(2, 2\)"):
        update_queue(queue, torch.zeros(2, 2), 0)
    with pytest.raises(ValueError, match="at least one batch"):
        update_queue(queue, torch.zeros(5, 3), 0)
    with pytest.raises(ValueError, match="ptr"):
        update_queue(queue, torch.zeros(2, 3), 4)


# ----------------------------------------------------------------------------- SupCon
def test_supcon_reduces_to_nt_xent_with_instance_labels():
    g = torch.Generator().manual_seed(4)
    z1, z2 = torch.randn(5, 8, generator=g), torch.randn(5, 8, generator=g)
    views = torch.stack([z1, z2], dim=1)                # (N, V=2, D)
    for tau in (0.1, 0.5):
        expected = nt_xent(z1, z2, tau)
        # two float32 implementations (logsumexp vs cross_entropy): 7e-5 at τ = 0.1
        atol = 2 * ce_atol(8, 9, tau, anchors=10)
        torch.testing.assert_close(supcon_loss(views, None, tau), expected, rtol=0, atol=atol)
        torch.testing.assert_close(supcon_loss(views, torch.arange(5) * 3 + 1, tau), expected,
                                   rtol=0, atol=atol)


def test_supcon_hand_computed_two_classes_and_lonely_anchor_skipped():
    # One view each. Class 0: e1, e2, e1; class 1: e3 alone (no positive: skipped as an anchor,
    # still a negative for the others).
    z = _eye(0, 1, 0, 2, dim=3)
    labels = torch.tensor([0, 0, 0, 1])
    sim = [  # written by hand
        [1, 0, 1, 0],
        [0, 1, 0, 0],
        [1, 0, 1, 0],
        [0, 0, 0, 1],
    ]
    tau = 0.5
    e = lambda s: math.exp(s / tau)

    def term(a, positives):
        denom = sum(e(sim[a][j]) for j in range(4) if j != a)
        return -sum(math.log(e(sim[a][p]) / denom) for p in positives) / len(positives)

    expected = (term(0, [1, 2]) + term(1, [0, 2]) + term(2, [0, 1])) / 3
    assert expected == pytest.approx(
        (2 * (math.log(e(1) + 2) - 1 / tau / 2) + math.log(3)) / 3
    )
    # Exact cosines and logits; per anchor log-sum-exp of 3 logits (≤ 4.4·EPS), 2 log-probs
    # (≤ 1.2·EPS each), their sum and the division by 2 (≤ 2.4·EPS); the mean of 3 (≤ 2·EPS).
    assert supcon_loss(z, labels, tau).item() == pytest.approx(expected, abs=12 * EPS)
    # averaging the 4th anchor in (as 0) would give 3/4 of that: make sure it is not so
    assert supcon_loss(z, labels, tau).item() != pytest.approx(expected * 3 / 4, rel=1e-3)


def test_supcon_without_any_positive_is_zero_and_differentiable():
    z = torch.randn(3, 4, requires_grad=True)
    loss = supcon_loss(z, torch.tensor([0, 1, 2]))
    loss.backward()  # exact: every term is multiplied by 0 (no anchor has a positive)
    assert loss.item() == 0.0 and torch.equal(z.grad, torch.zeros_like(z))


def test_supcon_pulls_same_class_together():
    # same-class features that agree give a lower loss than a shuffled labelling
    g = torch.Generator().manual_seed(5)
    centers = torch.randn(2, 16, generator=g) * 3
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    z = centers[labels][:, None, :] + 0.3 * torch.randn(6, 2, 16, generator=g)
    assert supcon_loss(z, labels) < supcon_loss(z, torch.tensor([0, 1, 0, 1, 0, 1])) - 0.5


def test_supcon_validation():
    z = torch.randn(4, 2, 3)
    with pytest.raises(ValueError, match=r"labels.*\(3,\).*\(4, 2, 3\)"):
        supcon_loss(z, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="temperature"):
        supcon_loss(z, temperature=0)
    with pytest.raises(ValueError, match="empty"):
        supcon_loss(z[:0])
    with pytest.raises(ValueError, match="3-D"):
        supcon_loss(torch.randn(2, 2, 2, 2))


def test_gather_is_identity_without_distributed():
    x = torch.randn(3, 2)
    assert gather_with_grad(x) is x and rank_offset(3) == 0


# ----------------------------------------------------------------------------- two processes
WORLD, B, D = 2, 3, 5


def _full_batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    z1 = torch.randn(WORLD * B, D, generator=g)
    z2 = torch.randn(WORLD * B, D, generator=g)
    labels = torch.tensor([0, 1, 0, 2, 1, 0])        # classes shared across the two ranks
    return z1, z2, labels


def _losses_on_my_slice(rank: int) -> dict:
    z1, z2, labels = _full_batch()
    mine = slice(rank * B, (rank + 1) * B)
    out = {"offset": rank_offset(B)}
    a = z1[mine].clone().requires_grad_()
    b = z2[mine].clone().requires_grad_()
    loss = nt_xent(a, b, 0.5)
    loss.backward()
    out["nt_xent"] = (loss.detach(), a.grad, b.grad)
    for name, lab in (("supcon", labels[mine]), ("supcon_ids", None)):
        views = torch.stack([z1[mine], z2[mine]], dim=1).requires_grad_()
        loss = supcon_loss(views, lab, 0.1)
        loss.backward()
        out[name] = (loss.detach(), views.grad)
    return out


def test_two_process_gloo_gather_matches_single_process(tmp_path):
    ranks = run_on_ranks(_losses_on_my_slice, WORLD, tmp_path)
    assert [r["offset"] for r in ranks] == [0, B]

    # Single process on the concatenated batch. Each rank's loss is the mean over its own
    # anchors, so the mean over ranks is the full loss; the gather sums the gradients of all
    # ranks' losses into each slice, so a rank's gradient is WORLD × the full loss's gradient
    # (DDP then averages parameter gradients over ranks and recovers the full gradient).
    z1, z2, labels = _full_batch()
    a, b = z1.clone().requires_grad_(), z2.clone().requires_grad_()
    full = nt_xent(a, b, 0.5)
    full.backward()
    # Other shapes, so other summation orders: each side within its float32 bound (a rank's
    # loss has 2B anchors, the full one 2·WORLD·B; a rank's gradient sums WORLD ranks' parts,
    # the full gradient is multiplied by WORLD). Missing gathered keys or gradients change the
    # loss by > 0.1 and the gradients by > 10 %.
    keys, min_norm = 2 * WORLD * B - 1, torch.cat([z1, z2]).norm(dim=1).min().item()

    def atols(tau, positives=1):
        loss = sum(ce_atol(D, keys, tau, n, positives) for n in (2 * B, 2 * WORLD * B))
        grad = WORLD * sum(ce_grad_atol(D, keys, tau, n, min_norm) for n in (2 * B, 2 * WORLD * B))
        return loss, grad

    loss_atol, grad_atol = atols(0.5)
    dist_losses = torch.stack([r["nt_xent"][0] for r in ranks])
    assert not torch.allclose(dist_losses[0], dist_losses[1])   # different local anchors
    torch.testing.assert_close(dist_losses.mean(), full.detach(), rtol=0, atol=loss_atol)
    for r, res in enumerate(ranks):
        mine = slice(r * B, (r + 1) * B)
        torch.testing.assert_close(res["nt_xent"][1], WORLD * a.grad[mine], rtol=0, atol=grad_atol)
        torch.testing.assert_close(res["nt_xent"][2], WORLD * b.grad[mine], rtol=0, atol=grad_atol)

    loss_atol, grad_atol = atols(0.1, positives=keys)
    for name, lab in (("supcon", labels), ("supcon_ids", None)):
        views = torch.stack([z1, z2], dim=1).requires_grad_()
        full = supcon_loss(views, lab, 0.1)
        full.backward()
        torch.testing.assert_close(torch.stack([r[name][0] for r in ranks]).mean(), full.detach(),
                                   rtol=0, atol=loss_atol)
        for r, res in enumerate(ranks):
            torch.testing.assert_close(res[name][1], WORLD * views.grad[r * B:(r + 1) * B],
                                       rtol=0, atol=grad_atol)
