"""Exercise 01 (why unlabeled data helps): its public checks, its notebooks and its grading.

* ``checks.e_step``, ``checks.m_step`` and ``checks.pretrain_then_erm`` pass correct answers (the
  solution's and independent formulations) and fail deliberately wrong ones, naming the case and
  saying what differs, with a hint;
* the generated exercise, executed unsolved, raises only ``NotImplementedError``; the solution
  executes without error (public and hidden tests pass) and is stored executed, in order;
* one ``sslkit.grade`` run on a folder of submissions built from the exercise (the solution's
  answers, other correct formulations, and two wrong answers for each of the three parts) gives
  full points to the correct ones and takes the points of exactly the cell whose answer is wrong.

The wrong answers are source strings: the same text is ``exec``-ed for the checks and pasted
into the answer cells of the submissions.
"""

from __future__ import annotations

import math

import pytest
import torch
from notebook_helpers import (
    Exercise,
    assert_passed,
    by_id,
    expected_grades,
    failed_at,
    graded_errors,
    passed,
)

from sslkit import checks, theory
from sslkit.checks import CheckFailed
from sslkit.checks.ex01_theory import (
    _compare_e_step,
    _compare_m_step,
    _e_cases,
    _mixture_copy,
    _variance_diagnosis,
)

EX = Exercise("01_why_unlabeled_data_helps", {"torch": torch, "math": math, "theory": theory})
NAME = EX.name
ANSWERS = ("e_step_solution", "m_step_solution", "pipeline_solution")


# ---------------------------------------------------------------------------- answers
E_HEAD = "def e_step(x, mixture):\n"
E_LOG_JOINT = """\
    var = mixture.variance
    sq = (x[:, None, :] - mixture.means[None, :, :]).square().sum(-1)
    log_joint = (mixture.weights.log() - sq / (2 * var)
                 - 0.5 * x.shape[1] * torch.log(2 * math.pi * var))
"""
E_SOFTMAX = E_HEAD + """\
    # an independent formulation: cdist, a softmax for Bayes' rule, logsumexp for log p(x)
    d = x.shape[-1]
    sq = torch.cdist(x, mixture.means) ** 2
    log_joint = (torch.log(mixture.weights)[None, :] - sq / (2 * mixture.variance)
                 - d / 2 * math.log(2 * math.pi) - d / 2 * torch.log(mixture.variance))
    return torch.softmax(log_joint, dim=1), torch.logsumexp(log_joint, dim=1).mean()
"""
E_NO_NORMALISATION = E_HEAD + E_LOG_JOINT + """\
    log_px = torch.logsumexp(log_joint, dim=-1)
    return log_joint.exp(), log_px.mean()
"""
E_UNSTABLE = E_HEAD + E_LOG_JOINT + """\
    joint = log_joint.exp()
    return joint / joint.sum(-1, keepdim=True), joint.sum(-1).log().mean()
"""
E_UNSTABLE_LIKELIHOOD = E_HEAD + E_LOG_JOINT + """\
    return torch.softmax(log_joint, dim=-1), log_joint.exp().sum(-1).log().mean()
"""
E_OVER_POINTS = E_HEAD + E_LOG_JOINT + """\
    log_px = torch.logsumexp(log_joint, dim=0, keepdim=True)
    return (log_joint - log_px).exp(), torch.logsumexp(log_joint, dim=-1).mean()
"""
E_NO_WEIGHTS = E_HEAD + """\
    var = mixture.variance
    sq = (x[:, None, :] - mixture.means[None, :, :]).square().sum(-1)
    log_joint = -sq / (2 * var) - 0.5 * x.shape[1] * torch.log(2 * math.pi * var)
    log_px = torch.logsumexp(log_joint, dim=-1)
    return (log_joint - log_px[:, None]).exp(), log_px.mean()
"""

M_HEAD = "def m_step(x, resp, *, min_variance=1e-6):\n"
M_MEANS = """\
    n, d = x.shape
    nk = resp.sum(0)
    means = resp.T @ x / nk[:, None]
    sq = (x[:, None, :] - means[None, :, :]).square().sum(-1)
"""
M_EINSUM = M_HEAD + """\
    # an independent formulation: einsum, x.numel() = N·d, torch.clamp
    nk = resp.sum(dim=0)
    means = torch.einsum("nk,nd->kd", resp, x) / nk.unsqueeze(1)
    diff = x.unsqueeze(1) - means.unsqueeze(0)
    variance = torch.einsum("nk,nkd->", resp, diff * diff) / x.numel()
    return theory.GaussianMixture(means, torch.clamp(variance, min=min_variance), nk / len(x))
"""
M_OFF_BY_ONE = M_HEAD + M_MEANS + """\
    variance = ((resp * sq).sum() / ((n - 1) * d)).clamp_min(min_variance)
    return theory.GaussianMixture(means, variance, nk / n)
"""
M_NO_D = M_HEAD + M_MEANS + """\
    variance = ((resp * sq).sum() / n).clamp_min(min_variance)
    return theory.GaussianMixture(means, variance, nk / n)
"""
M_UNWEIGHTED_MEANS = M_HEAD + """\
    n, d = x.shape
    nk = resp.sum(0)
    z = resp.argmax(1)  # each point counts fully for its most likely component only
    means = torch.stack([x[z == k].mean(0) for k in range(resp.shape[1])])
    sq = (x[:, None, :] - means[None, :, :]).square().sum(-1)
    variance = ((resp * sq).sum() / (n * d)).clamp_min(min_variance)
    return theory.GaussianMixture(means, variance, nk / n)
"""
M_NO_CLAMP = M_HEAD + M_MEANS + """\
    return theory.GaussianMixture(means, (resp * sq).sum() / (n * d), nk / n)
"""

P_HEAD = """\
def pretrain_then_erm(x_unlabeled, x_labeled, y_labeled, num_components, num_classes, *,
                      head="logistic", l2=1.0, em_iters=100, n_init=2, seed=0, mixture=None):
"""
P_FIT = """\
    if mixture is None:
        mixture = theory.fit_em(x_unlabeled, num_components, iters=em_iters, n_init=n_init,
                                seed=seed).mixture
"""
P_LOG_JOINT = P_HEAD + P_FIT + """\
    # an independent formulation: the centred log-joint equals the centred log-posterior
    if head == "vote":
        post = theory.log_posterior(x_labeled, mixture).exp()
        return theory.PretrainedClassifier(mixture, theory.fit_vote_head(post, y_labeled,
                                                                         num_classes))
    lj = theory.log_joint(x_labeled, mixture)
    features = lj - lj.mean(dim=-1, keepdim=True)
    psi = theory.fit_logistic(features, y_labeled, num_classes, l2=l2)
    return theory.PretrainedClassifier(mixture=mixture, head=psi)
"""
P_FEATURES = """\
    lp = theory.log_posterior(x_labeled, mixture)
    if head == "vote":
        psi = theory.fit_vote_head(lp.exp(), y_labeled, num_classes)
    else:
        psi = theory.fit_logistic(lp - lp.mean(-1, keepdim=True), y_labeled, num_classes, l2=l2)
    return theory.PretrainedClassifier(mixture, psi)
"""
P_EM_ON_ALL = P_HEAD + """\
    if mixture is None:  # the labeled points join the unlabeled ones in EM
        mixture = theory.fit_em(torch.cat([x_unlabeled, x_labeled], -2), num_components,
                                iters=em_iters, n_init=n_init, seed=seed).mixture
""" + P_FEATURES
P_HEAD_ON_PROBABILITIES = P_HEAD + P_FIT + """\
    post = theory.log_posterior(x_labeled, mixture).exp()
    if head == "vote":
        psi = theory.fit_vote_head(post, y_labeled, num_classes)
    else:  # the head is fit on probabilities but will be fed centred log-probabilities
        psi = theory.fit_logistic(post, y_labeled, num_classes, l2=l2)
    return theory.PretrainedClassifier(mixture, psi)
"""
P_HEAD_ON_RAW_X = P_HEAD + P_FIT + """\
    psi = theory.supervised_erm(x_labeled, y_labeled, num_classes, l2=l2)
    return theory.PretrainedClassifier(mixture, psi)
"""
P_DEFAULT_EM = P_HEAD + """\
    if mixture is None:  # em_iters, n_init and seed are not passed on
        mixture = theory.fit_em(x_unlabeled, num_components).mixture
""" + P_FEATURES
P_COMPONENTS_AS_CLASSES = P_HEAD + P_FIT + P_FEATURES.replace("num_classes", "num_components")
P_ALWAYS_EM = P_HEAD + """\
    mixture = theory.fit_em(x_unlabeled, num_components, iters=em_iters, n_init=n_init,
                            seed=seed).mixture
""" + P_FEATURES


# ------------------------------------------------------------------------------- the checks
@pytest.mark.parametrize("check, source", [
    (checks.e_step, "e_step_solution"),
    (checks.e_step, E_SOFTMAX),
    (checks.e_step, theory.e_step),
    (checks.m_step, "m_step_solution"),
    (checks.m_step, M_EINSUM),
    (checks.m_step, theory.m_step),
    (checks.pretrain_then_erm, "pipeline_solution"),
    (checks.pretrain_then_erm, P_LOG_JOINT),
    (checks.pretrain_then_erm, theory.pretrain_then_erm),
], ids=["e_solution", "e_softmax", "e_library", "m_solution", "m_einsum", "m_library",
        "p_solution", "p_log_joint", "p_library"])
def test_correct_answers_pass_the_public_checks(check, source, capsys):
    check(EX.define(source, check.__name__))
    assert_passed(check, capsys.readouterr().out)


WRONG = [  # (check, source, the case that fails: number and name, words of the message)
    (checks.e_step, E_NO_NORMALISATION, 1, "returns (responsibilities",
     ["row 0 of the responsibilities sums to", "not 1", "Hint: divide"]),
    (checks.e_step, E_OVER_POINTS, 1, "returns (responsibilities",
     ["sums to", "over the components, dim=-1, not over the points"]),
    (checks.e_step, E_NO_WEIGHTS, 2, "random data",
     ["responsibilities: values differ at", "first at index (", "log w_k"]),
    (checks.e_step, E_UNSTABLE, 7, "points 700 and 1,000 away",
     ["responsibilities: got nan at index (3, 0)", "0 / 0 = nan", "torch.logsumexp"]),
    (checks.e_step, E_UNSTABLE_LIKELIHOOD, 7, "points 700 and 1,000 away",
     ["mean log-likelihood: got -inf", "torch.logsumexp"]),
    (checks.m_step, M_OFF_BY_ONE, 1, "soft responsibilities",
     ["variance: values differ", "you divided by (N − 1)·d = 33 instead of N·d = 36",
      "Hint: σ² ="]),
    (checks.m_step, M_NO_D, 1, "soft responsibilities",
     ["variance: values differ", "you divided by N = 12 (forgetting the d = 3 coordinates)"]),
    (checks.m_step, M_UNWEIGHTED_MEANS, 1, "soft responsibilities",
     ["means: values differ", "Hint: μ_k = Σ_i r_ik x_i / N_k"]),
    (checks.m_step, M_NO_CLAMP, 4, "a single point",
     ["variance: values differ", "expected 1e-06", "clamp_min(min_variance)"]),
    (checks.pretrain_then_erm, P_HEAD_ON_RAW_X, 1, "returns",
     ["the head's weight has shape (6, 3), expected (3, 3)", "a head fit on raw x has d rows"]),
    (checks.pretrain_then_erm, P_EM_ON_ALL, 2, "the mixture is",
     ["mixture.weights: values differ", "pretraining sees the unlabeled points only"]),
    (checks.pretrain_then_erm, P_HEAD_ON_PROBABILITIES, 3, "logistic head",
     ["p̂(y | x) on the test points: values differ", "the centred log-posterior"]),
    (checks.pretrain_then_erm, P_DEFAULT_EM, 4, "l2=0.1, em_iters",
     ["mixture.", "iters=em_iters, n_init=n_init"]),
    (checks.pretrain_then_erm, P_ALWAYS_EM, 6, "mixture= given", ["your code raised"]),
    (checks.pretrain_then_erm, P_COMPONENTS_AS_CLASSES, 9, "the uninformative twin",
     ["expected (3, 2)"]),
]


@pytest.mark.parametrize("check, source, i, case, words", WRONG, ids=[
    "e_no_normalisation", "e_over_points", "e_no_weights", "e_unstable",
    "e_unstable_likelihood", "m_off_by_one", "m_no_d", "m_unweighted_means", "m_no_clamp",
    "p_head_on_raw_x", "p_em_on_all", "p_head_on_probabilities", "p_default_em", "p_always_em",
    "p_components_as_classes"])
def test_wrong_answers_fail_naming_the_case_and_what_differs(check, source, i, case, words,
                                                             capsys):
    with pytest.raises(CheckFailed) as info:
        check(EX.define(source, check.__name__))
    msg = str(info.value)
    assert msg.startswith(failed_at(check, i, case)), msg
    for word in words:
        assert word in msg, (word, msg)
    assert "public checks passed" not in capsys.readouterr().out


@pytest.mark.parametrize("check, name", [(checks.e_step, "e_step"), (checks.m_step, "m_step"),
                                         (checks.pretrain_then_erm, "pretrain_then_erm")])
def test_a_stub_gives_only_the_friendly_not_implemented_error(check, name):
    def stub(*args, **kwargs):
        raise NotImplementedError("compute the log-joint")

    with pytest.raises(NotImplementedError) as info:
        check(stub)
    assert not isinstance(info.value, AssertionError)
    assert str(info.value) == f"{name}: not implemented yet: compute the log-joint"


def test_each_stability_case_on_its_own_defeats_an_e_step_without_logsumexp():
    """The far-away and the high-dimensional case each catch ``exp(ℓ) / Σ exp(ℓ)``; the other
    cases do not (so a naive E-step is correct wherever floating point allows)."""
    naive = EX.define(E_UNSTABLE, "e_step")
    for name, (args, _) in _e_cases().items():
        if "away from the centres" in name or "d=2,000" in name:
            with pytest.raises(CheckFailed, match="got nan"):
                _compare_e_step(naive, *args)
        else:
            _compare_e_step(naive, *args)


def test_the_far_away_points_have_a_decisive_component():
    """Far points give one-hot responsibilities with margins of hundreds, so float32 rounding
    of ||x − μ||² ~ 10⁶ (about 0.06) cannot change them."""
    args, _ = next(v for n, v in _e_cases().items() if "away from the centres" in n)
    x, mixture = args
    lj = theory.log_joint(x.double(), _mixture_copy(mixture, torch.float64))[3:]
    top2 = lj.topk(2, dim=-1).values
    assert float((top2[:, 0] - top2[:, 1]).min()) > 100


def test_the_variance_diagnosis_names_only_an_exact_wrong_denominator():
    assert "(N − 1)·d = 33" in _variance_diagnosis(4.0 * 36 / 33, 4.0, 12, 3)
    assert "N = 12" in _variance_diagnosis(4.0 * 3, 4.0, 12, 3)
    assert _variance_diagnosis(4.4, 4.0, 12, 3) == ""
    assert _variance_diagnosis(float("nan"), 4.0, 12, 3) == ""


def test_the_m_step_check_turns_a_rejected_zero_variance_into_a_hint():
    def zero_variance(x, resp, *, min_variance=1e-6):
        return theory.GaussianMixture(x[:1].expand(resp.shape[1], -1), 0.0,
                                      resp.sum(0) / len(x))

    with pytest.raises(CheckFailed) as info:
        _compare_m_step(zero_variance, torch.ones(1, 3), torch.tensor([[0.4, 0.6]]))
    assert "your code raised ValueError: variance=0.0 is invalid" in str(info.value)
    assert "clamp_min(min_variance)" in str(info.value)


def test_the_checks_notice_inputs_modified_in_place():
    def e_in_place(x, mixture):
        x -= 1.0
        return theory.e_step(x, mixture)

    def m_in_place(x, resp, *, min_variance=1e-6):
        resp /= resp.sum(0)
        return theory.m_step(x, resp, min_variance=min_variance)

    with pytest.raises(CheckFailed, match="modified x in place"):
        checks.e_step(e_in_place)
    with pytest.raises(CheckFailed, match="modified x or resp in place"):
        checks.m_step(m_in_place)


# ---------------------------------------------------------------------------- the notebooks
def test_the_unsolved_exercise_raises_only_not_implemented_error(tmp_path):
    nb, errors, checked = EX.run_unsolved(tmp_path)
    # the 1-d example, three public checks, three graded cells, "your EM" and the final plot
    assert len(errors) == 9, errors
    assert [e.split(":")[0] for e in checked] == ["e_step", "m_step", "pretrain_then_erm"]
    assert checked[0].startswith("e_step: not implemented yet: compute the responsibilities")
    assert by_id(nb, "payoff_answer").source == "YOUR ANSWER HERE"


def test_the_solution_passes_every_public_and_hidden_test(tmp_path):
    nb, outputs = EX.run_solution(tmp_path)
    for line in (passed(checks.e_step), passed(checks.m_step), passed(checks.pretrain_then_erm),
                 "p(clump 2 | x): [0.018, 0.1192, 0.8808, 0.982]",
                 "a point at x = 1000: [[0.0, 1.0]]"):
        assert line in outputs, line
    plot = next(c for c in nb.cells if c.source.startswith("MS, N_LABELS"))
    assert any("image/png" in o.get("data", {}) for o in plot.outputs)


def test_the_solution_is_stored_executed_in_order_without_errors():
    code = EX.check_stored_executed({"e_step_tests": 3, "m_step_tests": 3, "pipeline_tests": 2,
                                     "payoff_answer": 2})
    assert "torch.set_num_threads(1)" in code[0].source


# ---------------------------------------------------------------------------- grading
SUBMISSIONS = {  # learner → (e_step, m_step, pipeline) answers; None: the solution's answer
    "correct": (None, None, None),
    "correct_alternative": (E_SOFTMAX, M_EINSUM, P_LOG_JOINT),  # other formulations, also right
    "e_no_normalisation": (E_NO_NORMALISATION, None, None),
    "e_unstable": (E_UNSTABLE, None, None),
    "m_off_by_one": (None, M_OFF_BY_ONE, None),
    "m_unweighted_means": (None, M_UNWEIGHTED_MEANS, None),
    "p_em_on_all": (None, None, P_EM_ON_ALL),
    "p_head_on_probabilities": (None, None, P_HEAD_ON_PROBABILITIES),
}
CELLS = ("e_step_tests", "m_step_tests", "pipeline_tests")
POINTS = {"e_step_tests": 3, "m_step_tests": 3, "pipeline_tests": 2}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    return EX.grade(tmp_path_factory.mktemp("grading_01"), {
        learner: {**dict(zip(ANSWERS, answers, strict=True)),
                  "payoff_answer": "Around m = 50, once EM finds the clumps."}
        for learner, answers in SUBMISSIONS.items()})


def test_grading_gives_full_points_to_the_correct_answers_and_takes_the_wrong_cells(graded):
    status, rows, printed, _ = graded
    assert status == 0, printed
    assert rows[0] == ["learner", "exercise", "cell", "points", "max_points", "flags"]
    # a wrong answer also fails its own public check cell: flag "failed_check"; without the
    # normalisation the variance becomes NaN, which a later given cell rejects: "crashed"
    lost = {"e_": ("e_step_tests",), "m_": ("m_step_tests",), "p_": ("pipeline_tests",)}
    assert rows[1:] == expected_grades(NAME, SUBMISSIONS, POINTS, lost,
                                       crashed=("e_no_normalisation",)), printed


@pytest.mark.parametrize("learner, cell, error", [
    ("e_no_normalisation", "e_step_tests", "AssertionError: Tensor-likes are not close!"),
    ("e_unstable", "e_step_tests", "AssertionError: (tensor([[nan"),
    ("m_off_by_one", "m_step_tests", "AssertionError: 0.92"),
    ("m_unweighted_means", "m_step_tests", "AssertionError: Tensor-likes are not close!"),
    ("p_em_on_all", "pipeline_tests",
     "AssertionError: logistic head, mixture.weights: Tensor-likes are not close!"),
    ("p_head_on_probabilities", "pipeline_tests",
     "AssertionError: logistic head, predictions: Tensor-likes are not close!"),
])
def test_each_wrong_answer_fails_its_graded_cell_and_its_public_check(graded, learner, cell,
                                                                      error):
    check = {"e_step_tests": "e_step", "m_step_tests": "m_step",
             "pipeline_tests": "pretrain_then_erm"}[cell]
    got, check_errors = graded_errors(graded[3], learner, cell, check)
    assert got.startswith(error), got
    assert check_errors == ["CheckFailed"]
