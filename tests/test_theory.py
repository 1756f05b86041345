"""`sslkit.theory`: EM for a shared-variance Gaussian mixture, pretrain-then-ERM against supervised
ERM, excess risk, and the deep-linear-network closed form."""

from __future__ import annotations

import itertools
import math

import pandas as pd
import pytest
import torch

from sslkit import theory as th

EPS = torch.finfo(torch.float32).eps  # 2**-23


def f32_sum_tol(n_terms: int, scale: float) -> float:
    """How far two float32 evaluations of a sum (or mean) of ``n_terms`` terms of size ``scale``
    may differ when they add in different orders (other kernels, threads or batch shapes): each
    errs by at most ``(n_terms + 8)·EPS/2·scale``, the 8 covering the ops around the sum."""
    return 2 * (n_terms + 8) * EPS / 2 * scale


def _match_error(est: torch.Tensor, true: torch.Tensor) -> float:
    """Largest distance between estimated and true means under the best relabelling."""
    k = true.shape[0]
    return min(float((est[list(p)] - true).norm(dim=-1).max())
               for p in itertools.permutations(range(k)))


# ----------------------------------------------------------------------------------------------
# EM
# ----------------------------------------------------------------------------------------------
def test_em_recovers_the_means_of_a_well_separated_mixture():
    problem = th.make_problem(dim=5, num_components=3, separation=8.0)
    x, _ = problem.sample(2000, trials=1, seed=3)
    fit = th.fit_em(x[0], 3, seed=1)
    assert _match_error(fit.mixture.means, problem.mixture.means) < 0.15
    assert abs(float(fit.mixture.variance) - 1.0) < 0.05
    torch.testing.assert_close(fit.mixture.weights.sort().values, torch.full((3,), 1 / 3),
                               atol=0.04, rtol=0)


def test_em_log_likelihood_never_decreases_on_overlapping_clusters():
    problem = th.make_problem(dim=10, num_components=4, separation=1.5)
    x, _ = problem.sample(300, trials=6, seed=0)
    fit = th.fit_em(x, 4, iters=60, n_init=1, tol=0.0, seed=2)
    assert fit.history.shape == (6, 60)
    steps = fit.history.diff(dim=-1)
    # Each history entry is a float32 mean over 300 points (of 10-d log-densities): only its
    # round-off may make a step negative.
    tol = f32_sum_tol(x.shape[1] + x.shape[2], float(fit.history.abs().max()))
    assert float(steps.min()) > -tol
    assert float((fit.history[:, -1] - fit.history[:, 0]).min()) > 0


def test_e_step_matches_the_hand_computed_posterior_in_1d():
    # Two unit-variance components at -1 and +1: p(z=1 | x) = sigmoid(2x + log(w1 / w0)).
    x = torch.tensor([[-2.0], [-1.0], [1.0], [2.0]])
    mix = th.GaussianMixture(torch.tensor([[-1.0], [1.0]]), 1.0, torch.tensor([0.5, 0.5]))
    resp, ll = th.e_step(x, mix)
    expected = torch.sigmoid(2 * x[:, 0].double())         # 0.017986, 0.119203, 0.880797, …
    # float32 log-densities of size ≤ 5.5, each from ≤ 4 rounded ops, then exponentiated:
    # responsibilities err by ≤ 4·5.5·EPS; a wrong variance or weight moves them by > 1e-3.
    torch.testing.assert_close(resp[:, 1].double(), expected, atol=4 * 5.5 * EPS, rtol=0)
    torch.testing.assert_close(resp.sum(-1), torch.ones(4))
    xd = x.double()
    dens = 0.5 * (torch.exp(-0.5 * (xd + 1) ** 2) + torch.exp(-0.5 * (xd - 1) ** 2)) / math.sqrt(
        2 * math.pi)
    torch.testing.assert_close(ll.double(), dens.log().mean(), atol=f32_sum_tol(4, 5.5), rtol=0)
    skewed = th.GaussianMixture(mix.means, 1.0, torch.tensor([0.25, 0.75]))
    resp, _ = th.e_step(x, skewed)
    torch.testing.assert_close(resp[:, 1], torch.sigmoid(2 * x[:, 0] + math.log(3.0)))


def test_m_step_matches_weighted_averages():
    x = torch.tensor([[-2.0], [-1.0], [1.0], [2.0]])
    r1 = torch.tensor([0.017986, 0.119203, 0.880797, 0.982014])
    resp = torch.stack([1 - r1, r1], -1)
    mix = th.m_step(x, resp)
    mu1 = float((r1 * x[:, 0]).sum() / r1.sum())  # = 1.3448 by hand
    assert mu1 == pytest.approx(1.3448, abs=1e-4)
    torch.testing.assert_close(mix.means[:, 0], torch.tensor([-mu1, mu1]))
    torch.testing.assert_close(mix.weights, torch.tensor([0.5, 0.5]))
    var = float((resp * (x - mix.means[:, 0]) ** 2).sum() / 4)
    assert float(mix.variance) == pytest.approx(var, abs=1e-5)


def test_m_step_weights_are_the_share_of_responsibility():
    x = torch.tensor([[-2.0], [-1.0], [1.0], [2.0]])
    resp = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    mix = th.m_step(x, resp)
    torch.testing.assert_close(mix.weights, torch.tensor([0.75, 0.25]))
    torch.testing.assert_close(mix.means[:, 0], torch.tensor([-2 / 3, 2.0]))
    spread = ((x[:3, 0] + 2 / 3) ** 2).sum() / 4  # the lone point sits on its centre
    torch.testing.assert_close(mix.variance, spread)


def test_more_em_restarts_keep_the_more_likely_fit():
    problem = th.make_problem(dim=5, num_components=4, separation=2.0)
    x, _ = problem.sample(150, trials=30, seed=0)
    one = th.fit_em(x, 4, n_init=1, seed=1)
    five = th.fit_em(x, 4, n_init=5, seed=1)
    assert float(five.history[:, -1].mean()) > float(one.history[:, -1].mean())
    torch.testing.assert_close(th.e_step(x, five.mixture)[1], five.history[:, -1])


def test_batched_e_and_m_steps_equal_one_trial_at_a_time():
    problem = th.make_problem(dim=6, num_components=3, separation=3.0)
    x, _ = problem.sample(50, trials=3, seed=0)
    g = torch.Generator().manual_seed(0)
    means = torch.randn(3, 3, 6, generator=g)
    mix = th.GaussianMixture(means, torch.tensor([0.5, 1.0, 2.0]), torch.full((3, 3), 1 / 3))
    resp, ll = th.e_step(x, mix)
    new = th.m_step(x, resp)
    # Batched and per-trial runs use matmuls of other shapes, which may round differently:
    # log-joints are sums of 6 squared distances (plus ~8 ops) of size ≤ max|log-joint|,
    # responsibilities inherit that error, the mean log-likelihood adds a mean of 50 terms,
    # and each mean is a weighted average of 50 points.
    scale = float(th.log_joint(x, mix).abs().max())
    resp_tol = f32_sum_tol(6, scale)
    # A mean Σ r·x / Σ r: its sums err by f32_sum_tol(50, max|x|), and the responsibilities'
    # own differences move it by ≤ 50·resp_tol·max|x| / Σ r (smallest Σ r over components).
    x_max, r_min = float(x.abs().max()), float(resp.sum(1).min())
    mean_tol = f32_sum_tol(50, x_max) + 50 * resp_tol * x_max / r_min
    for t in range(3):
        one = th.GaussianMixture(means[t], float(mix.variance[t]), mix.weights[t])
        r1, l1 = th.e_step(x[t], one)
        torch.testing.assert_close(resp[t], r1, atol=resp_tol, rtol=0)
        torch.testing.assert_close(ll[t], l1, atol=f32_sum_tol(6 + 50, scale), rtol=0)
        torch.testing.assert_close(th.m_step(x[t], r1).means, new.means[t], atol=mean_tol,
                                   rtol=0)


def test_same_seed_same_numbers():
    problem = th.make_problem(dim=8, num_components=3)
    a = th.fit_em(problem.sample(200, 2, seed=4)[0], 3, seed=9).mixture.means
    b = th.fit_em(problem.sample(200, 2, seed=4)[0], 3, seed=9).mixture.means
    assert torch.equal(a, b)


# ----------------------------------------------------------------------------------------------
# ERM and risk
# ----------------------------------------------------------------------------------------------
def test_fit_logistic_reaches_a_stationary_point_of_the_penalised_objective():
    problem = th.make_problem(dim=6, num_components=3, separation=2.0)
    x, y = problem.sample(80, trials=2, seed=1)
    model = th.fit_logistic(x, y, 3, l2=0.5)
    # The gradient is evaluated in float64, so its own round-off (~1e-12) cannot hide a
    # non-stationary point; 1e-3 is far above what a float32 solution can be off by.
    w = torch.cat([model.weight, model.bias[:, None]], 1).detach().double().requires_grad_(True)
    f1 = torch.cat([x, torch.ones(2, 80, 1)], -1).double()
    obj = torch.nn.functional.cross_entropy((f1 @ w).reshape(-1, 3), y.reshape(-1),
                                            reduction="sum") + 0.25 * w.square().sum()
    (grad,) = torch.autograd.grad(obj, w)
    assert float(grad.abs().max()) < 1e-3


def test_vote_head_gives_each_component_its_majority_class():
    post = torch.tensor([[1.0, 0, 0], [1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1]])
    labels = torch.tensor([1, 1, 0, 0, 1, 1])
    head = th.fit_vote_head(post, labels, 2)
    torch.testing.assert_close(head.table, torch.tensor([[0.0, 1], [1, 0], [0, 1]]))
    torch.testing.assert_close(head.predict_proba(torch.tensor([[0.2, 0.8, 0.0]])),
                               torch.tensor([[0.8, 0.2]]))


def test_supervised_erm_is_the_penalised_logistic_regression_on_raw_x():
    problem = th.make_problem(dim=6, num_components=3, separation=2.0)
    x, y = problem.sample(40, trials=2, seed=5)
    sup, ref = th.supervised_erm(x, y, 3, l2=2.0), th.fit_logistic(x, y, 3, l2=2.0)
    torch.testing.assert_close(sup.weight, ref.weight)
    strong = th.supervised_erm(x, y, 3, l2=200.0)
    assert float(strong.weight.norm()) < 0.5 * float(sup.weight.norm())


def test_vote_head_pipeline_names_well_separated_clumps_from_a_few_labels():
    problem = th.make_problem(dim=5, num_components=3, separation=6.0)
    x_u, _ = problem.sample(600, trials=2, seed=0)
    x_l, y_l = problem.sample(12, trials=2, seed=1)
    x_t, _ = problem.sample(4000, seed=2)
    clf = th.pretrain_then_erm(x_u, x_l, y_l, 3, 3, head="vote")
    assert isinstance(clf.head, th.VoteHead)
    excess = th.excess_risk(problem.bayes_proba(x_t[0]), clf.predict_proba(x_t[0]))
    assert float(excess.max()) < 0.01


def test_excess_risk_and_bayes_risk_by_hand():
    p_true = torch.tensor([[0.7, 0.3], [0.4, 0.6]])
    p_pred = torch.tensor([[0.9, 0.1], [0.8, 0.2]])  # predicts class 0 twice
    assert float(th.excess_risk(p_true, p_pred)) == pytest.approx(0.1)  # (0 + 0.2) / 2
    assert float(th.bayes_risk(p_true)) == pytest.approx(0.35)
    kl = 0.5 * (0.7 * math.log(0.7 / 0.9) + 0.3 * math.log(0.3 / 0.1)
                + 0.4 * math.log(0.4 / 0.8) + 0.6 * math.log(0.6 / 0.2))
    assert float(th.excess_risk(p_true, p_pred, loss="log")) == pytest.approx(kl, rel=1e-5)
    assert float(th.excess_risk(p_true, p_true)) == 0.0


def test_bayes_posterior_of_the_latent_task_is_the_two_component_sigmoid():
    problem = th.make_problem(dim=4, num_components=2, separation=2.0)
    x, _ = problem.sample(10, seed=0)
    mu = problem.mixture.means
    logit = x[0] @ (mu[1] - mu[0]) - 0.5 * (mu[1].square().sum() - mu[0].square().sum())
    torch.testing.assert_close(problem.bayes_proba(x[0])[:, 1], torch.sigmoid(logit))


def test_pretraining_beats_supervised_erm_at_small_n_and_large_m():
    problem = th.make_problem(dim=20, num_components=3, separation=3.5)
    frame = th.excess_risk_curves(problem, ms=[30, 3000], ns=[10], trials=10, test_size=5000,
                                  l2=10.0, seed=0)
    med = frame.groupby(["method", "m"]).excess_risk.median()
    assert med[("pretrain", 3000)] < med[("supervised", 0)] / 3
    assert med[("pretrain", 3000)] < med[("pretrain", 30)] / 3  # the gain comes from m
    assert 0 < frame.attrs["bayes_risk"] < 0.2


def test_uninformative_latent_model_gives_no_advantage():
    problem = th.make_problem(dim=10, num_components=3, separation=3.5, task="orthogonal")
    frame = th.excess_risk_curves(problem, ms=[2000], ns=[30, 300], trials=6, test_size=5000,
                                  l2=10.0)
    med = frame.groupby(["method", "n"]).excess_risk.median()
    for n in (30, 300):
        assert med[("pretrain", n)] > med[("supervised", n)]


def test_fit_rate_constants_recovers_known_shapes():
    rows = [{"method": "pretrain", "m": m, "n": n, "trial": 0,
             "excess_risk": 2.0 / m ** 0.8 + 0.5 / n ** 0.8}
            for m in (300, 3000, 30000) for n in (10, 100, 1000)]
    rows += [{"method": "supervised", "m": 0, "n": n, "trial": 0, "excess_risk": 7.0 / n ** 0.8}
             for n in (10, 100, 1000)]
    fit = th.fit_rate_constants(pd.DataFrame(rows), gammas=[0.6, 0.7, 0.8, 0.9])
    assert fit["gamma"] == pytest.approx(0.8)
    assert fit["a"] == pytest.approx(2.0, rel=1e-6)
    assert fit["b"] == pytest.approx(0.5, rel=1e-6)
    assert fit["c"] == pytest.approx(7.0, rel=1e-6)


# ----------------------------------------------------------------------------------------------
# Deep linear networks
# ----------------------------------------------------------------------------------------------
def test_deep_linear_network_follows_the_closed_form_sigmoids():
    s = [3.0, 2.0, 1.0]
    out = th.deep_linear_dynamics(s, lr=0.005, steps=1600, init_scale=1e-3)
    closed = th.mode_strength_closed_form(torch.tensor(s), 1e-3, out["time"][:, None])
    assert float((out["strength"] - closed).abs().max()) < 0.05
    torch.testing.assert_close(out["strength"][-1], torch.tensor(s, dtype=torch.float64),
                               atol=1e-3, rtol=0)
    # each mode is half learned at ln(s/u0 - 1) / (2s): stronger modes first
    half = [float(out["time"][(out["strength"][:, i] >= s[i] / 2).nonzero()[0, 0]])
            for i in range(3)]
    assert half[0] < half[1] < half[2]
    for h, si in zip(half, s, strict=True):
        assert h == pytest.approx(math.log(si / 1e-3 - 1) / (2 * si), rel=0.05)


def test_closed_form_starts_at_u0_and_saturates_at_s():
    u = th.mode_strength_closed_form(2.0, 0.01, torch.tensor([0.0, 50.0]))
    torch.testing.assert_close(u, torch.tensor([0.01, 2.0], dtype=torch.float64))


# ----------------------------------------------------------------------------------------------
# Bad arguments name the parameter
# ----------------------------------------------------------------------------------------------
def test_invalid_arguments_raise_value_errors_naming_the_parameter():
    problem = th.make_problem(dim=6, num_components=3)
    x, y = problem.sample(20, trials=1)
    with pytest.raises(ValueError, match="m=2"):
        th.fit_em(x[0, :2], 3)
    with pytest.raises(ValueError, match="m=2"):
        th.pretrain_then_erm(x[0, :2], x[0], y[0], 3, 3)
    with pytest.raises(ValueError, match="m=2"):
        th.excess_risk_curves(problem, ms=[2], ns=[5], trials=1, test_size=10)
    with pytest.raises(ValueError, match="n=0"):
        th.pretrain_then_erm(x[0], x[0, :0], y[0, :0], 3, 3)
    with pytest.raises(ValueError, match="n=0"):
        th.supervised_erm(x[:, :0], y[:, :0], 3)
    with pytest.raises(ValueError, match="n=0"):
        th.excess_risk_curves(problem, ms=[10], ns=[0], trials=1, test_size=10)
    with pytest.raises(ValueError, match="variance=-1"):
        th.GaussianMixture(torch.zeros(2, 3), -1.0, torch.full((2,), 0.5))
    with pytest.raises(ValueError, match="variance"):
        th.GaussianMixture(torch.zeros(2, 3), torch.tensor([1.0, float("nan")]),
                           torch.full((2, 2), 0.5))
    with pytest.raises(ValueError, match="variance=0"):
        th.make_problem(variance=0.0)
    with pytest.raises(ValueError, match="task='labels'"):
        th.make_problem(task="labels")
    with pytest.raises(ValueError, match="dim=3"):
        th.make_problem(dim=3, num_components=3)
    with pytest.raises(ValueError, match="head='knn'"):
        th.pretrain_then_erm(x[0], x[0], y[0], 3, 3, head="knn")
    with pytest.raises(ValueError, match="l2=-1"):
        th.fit_logistic(x, y, 3, l2=-1.0)
    with pytest.raises(ValueError, match="loss='hinge'"):
        th.excess_risk(torch.ones(1, 2) / 2, torch.ones(1, 2) / 2, loss="hinge")
    with pytest.raises(ValueError, match="lr=0"):
        th.deep_linear_dynamics([1.0], lr=0.0)
    with pytest.raises(ValueError, match="singular_values=-1"):
        th.deep_linear_dynamics([2.0, -1.0])
