"""The loss families of lectures 05-08 (clustering, distillation, redundancy, masked) against
hand-computed values and an independent, loop-by-loop formulation in float64.

Tolerances: the library computes in float32; each value below is a sum of at most a few hundred
products of O(1) terms, so its rounding error is below ~1e-4 relative (n·2⁻²⁴ with n ≤ 1000);
``RTOL`` covers that on any CPU and thread count, and a wrong formula misses by far more.
"""

from __future__ import annotations

import math

import pytest
import torch

from sslkit import losses

RTOL, ATOL = 1e-4, 1e-5


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------------- redundancy
def test_barlow_twins_is_zero_for_identical_decorrelated_views_and_eight_for_opposite_ones():
    z = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])  # orthogonal columns
    # C = I up to the BatchNorm eps (variance 1 → C_ii = 1 / (1 + 1e-5)).
    assert losses.barlow_twins_loss(z, z).item() == pytest.approx(2 * (1e-5) ** 2, abs=1e-9)
    # C = -I: each diagonal term (1 - (-1))² = 4, two of them.
    assert losses.barlow_twins_loss(z, -z).item() == pytest.approx(8.0, rel=RTOL)


def _loop_barlow(z1, z2, lambd):
    z1, z2 = z1.double(), z2.double()
    b, d = z1.shape
    a = (z1 - z1.mean(0)) / torch.sqrt(z1.var(0, unbiased=False) + 1e-5)
    c = (z2 - z2.mean(0)) / torch.sqrt(z2.var(0, unbiased=False) + 1e-5)
    total = 0.0
    for i in range(d):
        for j in range(d):
            cij = sum(a[n, i] * c[n, j] for n in range(b)) / b
            total += (1 - cij) ** 2 if i == j else lambd * cij ** 2
    return float(total)


def test_barlow_twins_matches_a_loop_over_the_cross_correlation():
    z1, z2 = _randn(16, 5, seed=1), _randn(16, 5, seed=2)
    got = losses.barlow_twins_loss(z1, z2, lambd=0.1).item()
    assert got == pytest.approx(_loop_barlow(z1, z2, 0.1), rel=RTOL)
    c = losses.cross_correlation(z1, z2)
    assert c.shape == (5, 5) and c.abs().max() <= 1 + 1e-5


def test_vicreg_terms_on_hand_computed_cases():
    collapsed = torch.ones(8, 3)
    # std = sqrt(0 + 1e-4) = 0.01 in every dimension: max(0, 1 - 0.01) = 0.99.
    assert losses.variance(collapsed).item() == pytest.approx(0.99, rel=RTOL)
    spread = torch.tensor([[2.0, -2.0], [-2.0, 2.0], [2.0, 2.0], [-2.0, -2.0]])
    assert losses.variance(spread).item() == 0.0                       # std ≈ 2.31 > 1
    # Second column = 2 × first: cov = [[v, 2v], [2v, 4v]], off-diagonal Σ² / D = 8v² / 2.
    a = torch.tensor([1.0, -1.0, 3.0, -3.0])
    v = a.var().item()                                                 # 20/3 (unbiased)
    z = torch.stack([a, 2 * a], dim=1)
    assert losses.covariance(z).item() == pytest.approx(4 * v * v, rel=RTOL)
    assert losses.covariance(spread).item() == pytest.approx(0.0, abs=ATOL)  # uncorrelated
    z1, z2 = _randn(6, 4, seed=3), _randn(6, 4, seed=4)
    assert losses.invariance(z1, z2).item() == pytest.approx(
        ((z1.double() - z2.double()) ** 2).mean().item(), rel=RTOL)


def test_vicreg_is_the_weighted_sum_of_its_terms_and_a_zero_weight_ablates_a_term():
    z1, z2 = _randn(10, 6, seed=5), _randn(10, 6, seed=6)
    inv, var = losses.invariance(z1, z2), losses.variance(z1) + losses.variance(z2)
    cov = losses.covariance(z1) + losses.covariance(z2)
    torch.testing.assert_close(losses.vicreg_loss(z1, z2), 25 * inv + 25 * var + cov,
                               rtol=RTOL, atol=ATOL)
    torch.testing.assert_close(losses.vicreg_loss(z1, z2, var_weight=0.0), 25 * inv + cov,
                               rtol=RTOL, atol=ATOL)


# -------------------------------------------------------------------------------- distillation
def test_normalized_mse_is_two_minus_two_cosine():
    z = _randn(5, 8, seed=7)
    assert losses.normalized_mse(3 * z, z).item() == pytest.approx(0.0, abs=ATOL)  # same way
    assert losses.normalized_mse(-z, z).item() == pytest.approx(4.0, rel=RTOL)      # opposite
    e1, e2 = torch.eye(2)[:1], torch.eye(2)[1:]
    assert losses.normalized_mse(e1, e2).item() == pytest.approx(2.0, rel=RTOL)     # orthogonal


def _loop_cross_views(targets, log_probs):
    """mean over pairs i ≠ j of mean_b −Σ_k targets[i,b,k] log_probs[j,b,k], float64."""
    total, pairs = 0.0, 0
    for i in range(targets.shape[0]):
        for j in range(log_probs.shape[0]):
            if i == j:
                continue
            total += float(-(targets[i] * log_probs[j]).sum(-1).mean())
            pairs += 1
    return total / pairs


def test_dino_loss_matches_a_loop_over_the_pairs_of_different_views():
    student, teacher, center = _randn(4, 3, 6, seed=8), _randn(2, 3, 6, seed=9), _randn(6, seed=10)
    got = losses.dino_loss(student, teacher, center, 0.1, 0.04).item()
    p_t = torch.softmax((teacher.double() - center.double()) / 0.04, dim=-1)
    log_p_s = torch.log_softmax(student.double() / 0.1, dim=-1)
    assert got == pytest.approx(_loop_cross_views(p_t, log_p_s), rel=RTOL)


# ---------------------------------------------------------------------------------- clustering
def test_swapped_prediction_with_one_hot_codes_is_cross_entropy_of_the_other_view():
    scores = _randn(2, 4, 3, seed=13)
    targets = torch.tensor([[0, 2, 1, 1], [2, 2, 0, 1]])
    codes = torch.nn.functional.one_hot(targets, 3).float()
    got = losses.swapped_prediction(scores, codes, temperature=0.5)
    ce = torch.nn.functional.cross_entropy
    want = (ce(scores[1] / 0.5, targets[0]) + ce(scores[0] / 0.5, targets[1])) / 2  # swapped
    torch.testing.assert_close(got, want, rtol=RTOL, atol=ATOL)


def test_swapped_prediction_matches_a_loop_with_multi_crop():
    scores, codes = _randn(5, 3, 4, seed=14), torch.softmax(_randn(2, 3, 4, seed=15), dim=-1)
    got = losses.swapped_prediction(scores, codes, temperature=0.1).item()
    want = _loop_cross_views(codes.double(), torch.log_softmax(scores.double() / 0.1, dim=-1))
    assert got == pytest.approx(want, rel=RTOL)


def test_scan_terms_on_hand_computed_cases():
    k = 4
    uniform = torch.zeros(3, k)
    # Two uniform assignments agree with probability Σ_k (1/K)² = 1/K: consistency log K.
    assert losses.scan_consistency(uniform, uniform).item() == pytest.approx(math.log(k), rel=RTOL)
    confident = torch.tensor([[20.0, 0, 0, 0], [0, 20.0, 0, 0], [0, 0, 20.0, 0], [0, 0, 0, 20.0]])
    assert losses.scan_consistency(confident, confident).item() == pytest.approx(0.0, abs=1e-6)
    # Each image in its own cluster: the mean assignment is uniform, entropy log K.
    assert losses.assignment_entropy(confident).item() == pytest.approx(math.log(k), rel=RTOL)
    # Every image in cluster 0: entropy 0, and the entropy term is what tells the two apart.
    one = confident[[0, 0, 0, 0]]
    assert losses.assignment_entropy(one).item() == pytest.approx(0.0, abs=1e-6)
    assert losses.scan_loss(one, one).item() > losses.scan_loss(confident, confident).item() + 5
    torch.testing.assert_close(
        losses.scan_loss(confident, one, entropy_weight=2.0),
        losses.scan_consistency(confident, one) - 2.0 * losses.assignment_entropy(confident))


# ------------------------------------------------------------------------------------- masked
def test_masked_mse_counts_masked_patches_only():
    pred = torch.zeros(1, 4, 3)
    target = torch.stack([torch.full((3,), float(v)) for v in (1, 2, 3, 4)])[None]  # (1, 4, 3)
    mask = torch.tensor([[1, 0, 1, 0]])
    # Raw pixels: masked patches have errors 1² and 3²: mean 5; visible patches do not count.
    assert losses.masked_mse(pred, target, mask, norm_pix=False).item() == pytest.approx(5.0)
    # norm_pix: the patch [1, 2, 3] becomes [-1, 0, 1] (unbiased variance 1), up to eps.
    patch = torch.tensor([[[1.0, 2.0, 3.0]]])
    got = losses.masked_mse(torch.tensor([[[-1.0, 0.0, 1.0]]]), patch, torch.ones(1, 1))
    assert got.item() == pytest.approx(0.0, abs=1e-5)


# --------------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize("call, match", [
    (lambda: losses.barlow_twins_loss(torch.ones(4, 3), torch.ones(4, 2)), "same shape"),
    (lambda: losses.barlow_twins_loss(torch.ones(1, 3), torch.ones(1, 3)), "at least 2"),
    (lambda: losses.barlow_twins_loss(torch.ones(4, 3), torch.ones(4, 3), lambd=-1), "lambd"),
    (lambda: losses.variance(torch.ones(4, 3), gamma=0), "gamma"),
    (lambda: losses.vicreg_loss(torch.ones(4, 3), torch.ones(4, 3), cov_weight=-1), "cov_weight"),
    (lambda: losses.normalized_mse(torch.ones(4, 3), torch.ones(4, 2)), "same shape"),
    (lambda: losses.dino_loss(torch.ones(2, 3, 4), torch.ones(3, 3, 4), torch.zeros(4)), "Vt"),
    (lambda: losses.dino_loss(torch.ones(2, 3, 4), torch.ones(2, 3, 4), torch.zeros(5)),
     "center"),
    (lambda: losses.dino_loss(torch.ones(2, 3, 4), torch.ones(2, 3, 4), torch.zeros(4),
                              teacher_temperature=0), "teacher_temperature"),
    (lambda: losses.swapped_prediction(torch.ones(1, 3, 4), torch.ones(1, 3, 4)), "2 views"),
    (lambda: losses.swapped_prediction(torch.ones(2, 3, 4), torch.ones(2, 3, 5)), "codes"),
    (lambda: losses.scan_loss(torch.ones(3, 4), torch.ones(3, 4), entropy_weight=-1),
     "entropy_weight"),
    (lambda: losses.masked_mse(torch.ones(1, 4, 3), torch.ones(1, 4, 3), torch.zeros(1, 4)),
     "no patch"),
    (lambda: losses.masked_mse(torch.ones(1, 4, 3), torch.ones(1, 4, 3), torch.ones(1, 3)),
     "mask"),
])
def test_bad_inputs_raise_a_clear_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
