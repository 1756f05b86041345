"""Exercise 05 (Sinkhorn-Knopp codes and clustering accuracy): its public checks, notebooks and
grading.

* ``checks.sinkhorn_knopp`` and ``checks.cluster_accuracy`` pass correct answers (the
  solution's, independent formulations and the library's) and fail deliberately wrong ones
  (rows normalised only, rows before columns, ``ε`` forgotten, a naive ``exp`` that overflows,
  codes that require grad, a transposed output, no argument checks; the plain accuracy, the
  greedy map, the minimised matching, a square table, a tensor instead of a float), naming the
  case and the mistake;
* the generated exercise, executed unsolved, raises only ``NotImplementedError``; the solution
  executes without error (public and hidden tests pass) and is stored executed, in order;
* one ``sslkit.grade`` run on submissions built from the exercise gives full points to the
  correct answers and takes the points of exactly the cell whose answer is wrong.

The wrong answers are source strings: the same text is ``exec``-ed for the checks and pasted
into the answer cells of the submissions.
"""

from __future__ import annotations

import pytest
import torch
from notebook_helpers import (
    Exercise,
    assert_passed,
    expected_grades,
    failed_at,
    graded_errors,
    passed,
)
from scipy.optimize import linear_sum_assignment

from sslkit import checks, cluster
from sslkit.checks import CheckFailed

EX = Exercise("05_clustering", {"torch": torch, "linear_sum_assignment": linear_sum_assignment})
NAME = EX.name
ANSWERS = ("sinkhorn_solution", "accuracy_solution")


# ---------------------------------------------------------------------------- answers
S_HEAD = """\
def sinkhorn_knopp(scores, epsilon, iters):
    if not isinstance(scores, torch.Tensor) or scores.ndim != 2 or epsilon <= 0 or iters < 1:
        raise ValueError("bad arguments")
"""
S_ALTERNATING = S_HEAD + """\
    # an independent formulation: the authors' code, on the transpose, with a max-shift
    q = torch.exp((scores.detach() - scores.detach().max()) / epsilon).T   # (K, B)
    k, b = q.shape
    for _ in range(iters):
        q = q / q.sum(1, keepdim=True) / k     # every prototype holds 1/K
        q = q / q.sum(0, keepdim=True) / b     # every sample holds 1/B
    return (q * b).T
"""
S_ROWS_ONLY = S_HEAD + """\
    return torch.softmax(scores.detach() / epsilon, dim=1)
"""
S_ROWS_FIRST = S_HEAD + """\
    log_q = scores.detach() / epsilon
    for _ in range(iters):
        log_q = log_q - log_q.logsumexp(dim=1, keepdim=True)
        log_q = log_q - log_q.logsumexp(dim=0, keepdim=True)
    return log_q.exp()
"""
S_NO_EPSILON = S_HEAD + """\
    log_q = scores.detach()
    for _ in range(iters):
        log_q = log_q - log_q.logsumexp(dim=0, keepdim=True)
        log_q = log_q - log_q.logsumexp(dim=1, keepdim=True)
    return log_q.exp()
"""
S_NAIVE_EXP = S_HEAD + """\
    q = torch.exp(scores.detach() / epsilon)
    for _ in range(iters):
        q = q / q.sum(0, keepdim=True)
        q = q / q.sum(1, keepdim=True)
    return q
"""
S_GRAD = S_HEAD + """\
    log_q = scores / epsilon
    for _ in range(iters):
        log_q = log_q - log_q.logsumexp(dim=0, keepdim=True)
        log_q = log_q - log_q.logsumexp(dim=1, keepdim=True)
    return log_q.exp()
"""
S_TRANSPOSED = S_HEAD + """\
    log_q = scores.detach().T / epsilon          # (K, B), as the authors' code
    for _ in range(iters):
        log_q = log_q - log_q.logsumexp(dim=1, keepdim=True)
        log_q = log_q - log_q.logsumexp(dim=0, keepdim=True)
    return log_q.exp()
"""
S_NO_CHECKS = """\
def sinkhorn_knopp(scores, epsilon, iters):
    log_q = scores.detach() / epsilon
    for _ in range(iters):
        log_q = log_q - log_q.logsumexp(dim=0, keepdim=True)
        log_q = log_q - log_q.logsumexp(dim=1, keepdim=True)
    return log_q.exp()
"""

A_HEAD = """\
def cluster_accuracy(pred, labels):
    if len(pred) != len(labels) or len(pred) == 0:
        raise ValueError("bad inputs")
"""
A_NUMPY = A_HEAD + """\
    # an independent formulation: numpy's unique and add.at, the Hungarian method on -table
    import numpy as np
    ks, p = np.unique(np.asarray(pred), return_inverse=True)
    cs, c = np.unique(np.asarray(labels), return_inverse=True)
    table = np.zeros((len(ks), len(cs)))
    np.add.at(table, (p, c), 1)
    rows, cols = linear_sum_assignment(-table)
    return float(table[rows, cols].sum() / len(p))
"""
A_TABLE = A_HEAD + """\
    _, p = torch.unique(pred, return_inverse=True)
    _, c = torch.unique(labels, return_inverse=True)
    table = torch.zeros(int(p.max()) + 1, int(c.max()) + 1)
    table.index_put_((p, c), torch.ones(len(p)), accumulate=True)
"""
A_PLAIN = A_HEAD + """\
    return (pred == labels).float().mean().item()
"""
A_GREEDY = A_TABLE + """\
    return float(table.max(1).values.sum()) / len(pred)
"""
A_MINIMISE = A_TABLE + """\
    rows, cols = linear_sum_assignment(table.numpy())
    return float(table[rows, cols].sum()) / len(pred)
"""
A_SQUARE = A_HEAD + """\
    c = int(labels.max()) + 1                    # as many clusters as classes
    table = torch.zeros(c, c)
    table.index_put_((pred, labels), torch.ones(len(pred)), accumulate=True)
    rows, cols = linear_sum_assignment(table.numpy(), maximize=True)
    return float(table[rows, cols].sum()) / len(pred)
"""
A_TENSOR = A_TABLE + """\
    rows, cols = linear_sum_assignment(table.numpy(), maximize=True)
    return table[rows, cols].sum() / len(pred)
"""


# ------------------------------------------------------------------------------- the checks
@pytest.mark.parametrize("check, source", [
    (checks.sinkhorn_knopp, "sinkhorn_solution"),
    (checks.sinkhorn_knopp, S_ALTERNATING),
    (checks.sinkhorn_knopp, cluster.sinkhorn_knopp),
    (checks.cluster_accuracy, "accuracy_solution"),
    (checks.cluster_accuracy, A_NUMPY),
    (checks.cluster_accuracy, cluster.cluster_accuracy),
], ids=["s_solution", "s_alternating", "s_library", "a_solution", "a_numpy", "a_library"])
def test_correct_answers_pass_the_public_checks(check, source, capsys):
    check(EX.define(source, check.__name__))
    assert_passed(check, capsys.readouterr().out)


WRONG = [  # (check, source, the case that fails: number and name, words of the message)
    (checks.sinkhorn_knopp, S_ROWS_ONLY, 1, "cosine scores (16, 8)",
     ["codes: values differ", "you normalised the rows only", "equipartition"]),
    (checks.sinkhorn_knopp, S_ROWS_FIRST, 1, "cosine scores (16, 8)",
     ["you rescale the rows first and the columns last", "do not sum to 1"]),
    (checks.sinkhorn_knopp, S_NO_EPSILON, 1, "cosine scores (16, 8)",
     ["your codes are those of ε = 1", "divide the scores by ε"]),
    (checks.sinkhorn_knopp, S_NAIVE_EXP, 6, "ε=0.01",
     ["NaN", "overflows float32", "log domain"]),
    (checks.sinkhorn_knopp, S_GRAD, 8, "scores that require grad",
     ["your codes require grad", "scores.detach()"]),
    (checks.sinkhorn_knopp, S_TRANSPOSED, 1, "cosine scores (16, 8)",
     ["shape (8, 16) differs from the expected (16, 8)", "(B, K) = (16, 8)",
      "transpose back"]),
    (checks.sinkhorn_knopp, S_NO_CHECKS, 10, "ε ≤ 0",
     ["epsilon=0: no ValueError", "raise ValueError unless epsilon > 0"]),
    (checks.cluster_accuracy, A_PLAIN, 1, "a perfect clustering",
     ["got 0.25, expected 1", "this is the plain accuracy"]),
    (checks.cluster_accuracy, A_GREEDY, 2, "two clusters share a majority class",
     ["got 0.65, expected 0.55", "greedy map", "one-to-one"]),
    (checks.cluster_accuracy, A_MINIMISE, 1, "a perfect clustering",
     ["got 0, expected 1", "WORST one-to-one matching", "maximize=True"]),
    (checks.cluster_accuracy, A_SQUARE, 4, "more clusters than classes",
     ["your code raised IndexError", "the table of counts is rectangular (K, C)"]),
    (checks.cluster_accuracy, A_TENSOR, 1, "a perfect clustering",
     ["expected a Python float, got Tensor", "return float("]),
]


@pytest.mark.parametrize("check, source, i, case, words", WRONG, ids=[
    "s_rows_only", "s_rows_first", "s_no_epsilon", "s_naive_exp", "s_grad", "s_transposed",
    "s_no_checks", "a_plain", "a_greedy", "a_minimise", "a_square", "a_tensor"])
def test_wrong_answers_fail_naming_the_case_and_the_mistake(check, source, i, case, words,
                                                            capsys):
    with pytest.raises(CheckFailed) as info:
        check(EX.define(source, check.__name__))
    msg = str(info.value)
    assert msg.startswith(failed_at(check, i, case)), msg
    for word in words:
        assert word in msg, (word, msg)
    assert "public checks passed" not in capsys.readouterr().out


@pytest.mark.parametrize("check, name", [(checks.sinkhorn_knopp, "sinkhorn_knopp"),
                                         (checks.cluster_accuracy, "cluster_accuracy")])
def test_a_stub_gives_only_the_friendly_not_implemented_error(check, name):
    def stub(*args):
        raise NotImplementedError("write it")

    with pytest.raises(NotImplementedError) as info:
        check(stub)
    assert not isinstance(info.value, AssertionError)
    assert str(info.value) == f"{name}: not implemented yet: write it"


def test_the_overflow_case_really_overflows_a_naive_exp():
    """The ε = 0.01 case is only a test of the log domain if ``exp(scores / ε)`` overflows
    float32 there: some cosine score must exceed 88 · ε."""
    from sslkit.checks.ex05_clustering import _cosines

    scores = _cosines(20, 6, seed=130, d=3)
    assert bool(torch.isinf(torch.exp(scores / 0.01)).any())
    assert bool(torch.isfinite(cluster.sinkhorn_knopp(scores, 0.01, 3)).all())


def test_the_greedy_table_tells_every_mistake_apart():
    """In the case built to catch the greedy map, the plain accuracy, the greedy map, the best
    and the worst one-to-one matchings all differ."""
    from sslkit.checks.ex05_clustering import _from_table

    pred, labels = _from_table([[5, 3, 0], [4, 0, 2], [1, 1, 4]], [0, 1, 2], [0, 1, 2], 200)
    values = [float(f(pred, labels)) for f in (
        EX.define(A_PLAIN, "cluster_accuracy"), EX.define(A_GREEDY, "cluster_accuracy"),
        EX.define(A_MINIMISE, "cluster_accuracy"), cluster.cluster_accuracy)]
    assert values == pytest.approx([0.45, 0.65, 0.05, 0.55], abs=1e-6)


# ---------------------------------------------------------------------------- the notebooks
def test_the_unsolved_exercise_raises_only_not_implemented_error(tmp_path):
    nb, errors, checked = EX.run_unsolved(tmp_path)
    # each part's example, public check and graded cell, Part C's run with your codes and the
    # scores of the k-means clusters
    assert len(errors) == 8, errors
    assert [e.split(":")[0] for e in checked] == ["sinkhorn_knopp", "cluster_accuracy"]


def test_the_solution_passes_every_public_and_hidden_test(tmp_path):
    _, outputs = EX.run_solution(tmp_path)
    for line in (passed(checks.sinkhorn_knopp), passed(checks.cluster_accuracy),
                 "100 round(s)   | column sums [2.00, 2.00, 2.00]",
                 "plain accuracy 0.45 | greedy map 0.65 | one-to-one matching 0.55",
                 "largest loss difference over 100 steps: 0\n"):
        assert line in outputs, line
    assert outputs.count("| agree: True") == 2, outputs


def test_the_solution_is_stored_executed_in_order_without_errors():
    code = EX.check_stored_executed({"sinkhorn_tests": 3, "accuracy_tests": 3})
    assert "torch.set_num_threads(1)" in code[0].source


# ---------------------------------------------------------------------------- grading
SUBMISSIONS = {  # learner → (sinkhorn, accuracy) answers; None: the solution's answer
    "correct": (None, None),
    "correct_alternative": (S_ALTERNATING, A_NUMPY),  # other formulations, also right
    "s_rows_only": (S_ROWS_ONLY, None),
    "s_rows_first": (S_ROWS_FIRST, None),
    "a_greedy": (None, A_GREEDY),
    "a_minimise": (None, A_MINIMISE),
    "unsolved": (),  # the generated exercise as it is: both stubs left in place
}
CELLS = ("sinkhorn_tests", "accuracy_tests")
POINTS = {"sinkhorn_tests": 3, "accuracy_tests": 3}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    return EX.grade(tmp_path_factory.mktemp("grading_05"), {
        learner: dict(zip(ANSWERS, answers, strict=False))
        for learner, answers in SUBMISSIONS.items()})


def test_grading_gives_full_points_to_the_correct_answers_and_takes_the_wrong_cells(graded):
    status, rows, printed, _ = graded
    assert status == 0, printed
    assert rows[0] == ["learner", "exercise", "cell", "points", "max_points", "flags"]
    # a wrong answer fails its public check cell; the unsolved notebook earns nothing
    lost = {"s_": ("sinkhorn_tests",), "a_": ("accuracy_tests",), "un": CELLS}
    assert rows[1:] == expected_grades(NAME, SUBMISSIONS, POINTS, lost), printed


@pytest.mark.parametrize("learner, cell, error", [
    ("s_rows_only", "sinkhorn_tests", "AssertionError: column sums after 100 rounds"),
    ("s_rows_first", "sinkhorn_tests", "AssertionError: row sums"),
    ("a_greedy", "accuracy_tests", "AssertionError: 0.65, expected 11 / 20 = 0.55"),
    ("a_minimise", "accuracy_tests", "AssertionError: 0.05, expected 11 / 20 = 0.55"),
])
def test_each_wrong_answer_fails_its_graded_cell_and_its_public_check(graded, learner, cell,
                                                                      error):
    check = {"sinkhorn_tests": "sinkhorn_knopp", "accuracy_tests": "cluster_accuracy"}[cell]
    got, check_errors = graded_errors(graded[3], learner, cell, check)
    assert got.startswith(error), got
    assert check_errors == ["CheckFailed"]
