"""Exercise 08 (MAE's patchify, its inverse and per-image random masking): its public checks,
notebooks and grading.

* ``checks.patchify``, ``checks.unpatchify`` and ``checks.random_masking`` pass correct answers
  (the solution's, independent formulations and the library's) and fail deliberately wrong ones
  (channel-first patches, a plain reshape; patches put back column by column; one mask shared by
  the batch, a shuffle that is not inverted, rounding down), naming the case and the mistake;
* the generated exercise, executed unsolved, raises only ``NotImplementedError``; the solution
  executes without error (public and hidden tests pass), trains the same MAE as the library's
  masking to the last digit, and is stored executed, in order;
* one ``sslkit.grade`` run on submissions built from the exercise gives full points to the
  correct answers and takes the points of exactly the cell whose answer is wrong (Part B's tests
  never call the learner's ``patchify``), and of an answer that calls the library's masking.

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
from test_checks_ex08 import MASKING_PERMUTATIONS as M_PERMUTATIONS
from test_checks_ex08 import MASKING_RIGHT as M_RIGHT
from test_checks_ex08 import PATCHIFY_SLICES as P_SLICES
from test_checks_ex08 import UNPATCHIFY_SLICES as U_SLICES

from sslkit import checks, masking, models
from sslkit.checks import CheckFailed

EX = Exercise("08_masked_modeling", {"torch": torch, "math": math})
NAME = EX.name
ANSWERS = ("patchify_solution", "unpatchify_solution", "masking_solution")

# ---------------------------------------------------------------------------- answers
P_CHANNEL_FIRST = """\
def patchify(images, patch_size):
    b, c, h, w = images.shape
    p = patch_size
    x = images.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(b, (h // p) * (w // p), p * p * c)
"""
P_PLAIN = """\
def patchify(images, patch_size):
    b, c, h, w = images.shape
    return images.reshape(b, (h // patch_size) * (w // patch_size), -1)
"""
U_COLUMN_MAJOR = U_SLICES.replace("row, col = i // g, i % g", "col, row = i // g, i % g")
M_SHARED = M_RIGHT.replace("torch.rand(batch_size, num_patches, device=device)",
                           "torch.rand(num_patches, device=device).repeat(batch_size, 1)")
M_NOT_INVERTED = M_RIGHT.replace("ids_restore = ids_shuffle.argsort(dim=1)",
                                 "ids_restore = ids_shuffle")
M_FLOOR = M_RIGHT.replace("round(num_patches * mask_ratio)", "int(num_patches * mask_ratio)")
M_LIBRARY = """\
from sslkit.masking import random_masking as library_masking


def random_masking(batch_size, num_patches, mask_ratio, device=None):
    return tuple(library_masking(batch_size, num_patches, mask_ratio, device=device))
"""


# ---------------------------------------------------------------------------- the checks
@pytest.mark.parametrize("check, fn", [
    (checks.patchify, lambda: EX.define("patchify_solution", "patchify")),
    (checks.patchify, lambda: EX.define(P_SLICES, "patchify")),
    (checks.patchify, lambda: models.patchify),
    (checks.unpatchify, lambda: EX.define("unpatchify_solution", "unpatchify")),
    (checks.unpatchify, lambda: EX.define(U_SLICES, "unpatchify")),
    (checks.unpatchify, lambda: models.unpatchify),
    (checks.random_masking, lambda: EX.define("masking_solution", "random_masking")),
    (checks.random_masking, lambda: EX.define(M_PERMUTATIONS, "random_masking")),
    (checks.random_masking, lambda: masking.random_masking),
], ids=["p_solution", "p_slices", "p_library", "u_solution", "u_slices", "u_library",
        "m_solution", "m_permutations", "m_library"])
def test_correct_answers_pass_the_public_checks(check, fn, capsys):
    check(fn())
    assert_passed(check, capsys.readouterr().out)


WRONG = [  # (check, function, the case that fails: number and name, words of the message)
    (checks.patchify, lambda: EX.define(P_CHANNEL_FIRST, "patchify"), 1,
     "B=2, RGB 8×8, p = 4, every value different", ["patches: values differ",
                                                    "flattened channel first"]),
    (checks.patchify, lambda: EX.define(P_PLAIN, "patchify"), 1,
     "B=2, RGB 8×8, p = 4, every value different", ["a plain reshape does not cut"]),
    (checks.unpatchify, lambda: EX.define(U_COLUMN_MAJOR, "unpatchify"), 1,
     "B=2, 16 RGB patches of 4×4, every value different", ["image: values differ",
                                                           "column by column"]),
    (checks.random_masking, lambda: EX.define(M_SHARED, "random_masking"), 6,
     "each image gets its own mask", ["all 64 images got the same mask"]),
    (checks.random_masking, lambda: EX.define(M_NOT_INVERTED, "random_masking"), 3,
     "keep_idx lists exactly the visible patches", ["the shuffle itself, not its inverse"]),
    (checks.random_masking, lambda: EX.define(M_FLOOR, "random_masking"), 2,
     "every image hides round(N · ratio)", ["expected round(49 · 0.75) = 37",
                                            "you rounded down"]),
]


@pytest.mark.parametrize("check, fn, i, case, words", WRONG, ids=[
    "p_channel_first", "p_plain", "u_column_major", "m_shared", "m_not_inverted", "m_floor"])
def test_wrong_answers_fail_naming_the_case_and_the_mistake(check, fn, i, case, words, capsys):
    with pytest.raises(CheckFailed) as info:
        check(fn())
    msg = str(info.value)
    assert msg.startswith(failed_at(check, i, case)), msg
    for word in words:
        assert word in msg, (word, msg)
    assert "public checks passed" not in capsys.readouterr().out


@pytest.mark.parametrize("check", [checks.patchify, checks.unpatchify, checks.random_masking])
def test_a_stub_gives_only_the_friendly_not_implemented_error(check):
    def stub(*args, **kwargs):
        raise NotImplementedError("write it")

    with pytest.raises(NotImplementedError) as info:
        check(stub)
    assert not isinstance(info.value, AssertionError)
    assert str(info.value) == f"{check.__name__}: not implemented yet: write it"


def test_the_solution_masking_draws_the_library_s_masks():
    """Part D's claim: the solution draws its noise as ``sslkit.masking.random_masking`` does,
    so under the same seed both return the same three tensors (hence identical MAE runs)."""
    mine = EX.define("masking_solution", "random_masking")
    torch.manual_seed(3)
    ours = mine(8, 16, 0.75, device=torch.device("cpu"))
    torch.manual_seed(3)
    theirs = masking.random_masking(8, 16, 0.75, device=torch.device("cpu"))
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))


# ---------------------------------------------------------------------------- the notebooks
def test_the_unsolved_exercise_raises_only_not_implemented_error(tmp_path):
    nb, errors, checked = EX.run_unsolved(tmp_path)
    # each part's example, public check and graded cell (A, B and C), and Part D's run with
    # your masking and its reconstruction figure (the library's run needs no answer)
    assert len(errors) == 11, errors
    assert [e.split(":")[0] for e in checked] == ["patchify", "unpatchify", "random_masking"]


def test_the_solution_passes_every_public_and_hidden_test(tmp_path):
    _, outputs = EX.run_solution(tmp_path)
    for line in (passed(checks.patchify), passed(checks.unpatchify),
                 passed(checks.random_masking),
                 "grey, patch 1 (grid row 0, column 1): [2, 3, 6, 7]",
                 "rgb, its one patch: [0, 100, 200, 1, 101, 201, 10, 110, 210, 11, 111, 211]",
                 "unpatchify(models.patchify(x, 8), 8) is x: True",
                 "hidden patches per image: [12, 12, 12, 12]",
                 "back in grid order: True",
                 # the solution draws as the library does: the two runs are the same run
                 "largest loss difference over 100 steps: 0\n",
                 "hidden patches per image: 12 of 16"):
        assert line in outputs, line


def test_the_solution_is_stored_executed_in_order_without_errors():
    code = EX.check_stored_executed({"patchify_tests": 2, "unpatchify_tests": 2,
                                     "masking_tests": 2})
    assert "torch.set_num_threads(1)" in code[0].source


# ---------------------------------------------------------------------------- grading
SUBMISSIONS = {  # learner → (patchify, unpatchify, masking) answers; None: the solution's
    "correct": (None, None, None),
    "correct_alternative": (P_SLICES, U_SLICES, M_PERMUTATIONS),  # other formulations, right
    "p_channel_first": (P_CHANNEL_FIRST, None, None),
    "u_column_major": (None, U_COLUMN_MAJOR, None),
    "m_not_inverted": (None, None, M_NOT_INVERTED),
    "ref_masking": (None, None, M_LIBRARY),       # right, but the library's own function
    "unsolved": (),  # the generated exercise as it is: every stub left in place
}
CELLS = ("patchify_tests", "unpatchify_tests", "masking_tests")
POINTS = {"patchify_tests": 2, "unpatchify_tests": 2, "masking_tests": 2}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    return EX.grade(tmp_path_factory.mktemp("grading_08"), {
        learner: dict(zip(ANSWERS, answers, strict=False))
        for learner, answers in SUBMISSIONS.items()})


def test_grading_gives_full_points_to_the_correct_answers_and_takes_the_wrong_cells(graded):
    status, rows, printed, _ = graded
    assert status == 0, printed
    assert rows[0] == ["learner", "exercise", "cell", "points", "max_points", "flags"]
    lost = {"p_": ("patchify_tests",), "u_": ("unpatchify_tests",), "m_": ("masking_tests",),
            "ref": ("masking_tests",), "un": CELLS}
    want = expected_grades(NAME, SUBMISSIONS, POINTS, lost)
    # an answer that calls the function it mirrors passes its checks, and loses its points
    want = [row[:5] + ["uses_reference"] if row[0] == "ref_masking" else row for row in want]
    assert rows[1:] == want, printed


@pytest.mark.parametrize("learner, cell, error", [
    ("p_channel_first", "patchify_tests", "AssertionError: tensor("),
    ("u_column_major", "unpatchify_tests", "AssertionError: tensor("),
    ("m_not_inverted", "masking_tests", "AssertionError: (0, tensor("),
])
def test_each_wrong_answer_fails_its_graded_cell_and_its_public_check(graded, learner, cell,
                                                                      error):
    check = {"patchify_tests": "patchify", "unpatchify_tests": "unpatchify",
             "masking_tests": "random_masking"}[cell]
    got, check_errors = graded_errors(graded[3], learner, cell, check)
    assert got.startswith(error), got
    assert "CheckFailed" in check_errors, check_errors
