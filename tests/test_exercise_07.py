"""Exercise 07 (VICReg's variance and covariance terms and the whole loss): its public checks,
notebooks and grading.

* ``checks.variance``, ``checks.covariance`` and ``checks.vicreg_loss`` pass correct answers
  (the solution's, independent formulations and the library's) and fail deliberately wrong ones
  (a hinge on the variance, the biased variance, ε outside the square root; a covariance that is
  not centred or keeps its diagonal; one view's terms only, an invariance summed over the
  dimensions), naming the case and the mistake;
* the generated exercise, executed unsolved, raises only ``NotImplementedError``; the solution
  executes without error (public and hidden tests pass) and is stored executed, in order;
* one ``sslkit.grade`` run on submissions built from the exercise gives full points to the
  correct answers and takes the points of exactly the cell whose answer is wrong: a wrong
  ``variance`` costs Part A only, because Part C's tests compare the loss with the learner's own
  terms.

The wrong answers are source strings: the same text is ``exec``-ed for the checks and pasted
into the answer cells of the submissions.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from notebook_helpers import (
    Exercise,
    assert_passed,
    expected_grades,
    failed_at,
    graded_errors,
    passed,
)

from sslkit import checks, losses
from sslkit.checks import CheckFailed

EX = Exercise("07_redundancy_reduction", {"torch": torch, "F": F})
NAME = EX.name
ANSWERS = ("variance_solution", "covariance_solution", "loss_solution")

# ---------------------------------------------------------------------------- answers
V_LOOPS = """\
def variance(z, gamma=1.0, eps=1e-4):
    # an independent formulation: one dimension at a time, the unbiased variance written out
    terms = []
    for j in range(z.shape[1]):
        col = z[:, j]
        var = ((col - col.mean()) ** 2).sum() / (len(col) - 1)
        terms.append(torch.clamp(gamma - torch.sqrt(var + eps), min=0.0))
    return torch.stack(terms).mean()
"""
V_ON_VARIANCE = """\
def variance(z, gamma=1.0, eps=1e-4):
    return F.relu(gamma - z.var(dim=0)).mean()
"""
V_BIASED = """\
def variance(z, gamma=1.0, eps=1e-4):
    return F.relu(gamma - torch.sqrt(z.var(dim=0, unbiased=False) + eps)).mean()
"""
V_EPS_OUTSIDE = """\
def variance(z, gamma=1.0, eps=1e-4):
    return F.relu(gamma - (z.var(dim=0).sqrt() + eps)).mean()
"""
C_EINSUM = """\
def covariance(z):
    # an independent formulation: the covariance by einsum, the diagonal removed by a mask
    b, d = z.shape
    zc = z - z.mean(0, keepdim=True)
    cov = torch.einsum("bi,bj->ij", zc, zc) / (b - 1)
    mask = 1.0 - torch.eye(d, dtype=z.dtype)
    return (cov * mask).pow(2).sum() / d
"""
C_NOT_CENTRED = """\
def covariance(z):
    b, d = z.shape
    cov = z.T @ z / (b - 1)
    return (cov - torch.diag(cov.diagonal())).pow(2).sum() / d
"""
C_DIAGONAL = """\
def covariance(z):
    b, d = z.shape
    zc = z - z.mean(0)
    return (zc.T @ zc / (b - 1)).pow(2).sum() / d
"""
L_RIGHT = """\
def vicreg_loss(z1, z2, sim_weight=25.0, var_weight=25.0, cov_weight=1.0):
    invariance = ((z1 - z2) ** 2).mean()
    return (sim_weight * invariance + var_weight * (variance(z1) + variance(z2))
            + cov_weight * (covariance(z1) + covariance(z2)))
"""
L_ONE_VIEW = """\
def vicreg_loss(z1, z2, sim_weight=25.0, var_weight=25.0, cov_weight=1.0):
    return (sim_weight * F.mse_loss(z1, z2) + var_weight * 2 * variance(z1)
            + cov_weight * 2 * covariance(z1))
"""
L_SUMMED = """\
def vicreg_loss(z1, z2, sim_weight=25.0, var_weight=25.0, cov_weight=1.0):
    return (sim_weight * (z1 - z2).pow(2).sum(1).mean()
            + var_weight * (variance(z1) + variance(z2))
            + cov_weight * (covariance(z1) + covariance(z2)))
"""
# the library's terms stand in for the learner's in the checks of the loss alone
TERMS = "variance = losses.variance\ncovariance = losses.covariance\n"


def _loss(source):
    return EX.define(source, "vicreg_loss", context="from sslkit import losses\n" + TERMS)


# ---------------------------------------------------------------------------- the checks
@pytest.mark.parametrize("check, fn", [
    (checks.variance, lambda: EX.define("variance_solution", "variance")),
    (checks.variance, lambda: EX.define(V_LOOPS, "variance")),
    (checks.variance, lambda: losses.variance),
    (checks.covariance, lambda: EX.define("covariance_solution", "covariance")),
    (checks.covariance, lambda: EX.define(C_EINSUM, "covariance")),
    (checks.covariance, lambda: losses.covariance),
    (checks.vicreg_loss, lambda: _loss("loss_solution")),
    (checks.vicreg_loss, lambda: _loss(L_RIGHT)),
    (checks.vicreg_loss, lambda: losses.vicreg_loss),
], ids=["v_solution", "v_loops", "v_library", "c_solution", "c_einsum", "c_library",
        "l_solution", "l_written", "l_library"])
def test_correct_answers_pass_the_public_checks(check, fn, capsys):
    check(fn())
    assert_passed(check, capsys.readouterr().out)


WRONG = [  # (check, function, the case that fails: number and name, words of the message)
    (checks.variance, lambda: EX.define(V_ON_VARIANCE, "variance"), 1,
     "B=16, D=8, every std below γ = 1", ["variance term: values differ",
                                          "your hinge is on the variance"]),
    (checks.variance, lambda: EX.define(V_BIASED, "variance"), 1,
     "B=16, D=8, every std below γ = 1", ["biased variance", "B − 1"]),
    (checks.variance, lambda: EX.define(V_EPS_OUTSIDE, "variance"), 3,
     "a collapsed batch (every row the same)", ["got 0.9999, expected 0.99",
                                                "ε goes inside the square root"]),
    (checks.covariance, lambda: EX.define(C_NOT_CENTRED, "covariance"), 1,
     "B=16, D=6, correlated dimensions", ["not centred"]),
    (checks.covariance, lambda: EX.define(C_DIAGONAL, "covariance"), 1,
     "B=16, D=6, correlated dimensions", ["you kept the diagonal"]),
    (checks.vicreg_loss, lambda: _loss(L_ONE_VIEW), 1, "the paper's weights λ = μ = 25, ν = 1",
     ["computed for each view and added"]),
    (checks.vicreg_loss, lambda: _loss(L_SUMMED), 1, "the paper's weights λ = μ = 25, ν = 1",
     ["your invariance sums over the dimensions", "F.mse_loss"]),
]


@pytest.mark.parametrize("check, fn, i, case, words", WRONG, ids=[
    "v_on_variance", "v_biased", "v_eps_outside", "c_not_centred", "c_diagonal", "l_one_view",
    "l_summed"])
def test_wrong_answers_fail_naming_the_case_and_the_mistake(check, fn, i, case, words, capsys):
    with pytest.raises(CheckFailed) as info:
        check(fn())
    msg = str(info.value)
    assert msg.startswith(failed_at(check, i, case)), msg
    for word in words:
        assert word in msg, (word, msg)
    assert "public checks passed" not in capsys.readouterr().out


@pytest.mark.parametrize("check", [checks.variance, checks.covariance, checks.vicreg_loss])
def test_a_stub_gives_only_the_friendly_not_implemented_error(check):
    def stub(*args):
        raise NotImplementedError("write it")

    with pytest.raises(NotImplementedError) as info:
        check(stub)
    assert not isinstance(info.value, AssertionError)
    assert str(info.value) == f"{check.__name__}: not implemented yet: write it"


def test_the_collapsed_case_tells_the_eps_mistakes_apart():
    """In the collapsed case, ε inside the root (the reference), outside it and forgotten give
    three different values, each further than the check's tolerance from the others."""
    z = torch.ones(10, 5)
    values = [float(EX.define(src, "variance")(z)) for src in (
        "variance_solution", V_EPS_OUTSIDE,
        V_EPS_OUTSIDE.replace("z.var(dim=0).sqrt() + eps", "z.var(dim=0).sqrt()"))]
    assert values == pytest.approx([0.99, 0.9999, 1.0], abs=1e-6)


# ---------------------------------------------------------------------------- the notebooks
def test_the_unsolved_exercise_raises_only_not_implemented_error(tmp_path):
    nb, errors, checked = EX.run_unsolved(tmp_path)
    # each part's example (A and B), public check and graded cell, Part C's check and graded
    # cell, and Part D's run with your loss
    assert len(errors) == 9, errors
    assert [e.split(":")[0] for e in checked] == ["variance", "covariance", "vicreg_loss"]


def test_the_solution_passes_every_public_and_hidden_test(tmp_path):
    _, outputs = EX.run_solution(tmp_path)
    for line in (passed(checks.variance), passed(checks.covariance), passed(checks.vicreg_loss),
                 "std 0.5 (narrow)         variance term 0.50",
                 "collapsed to one point   variance term 0.99",
                 "largest loss difference over 100 steps: "):
        assert line in outputs, line
    gap = float(outputs.split("largest loss difference over 100 steps: ")[1].split()[0])
    assert gap < 1e-3, gap


def test_the_solution_is_stored_executed_in_order_without_errors():
    code = EX.check_stored_executed({"variance_tests": 2, "covariance_tests": 2,
                                     "loss_tests": 2})
    assert "torch.set_num_threads(1)" in code[0].source


# ---------------------------------------------------------------------------- grading
SUBMISSIONS = {  # learner → (variance, covariance, loss) answers; None: the solution's answer
    "correct": (None, None, None),
    "correct_alternative": (V_LOOPS, C_EINSUM, L_RIGHT),  # other formulations, also right
    "v_biased": (V_BIASED, None, None),
    "c_not_centred": (None, C_NOT_CENTRED, None),
    "l_one_view": (None, None, L_ONE_VIEW),
    "unsolved": (),  # the generated exercise as it is: every stub left in place
}
CELLS = ("variance_tests", "covariance_tests", "loss_tests")
POINTS = {"variance_tests": 2, "covariance_tests": 2, "loss_tests": 2}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    return EX.grade(tmp_path_factory.mktemp("grading_07"), {
        learner: dict(zip(ANSWERS, answers, strict=False))
        for learner, answers in SUBMISSIONS.items()})


def test_grading_gives_full_points_to_the_correct_answers_and_takes_the_wrong_cells(graded):
    status, rows, printed, _ = graded
    assert status == 0, printed
    assert rows[0] == ["learner", "exercise", "cell", "points", "max_points", "flags"]
    lost = {"v_": ("variance_tests",), "c_": ("covariance_tests",), "l_": ("loss_tests",),
            "un": CELLS}
    assert rows[1:] == expected_grades(NAME, SUBMISSIONS, POINTS, lost), printed


@pytest.mark.parametrize("learner, cell, error", [
    ("v_biased", "variance_tests", "AssertionError: (tensor(0.50"),
    ("c_not_centred", "covariance_tests", "AssertionError: "),
    ("l_one_view", "loss_tests", "AssertionError: "),
])
def test_each_wrong_answer_fails_its_graded_cell_and_its_public_check(graded, learner, cell,
                                                                      error):
    check = {"variance_tests": "variance", "covariance_tests": "covariance",
             "loss_tests": "vicreg_loss"}[cell]
    got, check_errors = graded_errors(graded[3], learner, cell, check)
    assert got.startswith(error), got
    assert "CheckFailed" in check_errors, check_errors
