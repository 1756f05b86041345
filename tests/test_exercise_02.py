"""Exercise 02 (pretext tasks): its public check, its notebooks and its grading.

* ``checks.rotation_batch`` passes correct answers (the solution's, an independent formulation
  and the library's) and fails deliberately wrong ones (a clockwise turn, tiled targets, an
  image-major batch, a transpose, float output, no ``ValueError``), naming the case and the
  mistake;
* the generated exercise, executed unsolved, raises only ``NotImplementedError``; the solution
  executes without error (public and hidden tests and Part B's tiny RotNet pass) and is stored
  executed, in order;
* one ``sslkit.grade`` run on submissions built from the exercise gives full points to the
  correct answers and none to the wrong ones.

The wrong answers are source strings: the same text is ``exec``-ed for the checks and pasted
into the answer cell of the submissions.
"""

from __future__ import annotations

import nbformat
import pytest
import torch
from notebook_helpers import (
    Exercise,
    assert_passed,
    by_id,
    failed_at,
    graded_errors,
    passed,
)

from sslkit import checks, exercises, pretext
from sslkit.checks import CheckFailed
from sslkit.checks.ex02_rotation import _corner_image, _rotation_diagnosis, _transforms

EX = Exercise("02_pretext_tasks", {"torch": torch})
NAME = EX.name


def define(source):
    """The ``rotation_batch`` of an answer (or of the solution's answer cell ``source``)."""
    return EX.define(source, "rotation_batch")


# ---------------------------------------------------------------------------- answers
HEAD = """\
def rotation_batch(images):
    if images.shape[-1] != images.shape[-2]:
        raise ValueError("not square")
    b = images.shape[0]
"""
TRANSPOSE_FLIP = HEAD + """\
    # an independent formulation: a quarter turn counter-clockwise is a transpose, then a flip
    # of the rows; four quarter turns one after the other
    turns, x = [], images
    for _ in range(4):
        turns.append(x)
        x = x.transpose(-2, -1).flip(-2)
    return torch.cat(turns, 0), torch.tensor([0, 1, 2, 3]).repeat_interleave(b)
"""
CLOCKWISE = HEAD + """\
    rotated = torch.cat([torch.rot90(images, k, dims=(-1, -2)) for k in range(4)])
    return rotated, torch.arange(4).repeat_interleave(b)
"""
TILED = HEAD + """\
    rotated = torch.cat([torch.rot90(images, k, dims=(-2, -1)) for k in range(4)])
    return rotated, torch.arange(4).repeat(b)
"""
IMAGE_MAJOR = HEAD + """\
    rotated = torch.stack([torch.rot90(images, k, dims=(-2, -1)) for k in range(4)], dim=1)
    return rotated.flatten(0, 1), torch.arange(4).repeat(b)
"""
TRANSPOSE = HEAD + """\
    turns = [images, images.transpose(-2, -1), images.flip(-2, -1),
             images.transpose(-2, -1).flip(-1)]
    return torch.cat(turns), torch.arange(4).repeat_interleave(b)
"""
AS_FLOAT = HEAD + """\
    rotated = torch.cat([torch.rot90(images.float(), k, dims=(-2, -1)) for k in range(4)])
    return rotated, torch.arange(4).repeat_interleave(b)
"""
NO_CHECK = """\
def rotation_batch(images):
    b = images.shape[0]
    rotated = torch.cat([torch.rot90(images, k, dims=(-2, -1)) for k in range(4)])
    return rotated, torch.arange(4).repeat_interleave(b)
"""
INT32_TARGETS = HEAD + """\
    rotated = torch.cat([torch.rot90(images, k, dims=(-2, -1)) for k in range(4)])
    return rotated, torch.arange(4, dtype=torch.int32).repeat_interleave(b)
"""


# ------------------------------------------------------------------------------- the check
@pytest.mark.parametrize("source", ["rotation_solution", TRANSPOSE_FLIP, pretext.rotation_batch],
                         ids=["solution", "transpose_flip", "library"])
def test_correct_answers_pass_the_public_check(source, capsys):
    checks.rotation_batch(define(source))
    assert_passed(checks.rotation_batch, capsys.readouterr().out)


WRONG = [  # (source, the case that fails: number and name, words of the message)
    (CLOCKWISE, 3, "one 4×4 image",
     ["32 of 64 pixel values differ", "your rotations turn the wrong way",
      "the rows with target 1 hold torch.rot90(x, -1) (90° clockwise)", "dims=(-1, -2)"]),
    (TILED, 2, "targets are rotation-major",
     ["got [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3]", "your targets are tiled",
      "torch.arange(4).repeat_interleave(B)"]),
    (IMAGE_MAJOR, 2, "targets are rotation-major",
     ["your batch is image-major", "torch.stack(..., dim=1)"]),
    (TRANSPOSE, 3, "one 4×4 image",
     ["row 1 (target 1) should hold torch.rot90(x, 1, dims=(-2, -1))",
      "x.transpose(-2, -1): a reflection in the diagonal, not a rotation"]),
    (AS_FLOAT, 1, "returns",
     ["rotated: dtype torch.float32 differs from the images' torch.uint8", "stay uint8"]),
    (INT32_TARGETS, 2, "targets are rotation-major",
     ["targets have dtype torch.int32", "int64"]),
    (NO_CHECK, 8, "non-square images",
     ["your code raised RuntimeError", "expected a ValueError",
      "images.shape[-1] == images.shape[-2]"]),
]


@pytest.mark.parametrize("source, i, case, words", WRONG, ids=[
    "clockwise", "tiled_targets", "image_major", "transpose", "as_float", "int32_targets",
    "no_value_error"])
def test_wrong_answers_fail_naming_the_case_and_the_mistake(source, i, case, words, capsys):
    with pytest.raises(CheckFailed) as info:
        checks.rotation_batch(define(source))
    msg = str(info.value)
    assert msg.startswith(failed_at(checks.rotation_batch, i, case)), msg
    for word in words:
        assert word in msg, (word, msg)
    assert "public checks passed" not in capsys.readouterr().out


def test_a_stub_gives_only_the_friendly_not_implemented_error():
    def stub(images):
        raise NotImplementedError("concatenate the four rotations")

    with pytest.raises(NotImplementedError) as info:
        checks.rotation_batch(stub)
    assert not isinstance(info.value, AssertionError)
    assert str(info.value) == ("rotation_batch: not implemented yet: concatenate the four "
                               "rotations")


def test_the_check_notices_an_input_modified_in_place():
    def in_place(images):
        out = pretext.rotation_batch(images)
        images.zero_()
        return out

    with pytest.raises(CheckFailed, match="modified images in place"):
        checks.rotation_batch(in_place)


def test_the_diagnosis_names_every_symmetry_of_the_square():
    """Each of the eight symmetries, put in the place of rotation 1, is named as what it is."""
    image = _corner_image()
    names = list(_transforms())
    assert len({tuple(t(image).flatten().tolist()) for t in _transforms().values()}) == 8
    for name, transform in list(_transforms().items())[2:]:
        got = torch.cat([image, transform(image), torch.rot90(image, 2, dims=(-2, -1)),
                         torch.rot90(image, 3, dims=(-2, -1))])
        hint = _rotation_diagnosis(image, got)
        assert f"but hold {name}" in hint, (name, hint)
    assert names[1].startswith("torch.rot90(x, 1)")


# ---------------------------------------------------------------------------- the notebooks
def test_the_unsolved_exercise_raises_only_not_implemented_error(tmp_path):
    nb, errors, checked = EX.run_unsolved(tmp_path)
    # the 3×3 example, the picture, the public check, the graded cell and Part B's RotNet
    assert len(errors) == 5, errors
    assert checked[0].startswith("rotation_batch: not implemented yet: reject non-square images")
    assert by_id(nb, "pretext_answer").source == "YOUR ANSWER HERE"


def test_the_solution_passes_every_public_and_hidden_test(tmp_path):
    _, outputs = EX.run_solution(tmp_path)
    for line in (passed(checks.rotation_batch),
                 "target 1: [[3, 6, 9], [2, 5, 8], [1, 4, 7]]", "pretext accuracy: upright"):
        assert line in outputs, line


def test_the_solution_is_stored_executed_in_order_without_errors():
    code = EX.check_stored_executed({"rotation_tests": 3, "pretext_answer": 2})
    assert "torch.set_num_threads(1)" in code[0].source


# ---------------------------------------------------------------------------- grading
SUBMISSIONS = {  # learner → rotation_batch answer; None: the solution's answer
    "correct": None,
    "correct_alternative": TRANSPOSE_FLIP,
    "clockwise": CLOCKWISE,
    "tiled_targets": TILED,
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """One grader run. Its solutions folder holds the real solution without Part B's training
    cell (about 7 seconds per submission on a CPU, and worth no points)."""
    root = tmp_path_factory.mktemp("grading_02")
    solution = exercises.read_notebook(EX.solution)
    train = next(c for c in solution.cells if c.get("id") == "e02-b-train")
    train.source, train.outputs = "# Part B's training, left out of this test", []
    (root / "solutions").mkdir()
    nbformat.write(solution, root / "solutions" / EX.solution.name)
    return EX.grade(root, {
        learner: {"rotation_solution": source,
                  "pretext_answer": "Free rotation: every quarter turn looks alike."}
        for learner, source in SUBMISSIONS.items()}, solutions=root / "solutions")


def test_grading_gives_full_points_to_the_correct_answers_and_none_to_the_wrong_ones(graded):
    status, rows, printed, _ = graded
    assert status == 0, printed
    assert rows[0] == ["learner", "exercise", "cell", "points", "max_points", "flags"]
    # a wrong answer also fails its public check cell: flag "failed_check"
    assert rows[1:] == [
        ["clockwise", NAME, "rotation_tests", "0", "3", "failed_check"],
        ["correct", NAME, "rotation_tests", "3", "3", ""],
        ["correct_alternative", NAME, "rotation_tests", "3", "3", ""],
        ["tiled_targets", NAME, "rotation_tests", "0", "3", "failed_check"],
    ], printed


@pytest.mark.parametrize("learner, error", [
    ("clockwise", "AssertionError: tensor([[7, 4, 1]"),
    ("tiled_targets", "AssertionError: tensor([0, 1, 2, 3, 0, 1, 2, 3"),
])
def test_each_wrong_answer_fails_its_graded_cell_and_its_public_check(graded, learner, error):
    got, check_errors = graded_errors(graded[3], learner, "rotation_tests", "rotation_batch")
    assert got.startswith(error), got
    assert check_errors == ["CheckFailed"]
