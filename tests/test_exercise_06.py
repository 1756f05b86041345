"""Exercise 06 (DINO's loss and its centre update): its public checks, notebooks and grading.

* ``checks.dino_loss`` and ``checks.update_center`` pass correct answers (the solution's,
  independent formulations and the library's) and fail deliberately wrong ones (a forgotten
  centre, views paired with themselves, swapped temperatures, a teacher that passes gradient; a
  swapped momentum, the first view only, a new centre instead of an update in place), naming the
  case and the mistake;
* the generated exercise, executed unsolved, raises only ``NotImplementedError``; the solution
  executes without error (public and hidden tests pass), trains the same DINO as the library's
  functions to the last digit, and is stored executed, in order;
* one ``sslkit.grade`` run on submissions built from the exercise gives full points to the
  correct answers and takes the points of exactly the cell whose answer is wrong (a teacher that
  passes gradient fails the hidden tests only), and of answers that call the library's loss and
  centre update.

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
    expected_grades,
    failed_at,
    graded_errors,
    passed,
)
from test_checks_ex06 import LOSS_LOOPS as L_LOOPS
from test_checks_ex06 import LOSS_WRONG as L_WRONG

from sslkit import checks, losses
from sslkit.checks import CheckFailed
from sslkit.methods import update_center_

EX = Exercise("06_self_distillation", {"torch": torch, "math": math})
NAME = EX.name
ANSWERS = ("loss_solution", "center_solution")

# ---------------------------------------------------------------------------- answers
L_NO_CENTRE = L_WRONG["ignores the centre"]
L_SAME_VIEW = L_WRONG["paired each global view with itself"]
L_SWAPPED = L_WRONG["swapped the temperatures"]
L_TEACHER_GRAD = L_WRONG["gradient reaches the teacher"]
C_COPY = """\
def update_center(center, teacher, momentum):
    # another formulation: the new value computed out of place, then copied into the buffer
    rows = teacher.reshape(-1, teacher.shape[-1])
    center.copy_(momentum * center + (1 - momentum) * rows.sum(dim=0) / rows.shape[0])
"""
C_SWAPPED = """\
def update_center(center, teacher, momentum):
    batch_mean = teacher.reshape(-1, center.shape[0]).mean(dim=0)
    center.mul_(1 - momentum).add_(batch_mean, alpha=momentum)
"""
C_FIRST_VIEW = """\
def update_center(center, teacher, momentum):
    center.mul_(momentum).add_(teacher[0].mean(dim=0), alpha=1 - momentum)
"""
C_NEW_TENSOR = """\
def update_center(center, teacher, momentum):
    center = momentum * center + (1 - momentum) * teacher.reshape(-1, center.shape[0]).mean(0)
    return center
"""
REFERENCES = ("""\
from sslkit.losses import dino_loss as library_loss


def dino_loss(student, teacher, center, student_temp, teacher_temp):
    return library_loss(student, teacher, center, student_temp, teacher_temp)
""", """\
from sslkit import methods


def update_center(center, teacher, momentum):
    methods.update_center_(center, teacher, momentum)
""")


# ---------------------------------------------------------------------------- the checks
@pytest.mark.parametrize("check, fn", [
    (checks.dino_loss, lambda: EX.define("loss_solution", "dino_loss")),
    (checks.dino_loss, lambda: EX.define(L_LOOPS, "dino_loss")),
    (checks.dino_loss, lambda: losses.dino_loss),
    (checks.update_center, lambda: EX.define("center_solution", "update_center")),
    (checks.update_center, lambda: EX.define(C_COPY, "update_center")),
    (checks.update_center, lambda: update_center_),
], ids=["l_solution", "l_loops", "l_library", "c_solution", "c_copy", "c_library"])
def test_correct_answers_pass_the_public_checks(check, fn, capsys):
    check(fn())
    assert_passed(check, capsys.readouterr().out)


FIRST_LOSS_CASE = "2 global + 2 local views, B=6, K=8, a centre"
WRONG = [  # (check, function, the case that fails: number and name, words of the message)
    (checks.dino_loss, lambda: EX.define(L_NO_CENTRE, "dino_loss"), 1, FIRST_LOSS_CASE,
     ["loss: values differ", "your loss ignores the centre"]),
    (checks.dino_loss, lambda: EX.define(L_SAME_VIEW, "dino_loss"), 1, FIRST_LOSS_CASE,
     ["you also paired each global view with itself"]),
    (checks.dino_loss, lambda: EX.define(L_SWAPPED, "dino_loss"), 1, FIRST_LOSS_CASE,
     ["you swapped the temperatures"]),
    (checks.dino_loss, lambda: EX.define(L_TEACHER_GRAD, "dino_loss"), 7,
     "gradient reaches the student, not the teacher", ["detach it (teacher.detach())"]),
    (checks.update_center, lambda: EX.define(C_SWAPPED, "update_center"), 1, "two views, m=0.9",
     ["center after the update: values differ", "you swapped the momentum"]),
    (checks.update_center, lambda: EX.define(C_FIRST_VIEW, "update_center"), 1,
     "two views, m=0.9", ["you used the first view only"]),
    (checks.update_center, lambda: EX.define(C_NEW_TENSOR, "update_center"), 1,
     "two views, m=0.9", ["the centre did not change", "you returned a new tensor instead"]),
]


@pytest.mark.parametrize("check, fn, i, case, words", WRONG, ids=[
    "l_no_centre", "l_same_view", "l_swapped", "l_teacher_grad", "c_swapped", "c_first_view",
    "c_new_tensor"])
def test_wrong_answers_fail_naming_the_case_and_the_mistake(check, fn, i, case, words, capsys):
    with pytest.raises(CheckFailed) as info:
        check(fn())
    msg = str(info.value)
    assert msg.startswith(failed_at(check, i, case)), msg
    for word in words:
        assert word in msg, (word, msg)
    assert "public checks passed" not in capsys.readouterr().out


@pytest.mark.parametrize("check", [checks.dino_loss, checks.update_center])
def test_a_stub_gives_only_the_friendly_not_implemented_error(check):
    def stub(*args):
        raise NotImplementedError("write it")

    with pytest.raises(NotImplementedError) as info:
        check(stub)
    assert not isinstance(info.value, AssertionError)
    assert str(info.value) == f"{check.__name__}: not implemented yet: write it"


def test_the_solution_does_the_library_s_arithmetic():
    """Part C's claim: the solution's loss and centre update give the library's results bit for
    bit, so the two DINO runs are one run and their largest loss difference is 0."""
    loss = EX.define("loss_solution", "dino_loss")
    update = EX.define("center_solution", "update_center")
    g = torch.Generator().manual_seed(6)
    student, teacher = torch.randn(4, 8, 16, generator=g), torch.randn(2, 8, 16, generator=g)
    center = torch.randn(16, generator=g)
    assert torch.equal(loss(student, teacher, center, 0.1, 0.04),
                       losses.dino_loss(student, teacher, center, 0.1, 0.04))
    mine, theirs = center.clone(), center.clone()
    update(mine, teacher, 0.9)
    update_center_(theirs, teacher, 0.9)
    assert torch.equal(mine, theirs)


# ---------------------------------------------------------------------------- the notebooks
def test_the_unsolved_exercise_raises_only_not_implemented_error(tmp_path):
    nb, errors, checked = EX.run_unsolved(tmp_path)
    # each part's example, public check and graded cell (A and B), and Part C's run with your
    # functions (the library's run needs no answer)
    assert len(errors) == 7, errors
    assert [e.split(":")[0] for e in checked] == ["dino_loss", "update_center"]


def test_the_solution_passes_every_public_and_hidden_test(tmp_path):
    _, outputs = EX.run_solution(tmp_path)
    for line in (passed(checks.dino_loss), passed(checks.update_center),
                 "uniform                                        1.386",
                 "prototype 0 for every image, no centre         0.000",
                 "prototype 0 for every image, centred           7.500",
                 "two views that disagree                        10.000",
                 "leaning: the entropy of the student            1.242",
                 "leaning, teacher = student, τ_t = τ_s = 0.1    1.242",
                 "leaning, teacher = student, τ_t = 0.04         0.870",
                 "after  20 updates: centre 0.878 0.000 0.000 0.000   teacher's P(prototype 0) "
                 "0.874",
                 "after 100 updates: centre 1.000 0.000 0.000 0.000   teacher's P(prototype 0) "
                 "0.250",
                 "m = 0, two views that disagree: centre 0.500 0.500 0.000 0.000",
                 # the solution does the library's arithmetic: the two runs are the same run
                 "largest loss difference over 100 steps: 0\n"):
        assert line in outputs, line


def test_the_solution_is_stored_executed_in_order_without_errors():
    code = EX.check_stored_executed({"loss_tests": 2, "center_tests": 2})
    assert "torch.set_num_threads(1)" in code[0].source


# ---------------------------------------------------------------------------- grading
SUBMISSIONS = {  # learner → (loss, centre update) answers; None: the solution's answer
    "correct": (None, None),
    "correct_alternative": (L_LOOPS, C_COPY),    # other formulations, also right
    "l_no_centre": (L_NO_CENTRE, None),
    "l_teacher_grad": (L_TEACHER_GRAD, None),    # right values: only the hidden tests see it
    "c_new_tensor": (None, C_NEW_TENSOR),
    "ref_both": REFERENCES,                      # right, but the library's own functions
    "unsolved": (),  # the generated exercise as it is: every stub left in place
}
CELLS = ("loss_tests", "center_tests")
POINTS = {"loss_tests": 2, "center_tests": 2}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    return EX.grade(tmp_path_factory.mktemp("grading_06"), {
        learner: dict(zip(ANSWERS, answers, strict=False))
        for learner, answers in SUBMISSIONS.items()})


def test_grading_gives_full_points_to_the_correct_answers_and_takes_the_wrong_cells(graded):
    status, rows, printed, _ = graded
    assert status == 0, printed
    assert rows[0] == ["learner", "exercise", "cell", "points", "max_points", "flags"]
    lost = {"l_": ("loss_tests",), "c_": ("center_tests",), "ref": CELLS, "un": CELLS}
    want = expected_grades(NAME, SUBMISSIONS, POINTS, lost)
    # an answer that calls the function it mirrors passes its checks, and loses its points
    want = [row[:5] + ["uses_reference"] if row[0] == "ref_both" else row for row in want]
    assert rows[1:] == want, printed


@pytest.mark.parametrize("learner, cell, error", [
    ("l_no_centre", "loss_tests", "AssertionError: (tensor(0.0001), 7.5001"),
    ("l_teacher_grad", "loss_tests", "AssertionError: gradient reaches the teacher"),
    ("c_new_tensor", "center_tests", "AssertionError: the centre did not change"),
])
def test_each_wrong_answer_fails_its_graded_cell_and_its_public_check(graded, learner, cell,
                                                                      error):
    check = {"loss_tests": "dino_loss", "center_tests": "update_center"}[cell]
    got, check_errors = graded_errors(graded[3], learner, cell, check)
    assert got.startswith(error), got
    assert "CheckFailed" in check_errors, check_errors
