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

import copy
from pathlib import Path

import nbformat
import pytest
import torch
from notebook_helpers import (
    answer_source,
    by_id,
    check_stored_executed,
    exec_answer,
    execute,
    run_grader,
    text_of,
)

from sslkit import checks, exercises, pretext
from sslkit.checks import CheckFailed

ROOT = Path(__file__).resolve().parents[1]
NAME = "02_pretext_tasks"
SOLUTION = ROOT / "solutions" / f"{NAME}.ipynb"
EXERCISE = ROOT / "exercises" / f"{NAME}.ipynb"


def solution_source(gid: str) -> str:
    return answer_source(SOLUTION, gid)


def define(source: str, name: str = "rotation_batch"):
    """``exec`` an answer cell's source in a fresh namespace; return the function ``name``."""
    return exec_answer(source, name, {"torch": torch})


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
@pytest.mark.parametrize("source", ["solution", TRANSPOSE_FLIP, pretext.rotation_batch],
                         ids=["solution", "transpose_flip", "library"])
def test_correct_answers_pass_the_public_check(source, capsys):
    if callable(source):
        fn = source
    else:
        fn = define(solution_source("rotation_solution") if source == "solution" else source)
    checks.rotation_batch(fn)
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "rotation_batch: 8 public checks passed."
    assert len(lines) == 9 and all(line.startswith("  ✓ ") for line in lines[:-1])


WRONG = [  # (source, the case that fails, words of the message)
    (CLOCKWISE, "check 3/8 'one 4×4 image",
     ["32 of 64 pixel values differ", "your rotations turn the wrong way",
      "the rows with target 1 hold torch.rot90(x, -1) (90° clockwise)", "dims=(-1, -2)"]),
    (TILED, "check 2/8 'targets are rotation-major",
     ["got [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3]", "your targets are tiled",
      "torch.arange(4).repeat_interleave(B)"]),
    (IMAGE_MAJOR, "check 2/8 'targets are rotation-major",
     ["your batch is image-major", "torch.stack(..., dim=1)"]),
    (TRANSPOSE, "check 3/8 'one 4×4 image",
     ["row 1 (target 1) should hold torch.rot90(x, 1, dims=(-2, -1))",
      "x.transpose(-2, -1): a reflection in the diagonal, not a rotation"]),
    (AS_FLOAT, "check 1/8 'returns",
     ["rotated: dtype torch.float32 differs from the images' torch.uint8", "stay uint8"]),
    (INT32_TARGETS, "check 2/8 'targets are rotation-major",
     ["targets have dtype torch.int32", "int64"]),
    (NO_CHECK, "check 8/8 'non-square images",
     ["your code raised RuntimeError", "expected a ValueError",
      "images.shape[-1] == images.shape[-2]"]),
]


@pytest.mark.parametrize("source, case, words", WRONG, ids=[
    "clockwise", "tiled_targets", "image_major", "transpose", "as_float", "int32_targets",
    "no_value_error"])
def test_wrong_answers_fail_naming_the_case_and_the_mistake(source, case, words, capsys):
    with pytest.raises(CheckFailed) as info:
        checks.rotation_batch(define(source))
    msg = str(info.value)
    assert msg.startswith(f"rotation_batch: {case}"), msg
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
    from sslkit.checks import pretext as rotation_checks

    image = rotation_checks._corner_image()
    names = list(rotation_checks._transforms())
    assert len({tuple(t(image).flatten().tolist())
                for t in rotation_checks._transforms().values()}) == 8
    for name, transform in list(rotation_checks._transforms().items())[2:]:
        got = torch.cat([image, transform(image), torch.rot90(image, 2, dims=(-2, -1)),
                         torch.rot90(image, 3, dims=(-2, -1))])
        hint = rotation_checks._rotation_diagnosis(image, got)
        assert f"but hold {name}" in hint, (name, hint)
    assert names[1].startswith("torch.rot90(x, 1)")


# ---------------------------------------------------------------------------- the notebooks
def test_the_unsolved_exercise_raises_only_not_implemented_error(tmp_path):
    nb = nbformat.read(EXERCISE, as_version=4)
    _, errors = execute(nb, tmp_path)
    assert {name for name, _ in errors.values()} == {"NotImplementedError"}, errors
    # the 3×3 example, the picture, the public check, the graded cell and Part B's RotNet
    graded = {i for i, c in enumerate(nb.cells) if exercises.is_test_cell(c)}
    assert graded <= set(errors) and len(errors) == 5, errors
    check = next(i for i, c in enumerate(nb.cells) if c.source.startswith("checks."))
    assert errors[check][1].startswith("rotation_batch: not implemented yet: reject non-square "
                                       "images")
    assert by_id(nb, "pretext_answer").source == "YOUR ANSWER HERE"


def test_the_solution_passes_every_public_and_hidden_test(tmp_path):
    nb, errors = execute(exercises.read_notebook(SOLUTION), tmp_path)
    assert errors == {}
    outputs = "".join(text_of(c) for c in nb.cells if c.cell_type == "code")
    for line in ("rotation_batch: 8 public checks passed.",
                 "target 1: [[3, 6, 9], [2, 5, 8], [1, 4, 7]]", "pretext accuracy: upright"):
        assert line in outputs, line


def test_the_solution_is_stored_executed_in_order_without_errors():
    code = check_stored_executed(SOLUTION, NAME, {"rotation_tests": 3, "pretext_answer": 2})
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
    solution = exercises.read_notebook(SOLUTION)
    train = next(c for c in solution.cells if c.get("id") == "e02-b-train")
    train.source, train.outputs = "# Part B's training, left out of this test", []
    (root / "solutions").mkdir()
    nbformat.write(solution, root / "solutions" / SOLUTION.name)
    exercise = nbformat.read(EXERCISE, as_version=4)
    (root / "submitted").mkdir()
    for learner, source in SUBMISSIONS.items():
        nb = copy.deepcopy(exercise)
        by_id(nb, "rotation_solution").source = source or solution_source("rotation_solution")
        by_id(nb, "pretext_answer").source = "Free rotation: every quarter turn looks alike."
        nbformat.write(nb, root / "submitted" / f"{learner}.ipynb")
    return (*run_grader(root / "submitted", root / "solutions", root, timeout=600), root)


def test_grading_gives_full_points_to_the_correct_answers_and_none_to_the_wrong_ones(graded):
    status, rows, printed, _ = graded
    assert status == 0, printed
    assert rows[0] == ["learner", "exercise", "cell", "points", "max_points", "flags"]
    # a wrong answer also fails its public check cell: flag "crashed"
    assert rows[1:] == [
        ["clockwise", NAME, "rotation_tests", "0", "3", "crashed"],
        ["correct", NAME, "rotation_tests", "3", "3", ""],
        ["correct_alternative", NAME, "rotation_tests", "3", "3", ""],
        ["tiled_targets", NAME, "rotation_tests", "0", "3", "crashed"],
    ], printed


@pytest.mark.parametrize("learner, error", [
    ("clockwise", "AssertionError: tensor([[7, 4, 1]"),
    ("tiled_targets", "AssertionError: tensor([0, 1, 2, 3, 0, 1, 2, 3"),
])
def test_each_wrong_answer_fails_its_graded_cell_and_its_public_check(graded, learner, error):
    executed = nbformat.read(graded[3] / "executed" / f"{learner}.ipynb", as_version=4)
    [err] = [o for o in by_id(executed, "rotation_tests").outputs if o.output_type == "error"]
    assert f"{err.ename}: {err.evalue}".startswith(error), err.evalue
    check = next(c for c in executed.cells if c.source.startswith("checks.rotation_batch("))
    assert [o.ename for o in check.outputs if o.output_type == "error"] == ["CheckFailed"]
