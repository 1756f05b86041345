"""`sslkit.grade`: hidden tests re-inserted, points per graded cell, flags for bad submissions.

One synthetic exercise (``99_demo``: ``add`` worth 1 public + 2 hidden points, ``double`` worth
1) and one folder of submissions, graded once per module by the command line.
"""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from notebook_helpers import run_grader

from sslkit import exercises, grade

ANSWER = {"solution": True, "grade": False, "locked": False, "schema_version": 3,
          "task": False}
TEST = {"grade": True, "solution": False, "locked": True, "schema_version": 3,
        "task": False}
TIMEOUT = 8  # seconds per notebook: plenty for these cells, short for the looping one


def cell(source, kind="code", **nbgrader):
    c = new_code_cell(source) if kind == "code" else new_markdown_cell(source)
    if nbgrader:
        c.metadata["nbgrader"] = nbgrader
    return c


def demo_solution():
    nb = new_notebook(cells=[
        cell("# 99 demo\nImplement `add` and `double`.", kind="markdown"),
        cell("import math"),
        cell("def add(a, b):\n    ### BEGIN SOLUTION\n    # TODO: return a + b\n"
             "    return a + b\n    ### END SOLUTION", grade_id="add_solution", **ANSWER),
        cell("assert add(1, 2) == 3", grade_id="add_public", points=1, **TEST),
        cell("assert add(10, 20) == 30, 'public self-check of add'"),  # given, not graded
        cell("assert add(2, 2) == 4\n### BEGIN HIDDEN TESTS\nassert add(-3, 3) == 0\n"
             "assert math.isclose(add(0.5, 0.25), 0.75)\n### END HIDDEN TESTS",
             grade_id="add_hidden", points=2, **TEST),
        cell("def double(x):\n    ### BEGIN SOLUTION\n    # TODO: use add\n"
             "    return add(x, x)\n    ### END SOLUTION", grade_id="double_solution", **ANSWER),
        cell("assert double(3) == 6", grade_id="double_tests", points=1, **TEST),
    ])
    nb.metadata["sslkit"] = {"exercise": "99_demo"}
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return nb


def by_id(nb, gid):
    return next(c for c in nb.cells if exercises.grade_id(c) == gid)


def submission(exercise, **answers):
    """A copy of the generated exercise with some answer/test cells' sources replaced."""
    nb = copy.deepcopy(exercise)
    for gid, source in answers.items():
        by_id(nb, gid).source = source
    return nb


def add_cell_after(nb, gid, source):
    index = nb.cells.index(by_id(nb, gid))
    nb.cells.insert(index + 1, new_code_cell(source))


CORRECT_ADD = "def add(a, b):\n    return a + b"
CORRECT_DOUBLE = "def double(x):\n    return add(x, x)"


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("grading")
    (root / "solutions").mkdir()
    nbformat.write(demo_solution(), root / "solutions" / "99_demo.ipynb")
    assert exercises.main(["--solutions", str(root / "solutions"),
                           "--exercises", str(root / "exercises")]) == 0
    return root


@pytest.fixture(scope="module")
def exercise(course):
    return nbformat.read(course / "exercises" / "99_demo.ipynb", as_version=4)


@pytest.fixture(scope="module")
def graded(course, exercise):
    subs = course / "submitted"
    (subs / "late").mkdir(parents=True)
    (subs / ".ipynb_checkpoints").mkdir()

    # correct, under an arbitrary file name, with a helper cell the learner added
    alice = submission(exercise, add_solution="def add(a, b):\n    return _plus(a, b)",
                       double_solution=CORRECT_DOUBLE)
    add_cell_after(alice, "add_solution", "def _plus(a, b):\n    return a + b")
    alice.metadata["sslkit"]["learner"] = "alice"
    nbformat.write(alice, subs / "submission (1).ipynb")
    nbformat.write(alice, subs / ".ipynb_checkpoints" / "alice-checkpoint.ipynb")
    # wrong: off by one for negative numbers (passes the public test, fails the hidden one)
    nbformat.write(submission(exercise, add_solution="def add(a, b):\n    return a + b - (a < 0)",
                              double_solution=CORRECT_DOUBLE), subs / "bob.ipynb")
    # crashing: an added cell kills the kernel, and a non-test cell raises
    carol = submission(exercise, add_solution=CORRECT_ADD,
                       double_solution="raise ValueError('I give up')\n" + CORRECT_DOUBLE)
    add_cell_after(carol, "add_solution", "import os\nos._exit(1)")
    nbformat.write(carol, subs / "carol.ipynb")
    # tampered: wrong code, and both visible test parts replaced by `assert True`
    nbformat.write(submission(exercise, add_solution="def add(a, b):\n    return a + b + 1",
                              double_solution=CORRECT_DOUBLE, add_public="assert True",
                              add_hidden="assert True"), subs / "dave.ipynb")
    # wrong everywhere: the notebook runs, but the given self-check of `add` fails
    nbformat.write(submission(exercise, add_solution="def add(a, b):\n    return a - b",
                              double_solution=CORRECT_DOUBLE), subs / "ivan.ipynb")
    # looping: the second answer never finishes
    nbformat.write(submission(exercise, add_solution=CORRECT_ADD,
                              double_solution="while True:\n    pass"), subs / "erin.ipynb")
    # deleted cells: the `double` answer and a test cell are gone (in a sub-folder)
    frank = submission(exercise, add_solution=CORRECT_ADD)
    frank.cells = [c for c in frank.cells
                   if exercises.grade_id(c) not in ("double_solution", "add_hidden")]
    nbformat.write(frank, subs / "late" / "frank.ipynb")
    # not a notebook, no exercise metadata, an exercise that does not exist
    (subs / "broken.ipynb").write_text("{ this is not json")
    nometa = copy.deepcopy(exercise)
    del nometa.metadata["sslkit"]
    nbformat.write(nometa, subs / "gina.ipynb")
    sneaky = copy.deepcopy(exercise)
    sneaky.metadata["sslkit"]["exercise"] = "../solutions/99_demo"
    nbformat.write(sneaky, subs / "hank.ipynb")

    return (*run_grader(subs, course / "solutions", course, timeout=TIMEOUT), course)


def test_grading_the_mixed_folder_writes_the_right_points_and_flags(graded):
    status, rows, _, _ = graded
    assert status == 0
    assert rows[0] == ["learner", "exercise", "cell", "points", "max_points", "flags"]
    expected = [
        ["alice", "99_demo", "add_public", "1", "1", ""],
        ["alice", "99_demo", "add_hidden", "2", "2", ""],
        ["alice", "99_demo", "double_tests", "1", "1", ""],
        ["bob", "99_demo", "add_public", "1", "1", ""],
        ["bob", "99_demo", "add_hidden", "0", "2", ""],
        ["bob", "99_demo", "double_tests", "1", "1", ""],
        ["broken", "", "", "0", "0", "unreadable"],
        ["carol", "99_demo", "add_public", "1", "1", "crashed"],
        ["carol", "99_demo", "add_hidden", "2", "2", "crashed"],
        ["carol", "99_demo", "double_tests", "0", "1", "crashed"],
        ["dave", "99_demo", "add_public", "0", "1", "tests_edited;failed_check"],
        ["dave", "99_demo", "add_hidden", "0", "2", "tests_edited;failed_check"],
        ["dave", "99_demo", "double_tests", "0", "1", "tests_edited;failed_check"],
        ["erin", "99_demo", "add_public", "1", "1", "timeout"],
        ["erin", "99_demo", "add_hidden", "2", "2", "timeout"],
        ["erin", "99_demo", "double_tests", "0", "1", "timeout"],
        ["gina", "", "", "0", "0", "unknown_exercise"],
        ["ivan", "99_demo", "add_public", "0", "1", "failed_check"],
        ["ivan", "99_demo", "add_hidden", "0", "2", "failed_check"],
        ["ivan", "99_demo", "double_tests", "0", "1", "failed_check"],
        ["hank", "../solutions/99_demo", "", "0", "0", "unknown_exercise"],
        ["frank", "99_demo", "add_public", "1", "1", "cells_deleted;unfinished"],
        ["frank", "99_demo", "add_hidden", "2", "2", "cells_deleted;unfinished"],
        ["frank", "99_demo", "double_tests", "0", "1", "cells_deleted;unfinished"],
    ]
    assert sorted(rows[1:]) == sorted(expected)


def test_the_summary_gives_totals_flags_and_reasons(graded):
    _, _, printed, _ = graded
    lines = printed.splitlines()
    row = {line.split()[0]: line for line in lines if line and not line.startswith(" ")}
    assert row["alice"].split()[2] == "4/4"
    assert row["bob"].split()[2] == "2/4"
    assert row["carol"].split()[2:] == ["3/4", "crashed"]
    assert row["dave"].split()[2:] == ["0/4", "tests_edited,", "failed_check"]
    assert row["ivan"].split()[2:] == ["0/4", "failed_check"]   # not "crashed": it runs
    assert row["erin"].split()[2:] == ["3/4", "timeout"]
    assert row["frank"].split()[2:] == ["3/4", "cells_deleted,", "unfinished"]
    assert "DeadKernelError: the kernel died in this cell" in printed
    assert "ValueError: I give up" in printed
    assert f"TimeoutError: the notebook ran past {TIMEOUT} s" in printed
    assert "double_tests: NotImplementedError: use add" in printed
    assert "wrote" in lines[-1] and "10 submission(s)" in lines[-1]


def test_executed_notebooks_are_kept_for_feedback(graded):
    course = graded[3]
    executed = nbformat.read(course / "executed" / "dave.ipynb", as_version=4)
    hidden = by_id(executed, "add_hidden")
    assert "assert add(-3, 3) == 0" in hidden.source  # the solution's test ran, not "assert True"
    assert any(o.output_type == "error" for o in hidden.outputs)
    assert not (course / "executed" / "alice-checkpoint.ipynb").exists()


# ---------------------------------------------------------------------------- without a kernel
@pytest.fixture
def solution(course):
    return exercises.read_notebook(course / "solutions" / "99_demo.ipynb")


def test_rebuild_takes_answers_from_the_learner_and_tests_from_the_solution(exercise, solution):
    mine = submission(exercise, add_solution=CORRECT_ADD, add_public="assert True")
    add_cell_after(mine, "add_solution", "HELPER = 1")
    nb, graded_cells, flags = grade.rebuild(mine, solution)
    assert flags == {"tests_edited"}
    sources = [c.source for c in nb.cells]
    assert sources[2] == CORRECT_ADD and sources[3] == "HELPER = 1"
    assert by_id(nb, "add_public").source == "assert add(1, 2) == 3"
    assert "### BEGIN HIDDEN TESTS" in by_id(nb, "add_hidden").source
    assert [(gid, pts) for _, gid, pts in graded_cells] == [
        ("add_public", 1.0), ("add_hidden", 2.0), ("double_tests", 1.0)]
    assert all(nb.cells[i].metadata["nbgrader"]["grade_id"] == gid for i, gid, _ in graded_cells)


def test_rebuild_recognises_plain_cells_whose_id_was_lost(exercise, solution):
    mine = submission(exercise, add_solution=CORRECT_ADD)
    for c in mine.cells:
        c["id"] = "x" + c["id"][:7]
    mine.cells[1].source = "import math  "  # the setup cell, with trailing spaces
    nb, _, flags = grade.rebuild(mine, solution)
    assert flags == set()
    assert [c.source for c in nb.cells].count("import math") == 1
    assert len(nb.cells) == len(solution.cells)


def test_rebuild_ignores_whitespace_and_flags_deleted_cells(exercise, solution):
    mine = submission(exercise)
    by_id(mine, "add_public").source += "\n\n"
    nb, _, flags = grade.rebuild(mine, solution)
    assert flags == set()
    mine.cells = [c for c in mine.cells if exercises.grade_id(c) != "double_solution"]
    nb, _, flags = grade.rebuild(mine, solution)
    assert flags == {"cells_deleted"}
    assert 'raise NotImplementedError("use add")' in by_id(nb, "double_solution").source


def test_learner_id_comes_from_metadata_or_the_file_name(exercise):
    nb = copy.deepcopy(exercise)
    assert grade.learner_id(nb, Path("x/Submission 3.ipynb")) == "Submission 3"
    nb.metadata["sslkit"]["learner"] = "  s1234 "
    assert grade.learner_id(nb, Path("x/Submission 3.ipynb")) == "s1234"


def test_two_submissions_with_the_same_id_are_told_apart(course, tmp_path):
    for folder in ("group_a", "group_b"):
        (tmp_path / folder).mkdir()
        nbformat.write(new_notebook(), tmp_path / folder / "lab.ipynb")  # no kernel needed
    results = grade.grade_folder(tmp_path, course / "solutions", timeout=5)
    assert [r.learner for r in results] == ["group_a/lab", "group_b/lab"]
    assert [r.flag_text() for r in results] == ["unknown_exercise;duplicate_learner"] * 2


@pytest.mark.parametrize("kwargs, match", [
    ({"timeout": 0}, "timeout=0 is invalid"), ({"timeout": 2.5}, "timeout=2.5 is invalid"),
])
def test_bad_arguments_are_rejected(course, tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        grade.grade_folder(tmp_path, course / "solutions", **kwargs)


def test_missing_folders_are_rejected(course, tmp_path, capsys):
    with pytest.raises(ValueError, match="submissions=.* not a folder"):
        grade.grade_folder(tmp_path / "nope", course / "solutions")
    with pytest.raises(ValueError, match="solutions=.* not a folder"):
        grade.grade_folder(tmp_path, tmp_path / "nope")
    with pytest.raises(SystemExit) as info:
        grade.main([str(tmp_path), "--out", str(tmp_path / "g.csv"), "--timeout", "0",
                    "--solutions", str(course / "solutions")])
    assert info.value.code == 2 and "timeout=0" in capsys.readouterr().err
