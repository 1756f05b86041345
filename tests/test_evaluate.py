"""Tests of sslkit.evaluate: kNN by hand, the linear probe against an independent optimiser,
label efficiency, and the label-free diagnostics against their closed-form values."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sslkit import evaluate
from sslkit.evaluate import (
    alignment,
    effective_rank,
    embedding_std,
    extract_features,
    knn_accuracy,
    knn_classify,
    label_efficiency,
    linear_probe,
    uniformity,
)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These problems are tiny: on a shared 2-core machine, 2 threads spend most of their time
    waiting for each other (measured 8x slower per L-BFGS step under load)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


EPS = torch.finfo(torch.float32).eps  # 2**-23; a float32 rounding of x errs by ≤ |x|·EPS/2


def vote_rtol(temperature: float, dim: int, k: int) -> float:
    """Relative float32 error of a kNN vote: a cosine of two raw ``dim``-vectors errs by
    ≤ (dim + 2)·EPS (normalising both, the dot), exp((s - s_max) / T) by ≤ 2× that / T plus the
    rounding of s - s_max, ÷ T and exp (≤ 2·EPS/T + EPS); summing ≤ k weights and rounding the
    expected value to float32 add ≤ (k + 1)·EPS/2."""
    return (2 * (dim + 2) + 2) * EPS / temperature + EPS + (k + 1) * EPS / 2


def cosines64(test: torch.Tensor, train: torch.Tensor) -> torch.Tensor:
    """Cosine similarities in float64: what the float32 ones (≤ (dim + 2)·EPS off) approximate."""
    return F.normalize(test.double(), dim=1) @ F.normalize(train.double(), dim=1).T


def blobs(n: int, centres: torch.Tensor, generator: torch.Generator, scale: float = 1.0):
    """``n`` points, label ``i % C``, Gaussian noise of std ``scale`` around ``centres[label]``."""
    y = torch.arange(n) % centres.shape[0]
    return centres[y] + scale * torch.randn(n, centres.shape[1], generator=generator), y


def unit(deg: float, length: float = 1.0) -> list[float]:
    return [length * math.cos(math.radians(deg)), length * math.sin(math.radians(deg))]


# ----------------------------------------------------------------------------------------------
# kNN
# ----------------------------------------------------------------------------------------------
# Four training points at 0°, 60°, 90°, 180° (lengths differ: only the angle may matter),
# labels 0, 1, 1, 0. The test point at 0° has cosine similarities 1, 0.5, 0, -1.
KNN_TRAIN = torch.tensor([unit(0, 2.0), unit(60, 0.5), unit(90, 3.0), unit(180, 1.0)])
KNN_LABELS = torch.tensor([0, 1, 1, 0])
KNN_TEST = torch.tensor([unit(0, 5.0)])


def test_knn_hand_computed_votes_and_weighted_tie_break():
    # k = 4: two neighbours per class, a tie in counts that the weights exp(s / T) break.
    # T = 0.5: class 0 gets e^2 + e^-2 = 7.524, class 1 gets e^1 + e^0 = 3.718 -> class 0.
    # The returned votes are these times exp(-s_max / T) = e^-2 (s_max = 1).
    pred, votes = knn_classify(KNN_TRAIN, KNN_LABELS, KNN_TEST, k=4, temperature=0.5,
                               return_votes=True)
    expected = torch.tensor([[math.exp(2) + math.exp(-2), math.exp(1) + math.exp(0)]])
    torch.testing.assert_close(votes, expected * math.exp(-2), rtol=vote_rtol(0.5, 2, 4), atol=0)
    assert pred.tolist() == [0]
    # T = 10: class 0 gets e^0.1 + e^-0.1 = 2.010, class 1 gets e^0.05 + 1 = 2.051 -> class 1:
    # at high temperature the two mid-similar points outvote one near and one opposite point.
    pred, votes = knn_classify(KNN_TRAIN, KNN_LABELS, KNN_TEST, k=4, temperature=10.0,
                               return_votes=True)
    expected = torch.tensor([[math.exp(0.1) + math.exp(-0.1), math.exp(0.05) + 1.0]])
    torch.testing.assert_close(votes, expected * math.exp(-0.1), rtol=vote_rtol(10.0, 2, 4),
                               atol=0)
    assert pred.tolist() == [1]  # 2.051 vs 2.010: 2 % apart, far beyond that rounding


def test_knn_exact_tie_goes_to_smallest_class():
    train = torch.tensor([[1.0, 1.0], [2.0, 2.0]])  # same direction, labels 2 and 1
    pred, votes = knn_classify(train, torch.tensor([2, 1]), torch.tensor([[1.0, 0.0]]), k=2,
                               return_votes=True)
    # exact on any CPU: |(2, 2)| = 2·|(1, 1)| in float arithmetic (sums of small integers, a
    # correctly rounded sqrt scaled by 2), so both rows normalise to the same vector
    assert votes[0, 1] == votes[0, 2] and pred.tolist() == [1]


def test_knn_hand_computed_k3_and_clipping():
    # k = 3 drops the 180° point: class 0 gets e^(1/T), class 1 gets e^(0.5/T) + 1.
    for temperature, winner in ((0.5, 0), (10.0, 1)):
        _, votes = knn_classify(KNN_TRAIN, KNN_LABELS, KNN_TEST, k=3, temperature=temperature,
                                return_votes=True)
        t = temperature
        expected = torch.tensor([[math.exp(1 / t), math.exp(0.5 / t) + 1]]) * math.exp(-1 / t)
        torch.testing.assert_close(votes, expected, rtol=vote_rtol(t, 2, 3), atol=0)
        assert int(votes.argmax()) == winner
    # k larger than the training set is clipped to N = 4: the same kernels, bit-identical
    torch.testing.assert_close(
        knn_classify(KNN_TRAIN, KNN_LABELS, KNN_TEST, k=50, temperature=0.5, return_votes=True)[1],
        knn_classify(KNN_TRAIN, KNN_LABELS, KNN_TEST, k=4, temperature=0.5, return_votes=True)[1],
    )


def _random_problem(seed=0, n=200, m=150, d=8, c=3):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, d, generator=g), torch.randint(0, c, (n,), generator=g),
            torch.randn(m, d, generator=g))


def test_knn_k1_is_nearest_neighbour():
    train, labels, test = _random_problem()
    # No near-ties: every test point's nearest training point is more similar than the next by
    # more than float32 cosines (≤ (8 + 2)·EPS) and cdist's 2 - 2·cos (≤ (8 + 4)·EPS·2 in cos)
    # may err on both routes (2e-4 here, 40× that), so both find it.
    top2 = cosines64(test, train).topk(2, dim=1).values
    assert (top2[:, 0] - top2[:, 1]).min() > 2 * ((8 + 2) + 2 * (8 + 4)) * EPS
    # independent formulation: Euclidean nearest neighbour between unit vectors = max cosine
    a, b = test / test.norm(dim=1, keepdim=True), train / train.norm(dim=1, keepdim=True)
    nearest = torch.cdist(a, b).argmin(dim=1)
    assert torch.equal(knn_classify(train, labels, test, k=1), labels[nearest])


def test_knn_temperature_limits():
    train, labels, test = _random_problem(seed=1, c=2)
    # T -> 0: only the nearest neighbour counts (no overflow thanks to the max shift). At
    # T = 1e-4 that needs a margin: if the nearest is > T·ln(14) closer than the 14 others, their
    # weights sum to < 1, its own, even with float32 cosines (≤ (8 + 2)·EPS off).
    top2 = cosines64(test, train).topk(2, dim=1).values
    assert (top2[:, 0] - top2[:, 1]).min() > 1e-4 * math.log(14) + 2 * (8 + 2) * EPS
    cold = knn_classify(train, labels, test, k=15, temperature=1e-4)
    assert torch.equal(cold, knn_classify(train, labels, test, k=1))
    # T -> inf: unweighted majority vote of the k = 15 nearest (odd k, 2 classes: no ties; the
    # votes differ by ≥ 1 - 15·2/T). Same float32 similarities as knn_classify's (the same
    # kernels on the same shapes), so the same 15 neighbours.
    sims = F.normalize(test, dim=1) @ F.normalize(train, dim=1).T
    idx = sims.topk(15, dim=1).indices
    majority = (labels[idx].sum(dim=1) > 7).long()
    assert torch.equal(knn_classify(train, labels, test, k=15, temperature=1e4), majority)
    assert not torch.equal(cold, majority)  # the two limits really differ on this data


def test_knn_chunking_and_accuracy():
    train, labels, test = _random_problem(seed=2)
    full = knn_classify(train, labels, test, k=7)
    # Chunks of 16 give other GEMM shapes, so each side's cosines (≤ (8 + 2)·EPS) and votes
    # (≤ vote_rtol) round differently. The data have margins beyond both sides' errors (here
    # 50× and 180×): the 7th neighbour is closer than the 8th, the winning vote above the next.
    sim, idx = cosines64(test, train).topk(8, dim=1)
    assert (sim[:, 6] - sim[:, 7]).min() > 2 * (8 + 2) * EPS
    weights = ((sim[:, :7] - sim[:, :1]) / 0.07).exp()
    votes64 = torch.zeros(len(test), 3, dtype=torch.float64).scatter_add_(1, labels[idx[:, :7]],
                                                                       weights)
    top2 = votes64.topk(2, dim=1).values
    assert ((top2[:, 0] - top2[:, 1]) / top2[:, 0]).min() > 2 * vote_rtol(0.07, 8, 7)
    assert torch.equal(knn_classify(train, labels, test, k=7, batch_size=16), full)
    test_labels = full.clone()
    test_labels[:30] = (test_labels[:30] + 1) % 3  # knn_accuracy predicts exactly `full` again
    assert knn_accuracy(train, labels, test, test_labels, k=7) == pytest.approx(120 / 150)
    _, votes = knn_classify(train, labels, test, k=7, num_classes=5, return_votes=True)
    assert votes.shape == (150, 5) and votes[:, 3:].abs().sum() == 0


# ----------------------------------------------------------------------------------------------
# Linear probe
# ----------------------------------------------------------------------------------------------
def test_linear_probe_separable_blobs_near_perfect():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(5, 16, generator=g) * 4
    x_tr, y_tr = blobs(500, centres, g)
    x_va, y_va = blobs(200, centres, g)
    x_te, y_te = blobs(500, centres, g)
    res = linear_probe(x_tr, y_tr, x_te, y_te, val_features=x_va, val_labels=y_va)
    assert res.accuracy >= 0.99 and res.val_accuracy >= 0.99
    assert res.selection == "val"
    assert set(res.val_accuracies) == {1e-4, 1e-3, 1e-2, 1e-1, 1.0}
    assert res.classifier.weight.shape == (5, 16) and res.mean.shape == res.std.shape == (16,)
    # predict repeats the probe's own ops on the same tensors: bit-identical
    assert (res.predict(x_te) == y_te).float().mean().item() == pytest.approx(res.accuracy)


def test_linear_probe_shuffled_labels_near_chance():
    g = torch.Generator().manual_seed(1)
    centres = torch.randn(5, 16, generator=g) * 4
    x_tr, y_tr = blobs(1000, centres, g)
    x_te, y_te = blobs(1000, centres, g)
    assert linear_probe(x_tr, y_tr, x_te, y_te).accuracy > 0.99  # the features are informative
    # Shuffling the labels of both splits makes them independent of the features: chance is 1/5.
    shuffle = lambda y: y[torch.randperm(y.numel(), generator=g)]
    res = linear_probe(x_tr, shuffle(y_tr), x_te, shuffle(y_te))
    assert abs(res.accuracy - 0.2) < 0.05


def test_linear_probe_matches_adam_on_same_objective():
    """Independent formulation: Adam on mean CE + wd/2 ||W||^2 over standardised features."""
    g = torch.Generator().manual_seed(2)
    centres = torch.randn(3, 6, generator=g)
    x_tr, y_tr = blobs(300, centres, g, scale=1.2)  # overlapping classes
    x_te, y_te = blobs(600, centres, g, scale=1.2)
    wd = 1e-2
    res = linear_probe(x_tr, y_tr, x_te, y_te, weight_decays=(wd,), max_iter=200)

    mean, std = x_tr.mean(0), x_tr.std(0, correction=0)
    xs = (x_tr - mean) / std
    w = torch.zeros(3, 6, requires_grad=True)
    b = torch.zeros(3, requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=0.1)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=1000)

    def objective(weight, bias):
        return F.cross_entropy(xs @ weight.T + bias, y_tr) + 0.5 * wd * weight.pow(2).sum()

    for _ in range(1000):
        opt.zero_grad()
        objective(w, b).backward()
        opt.step()
        sched.step()
    # Both runs stop near the optimum θ*, as far as their float32 gradients allow. In float64:
    # the objective is flat only along a common shift of the biases (softmax ignores it) and
    # curved by ≥ mu across it, so a solution with gradient g lies within |g| / mu of θ* and
    # within |g|² / (2 mu) of f(θ*) (the weights and the centred biases).
    xs64 = xs.double()

    def objective64(theta):  # theta: the 18 weights, then the 3 biases
        weight, bias = theta[:18].view(3, 6), theta[18:]
        return F.cross_entropy(xs64 @ weight.T + bias, y_tr) + 0.5 * wd * weight.pow(2).sum()

    ours, ref = (torch.cat([wt.detach().flatten(), bs.detach()]).double()
                 for wt, bs in ((res.classifier.weight, res.classifier.bias), (w, b)))
    grads = [torch.autograd.functional.jacobian(objective64, t).norm().item() for t in (ours, ref)]
    shift = torch.zeros(21, dtype=torch.float64)
    shift[18:] = 3**-0.5
    across = torch.eye(21, dtype=torch.float64) - torch.outer(shift, shift)
    mu = min(torch.linalg.eigvalsh(across @ torch.autograd.functional.hessian(objective64, t)
                                   @ across)[1].item() for t in (ours, ref))  # [0]: the shift
    assert mu >= wd * (1 - 1e-6)  # the weight decay alone gives wd
    # L-BFGS reaches at least Adam's optimum: f(ours) ≤ f(θ*) + g_ours² / (2 mu) ≤ f(ref) + that
    assert objective64(ours).item() <= objective64(ref).item() + grads[0] ** 2 / (2 * mu)
    atol = sum(grads) / mu  # |ours - ref| across the shift; 3.4e-3 here, an optimum moved by a
    # wrong objective (wd on the biases, wd instead of wd/2) moves the weights by > 1e-2
    torch.testing.assert_close(res.classifier.weight, w, rtol=0, atol=atol)
    # softmax ignores a constant added to every bias (biases are not decayed): centre them
    bias = res.classifier.bias
    torch.testing.assert_close(bias - bias.mean(), b - b.mean(), rtol=0, atol=atol)
    with torch.no_grad():
        xt = (x_te - mean) / std
        ref_pred = (xt @ w.T + b).argmax(1)
        # a logit moves by ≤ atol·(|x|_1 + 1) between the two classifiers (and by ≤ 1e-5 for
        # rounding), so only test points whose top-2 logit gap is below twice that may flip
        logits = res.logits(x_te).topk(2, dim=1).values
        near = (logits[:, 0] - logits[:, 1] <= 2 * atol * (xt.abs().sum(1) + 1) + 1e-5)
    agreement = (res.predict(x_te) == ref_pred).float().mean().item()
    assert agreement >= 1 - near.float().mean().item() and agreement >= 0.98  # 1 % near here
    torch.testing.assert_close(res.mean, mean)  # the same op on the same tensor: bit-identical


def _low_rank_problem(seed: int):
    """Features near a 2-D subspace of R^64 plus tiny noise, like many learned embeddings. With
    few, noisy labels an unregularised fit uses the tiny-noise directions to memorise them."""
    g = torch.Generator().manual_seed(seed)
    mixing = torch.randn(2, 64, generator=g)

    def draw(n, flip=0.0):
        y = torch.arange(n) % 2
        z = torch.randn(n, 2, generator=g)
        z[:, 0] += 2.5 * y
        x = z @ mixing + 0.05 * torch.randn(n, 64, generator=g)
        flipped = torch.rand(n, generator=g) < flip
        return x, torch.where(flipped, 1 - y, y)

    return draw


def test_weight_decay_sweep_prefers_regularisation_with_few_noisy_labels():
    draw = _low_rank_problem(0)
    x_va, y_va = draw(1000)
    x_te, y_te = draw(1000)
    x_tr, y_tr = draw(40, flip=0.25)
    wds = (0.0, 1e-3, 1e-2, 1e-1, 1.0)
    res = linear_probe(x_tr, y_tr, x_te, y_te, val_features=x_va, val_labels=y_va,
                       weight_decays=wds)
    unregularised = linear_probe(x_tr, y_tr, x_te, y_te, weight_decays=(0.0,))
    assert unregularised.selection == "single" and unregularised.weight_decay == 0.0
    assert res.weight_decay >= 0.1
    assert res.val_accuracies[res.weight_decay] > res.val_accuracies[0.0] + 0.05
    assert res.accuracy > unregularised.accuracy + 0.05


def test_linear_probe_without_val_uses_stratified_holdout():
    g = torch.Generator().manual_seed(3)
    centres = torch.randn(4, 8, generator=g) * 3
    x_tr, y_tr = blobs(400, centres, g)
    x_te, y_te = blobs(400, centres, g)
    res = linear_probe(x_tr, y_tr, x_te, y_te)
    assert res.selection == "holdout" and res.accuracy > 0.95
    again = linear_probe(x_tr, y_tr, x_te, y_te)  # deterministic: same process, same kernels
    assert again.weight_decay == res.weight_decay
    torch.testing.assert_close(again.classifier.weight, res.classifier.weight)
    # The chosen weight decay was refit on all 400 points: same as a single fit with it.
    single = linear_probe(x_tr, y_tr, x_te, y_te, weight_decays=(res.weight_decay,))
    torch.testing.assert_close(single.classifier.weight, res.classifier.weight)
    # the hold-out takes floor(n_c / 5) of every class, whatever the label order
    y_unbalanced = torch.tensor([0] * 12 + [1] * 5 + [2] * 4)[torch.randperm(21, generator=g)]
    held = evaluate._stratified_holdout(y_unbalanced)
    assert [int(held[y_unbalanced == c].sum()) for c in range(3)] == [2, 1, 0]
    assert torch.equal(held, evaluate._stratified_holdout(y_unbalanced))
    # With fewer than 5 examples per class nothing can be held out: the largest wd is used.
    tiny = linear_probe(x_tr[:12], y_tr[:12], x_te, y_te, weight_decays=(0.0, 1e-3, 1e-2))
    assert tiny.selection == "single" and tiny.weight_decay == 1e-2


# ----------------------------------------------------------------------------------------------
# Label efficiency
# ----------------------------------------------------------------------------------------------
def test_label_efficiency_table_and_trend():
    g = torch.Generator().manual_seed(4)
    centres = torch.randn(4, 16, generator=g) * 0.8  # overlapping: more labels help
    x_tr, y_tr = blobs(400, centres, g)
    x_va, y_va = blobs(400, centres, g)
    x_te, y_te = blobs(1000, centres, g)
    table = label_efficiency(x_tr, y_tr, x_te, y_te, labels_per_class=(1, 10, 100, None),
                             val_features=x_va, val_labels=y_va)
    assert isinstance(table, pd.DataFrame)
    assert list(table.columns) == ["labels_per_class", "n_labels", "accuracy"]
    assert table["labels_per_class"].tolist() == [1, 10, 100, "all"]
    assert table["n_labels"].tolist() == [4, 40, 400, 400]
    acc = table["accuracy"].tolist()
    assert acc[2] == pytest.approx(acc[3])  # 100 per class is all of them, in the same order
    assert acc[0] < acc[1] < acc[2]
    assert acc[2] - acc[0] > 0.1

    knn = label_efficiency(x_tr, y_tr, x_te, y_te, labels_per_class=(5, None), method="knn", k=5)
    assert knn["n_labels"].tolist() == [20, 400]
    assert knn["accuracy"].iloc[1] > 0.5
    again = label_efficiency(x_tr, y_tr, x_te, y_te, labels_per_class=(5,), method="knn", k=5)
    assert again["accuracy"].iloc[0] == knn["accuracy"].iloc[0]  # same seed, same subset


def test_label_efficiency_subsets_are_nested_and_seeded(monkeypatch):
    """Record the training subsets handed to the probe: features are the example indices."""
    seen = []

    def recorder(train_features, train_labels, test_features, test_labels, **kw):
        seen.append(train_features[:, 0].long().tolist())
        return 0.5

    monkeypatch.setattr(evaluate.efficiency, "knn_accuracy", recorder)  # where it is looked up
    x = torch.arange(300, dtype=torch.float32)[:, None]
    y = torch.arange(300) % 3
    table = label_efficiency(x, y, x, y, labels_per_class=(1, 10, 100, None), method="knn")
    assert table["n_labels"].tolist() == [3, 30, 300, 300]
    one, ten, hundred, everything = (set(s) for s in seen)
    assert one < ten < hundred == everything == set(range(300))  # nested
    assert sorted(y[list(ten)].tolist()) == [0] * 10 + [1] * 10 + [2] * 10  # 10 per class
    assert sorted(ten) != list(range(30))  # a seeded sample, not the first 10 of each class
    seen.clear()
    label_efficiency(x, y, x, y, labels_per_class=(10,), method="knn", seed=0)
    label_efficiency(x, y, x, y, labels_per_class=(10,), method="knn", seed=1)
    assert set(seen[0]) == ten and set(seen[1]) != ten  # same seed, same subset


def test_label_efficiency_too_many_labels_is_an_error():
    x = torch.randn(30, 4)
    y = torch.arange(30) % 3  # 10 per class
    with pytest.raises(ValueError, match=r"labels_per_class=11.*\[1, 10\]"):
        label_efficiency(x, y, x, y, labels_per_class=(1, 11))


# ----------------------------------------------------------------------------------------------
# Diagnostics
# ----------------------------------------------------------------------------------------------
def test_effective_rank_isotropic_and_low_rank():
    g = torch.Generator().manual_seed(5)
    iso = torch.randn(4000, 64, generator=g)
    assert abs(effective_rank(iso) - 64) < 6.4
    basis = torch.linalg.qr(torch.randn(64, 5, generator=g)).Q.T  # 5 orthonormal rows
    low = torch.randn(4000, 5, generator=g) @ basis
    assert abs(effective_rank(low) - 5) < 0.5
    collapsed = torch.ones(100, 64)  # exp(H) = 1 + 1e-4 from the eps = 1e-7 floor (float64)
    assert effective_rank(collapsed) == pytest.approx(1.0, abs=1e-3)
    # by hand: singular values (3, 1) -> p = (3/4, 1/4) -> exp(H(p)), H in nats
    c, s = math.cos(0.5), math.sin(0.5)
    two = torch.tensor([[3.0, 0.0], [0.0, 1.0]]) @ torch.tensor([[c, -s], [s, c]])  # rotated
    expected = math.exp(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))  # 1.7548
    # `two` is rounded to float32 (|δA| ≤ EPS·|A|_F = 3.2·EPS moves σ by as much, the SVD is
    # float64): p by ≤ 1.6·EPS, H and log(rank) by ≤ |log(1/3)|·1.6·EPS ≈ 1.8·EPS = 2e-7.
    assert effective_rank(two, eps=0.0) == pytest.approx(expected, rel=1e-6)


def test_embedding_std_collapse_and_isotropic():
    g = torch.Generator().manual_seed(6)
    d = 64
    collapsed = torch.randn(1, d, generator=g).expand(500, d) * 3
    # 0 exactly on any CPU: identical rows normalise identically, and the variance of identical
    # values is 0 in Welford's updates (the mean never moves); 1e-6 leaves room for a two-pass sum
    assert embedding_std(collapsed).abs().max() < 1e-6
    std = embedding_std(torch.randn(5000, d, generator=g))
    assert std.shape == (d,)
    assert std.mean().item() == pytest.approx(1 / math.sqrt(d), rel=0.05)


def test_alignment_values():
    g = torch.Generator().manual_seed(7)
    z = torch.randn(100, 8, generator=g)
    # z and 3z normalise ≤ (8/2 + 3)·EPS apart per component: |u - v|² ≤ 8·(7·EPS)² ≈ 6e-12
    assert alignment(z, z * 3.0) == pytest.approx(0.0, abs=1e-6)  # same directions
    # antipodal pairs: ||u - (-u)|| = 2 -> 2^alpha. -z normalises to exactly -u, so the error is
    # |u|'s (≤ (8/2 + 2)·EPS, doubled by the square) and the mean's (≤ 100·EPS/2): ≤ 62·EPS < 1e-5
    assert alignment(z, -z) == pytest.approx(4.0, rel=1e-5)
    assert alignment(z, -z, alpha=1) == pytest.approx(2.0, rel=1e-5)


def test_uniformity_values_and_pdist_reference():
    g = torch.Generator().manual_seed(8)
    collapsed = torch.randn(1, 16, generator=g).expand(50, 16)
    # 0 but for rounding: ‖a - b‖² = 2 - 2 a·b ∈ [0, 2·(16 + 2)·EPS] for equal unit rows (× t = 2),
    # then a log-sum-exp of 1225 pairs (their sum: ≤ 1225·EPS/2; exp, log: ≤ 4·EPS/2)
    assert uniformity(collapsed) == pytest.approx(0.0, abs=(4 * 18 + 1229 / 2) * EPS)  # 8e-5
    spread = torch.randn(300, 16, generator=g)
    u = uniformity(spread, batch_size=37)
    assert u < -1.0
    # reference formula of Wang & Isola (2020), with torch.pdist, in float64 (exact here). Ours
    # in float32: t·‖a - b‖² ≤ 2·2·(16 + 2)·EPS off, then log-sum-exps over blocks of 37 rows
    # (≤ 37·299 pairs each, a sum ≤ 37·299·EPS/2 off) and over the 9 blocks: 6.7e-4 in all.
    # Counting the 300 self-pairs, or leaving out the first block's pairs, moves it by > 0.1.
    ref = torch.pdist(F.normalize(spread.double(), dim=1)).pow(2).mul(-2).exp().mean().log().item()
    assert u == pytest.approx(ref, abs=(4 * 18 + (37 * 299 + 9 + 4) / 2) * EPS)
    clustered = F.normalize(torch.randn(300, 16, generator=g), dim=1) * 0.1 + 1.0
    assert uniformity(clustered) > u


# ----------------------------------------------------------------------------------------------
# Feature extraction
# ----------------------------------------------------------------------------------------------
class _Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        return self.drop(self.bn(self.conv(x)).mean(dim=(2, 3)))


def _to_float(images):
    return images.float() / 255.0


def test_extract_features_eval_mode_no_grad_and_restores_modes():
    torch.manual_seed(0)
    model = _Tiny().train()
    model.bn.eval()  # a mixed state must come back as it was
    images = torch.randint(0, 256, (10, 3, 8, 8), dtype=torch.uint8)
    feats = extract_features(model, images, batch_size=3, transform=_to_float)
    assert feats.shape == (10, 4) and feats.dtype == torch.float32
    assert not feats.requires_grad
    assert model.training and model.conv.training and model.drop.training
    assert not model.bn.training
    model.eval()
    # Batches of 3 vs one of 10: other conv shapes. Per side, a conv output sums 27 products with
    # Σ|w·x| ≤ 27·(1/√27)·1 (default init, pixels ≤ 1), and the mean of 36 outputs |y| ≤ 6 adds
    # ≤ 36·6·EPS/2 (BN at its initial statistics is × 1/√(1 + 1e-5)): 4.3e-5 for both sides
    atol = 2 * (27 * 27**0.5 + 36 * 6 + 3) * EPS / 2
    with torch.no_grad():
        torch.testing.assert_close(feats, model(_to_float(images)), rtol=0, atol=atol)
    # the running statistics were not updated by extraction
    assert torch.equal(model.bn.running_mean, torch.zeros(4))


def test_extract_features_restores_mode_on_error():
    model = _Tiny().train()

    def broken(_):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        extract_features(model, torch.zeros(2, 3, 8, 8, dtype=torch.uint8), transform=broken)
    assert model.training and model.bn.training


def test_extract_features_default_transform_is_views_to_float():
    from sslkit import views
    model = _Tiny()
    images = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    torch.testing.assert_close(extract_features(model, images),  # the same calls: bit-identical
                               extract_features(model, images, transform=views.to_float))


# ----------------------------------------------------------------------------------------------
# Invalid arguments
# ----------------------------------------------------------------------------------------------
X = torch.randn(20, 4)
Y = torch.arange(20) % 2


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: knn_classify(X, Y, X, k=0), "k=0"),
        (lambda: knn_classify(X, Y, X, temperature=0.0), "temperature=0.0"),
        (lambda: knn_classify(X, Y, X, temperature=-0.1), "temperature=-0.1"),
        (lambda: knn_classify(X, Y, X, num_classes=1), "num_classes=1"),
        (lambda: knn_classify(X, Y, X, batch_size=0), "batch_size=0"),
        (lambda: knn_classify(X, Y.float(), X), "train_labels"),
        (lambda: linear_probe(X, Y, X, Y, weight_decays=(0.0, -1e-3)), "weight_decays=-0.001"),
        (lambda: linear_probe(X, Y, X, Y, weight_decays=()), "weight_decays"),
        (lambda: linear_probe(X, Y, X, Y, max_iter=0), "max_iter=0"),
        (lambda: linear_probe(X, Y, X, Y, val_features=X), "val_labels"),
        (lambda: label_efficiency(X, Y, X, Y, labels_per_class=(0, 5)), "labels_per_class=0"),
        (lambda: label_efficiency(X, Y, X, Y, labels_per_class=(2.5,)), "labels_per_class=2.5"),
        (lambda: label_efficiency(X, Y, X, Y, method="svm"), "method='svm'"),
        (lambda: effective_rank(X, eps=-1.0), "eps=-1.0"),
        (lambda: alignment(X, X[:10]), "same shape"),
        (lambda: alignment(X, X, alpha=0), "alpha=0"),
        (lambda: uniformity(X, t=0), "t=0"),
        (lambda: embedding_std(X[:1]), "at least 2"),
        (lambda: extract_features(_Tiny(), torch.zeros(1, 3, 8, 8), batch_size=0,
                                  transform=_to_float), "batch_size=0"),
    ],
)
def test_invalid_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()
