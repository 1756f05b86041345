"""`sslkit.grade`: hidden tests re-inserted, points per graded cell, flags for bad submissions.

One synthetic exercise (``99_demo``: ``add`` worth 1 public + 2 hidden points, ``double`` worth
1) and one folder of submissions, graded once per module by the command line.
"""

from __future__ import annotations

import copy
import errno
import hashlib
import subprocess
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from notebook_helpers import run_grader

from sslkit import exercises, grade
from sslkit._grade_sandbox import run_job, sandbox

ANSWER = {"solution": True, "grade": False, "locked": False, "schema_version": 3,
          "task": False}
TEST = {"grade": True, "solution": False, "locked": True, "schema_version": 3,
        "task": False}
TIMEOUT = 8  # seconds of cells per run: plenty for these cells, short for the looping one
REPO = Path(__file__).resolve().parents[1]


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
    by_id(nb, "add_solution").metadata["sslkit"] = {"mirrors": ["operator.add"]}
    nb.metadata["sslkit"] = {"exercise": "99_demo", "reference_policy": "zero"}
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


def _fingerprint(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _repository() -> tuple[str, dict]:
    """``git status`` and the hash of every tracked or untracked (not ignored) file."""
    git = ["git", "-C", str(REPO)]
    status = subprocess.run([*git, "status", "--porcelain", "-uall"], capture_output=True,
                            text=True, check=True).stdout
    files = subprocess.run([*git, "ls-files", "-co", "--exclude-standard"], capture_output=True,
                           text=True, check=True).stdout.splitlines()
    return status, {f: hashlib.sha256((REPO / f).read_bytes()).hexdigest() for f in files
                    if (REPO / f).is_file()}


WRONG_ON_FLOATS = "def add(a, b):\n    return int(a) + int(b)"  # passes every check but isclose


@pytest.fixture(scope="module")
def graded(course, exercise):
    subs = course / "submitted"
    (subs / "late").mkdir(parents=True)
    (subs / ".ipynb_checkpoints").mkdir()
    solution_file = course / "solutions" / "99_demo.ipynb"

    def write(nb, name, learner=None):
        if learner:
            nb.metadata["sslkit"]["learner"] = learner
        nbformat.write(nb, subs / name)

    # correct, under an arbitrary file name, with a helper cell the learner added
    alice = submission(exercise, add_solution="def add(a, b):\n    return _plus(a, b)",
                       double_solution=CORRECT_DOUBLE)
    add_cell_after(alice, "add_solution", "def _plus(a, b):\n    return a + b")
    write(alice, "submission (1).ipynb", "alice")
    nbformat.write(alice, subs / ".ipynb_checkpoints" / "alice-checkpoint.ipynb")
    # wrong: off by one for negative numbers (passes the public test, fails the hidden one)
    write(submission(exercise, add_solution="def add(a, b):\n    return a + b - (a < 0)",
                     double_solution=CORRECT_DOUBLE), "bob.ipynb")
    # crashing: an added cell kills the process, and a non-test cell raises
    carol = submission(exercise, add_solution=CORRECT_ADD,
                       double_solution="raise ValueError('I give up')\n" + CORRECT_DOUBLE)
    add_cell_after(carol, "add_solution", "import os\nos._exit(1)")
    write(carol, "carol.ipynb")
    # tests edited: wrong code, and both visible test parts replaced by `assert True`
    write(submission(exercise, add_solution="def add(a, b):\n    return a + b + 1",
                     double_solution=CORRECT_DOUBLE, add_public="assert True",
                     add_hidden="assert True"), "dave.ipynb")
    # wrong everywhere: the notebook runs, but the given self-check of `add` fails
    write(submission(exercise, add_solution="def add(a, b):\n    return a - b",
                     double_solution=CORRECT_DOUBLE), "ivan.ipynb")
    # looping: the second answer never finishes
    write(submission(exercise, add_solution=CORRECT_ADD, double_solution="while True:\n    pass"),
          "erin.ipynb")
    # deleted cells: the `double` answer and a test cell are gone (in a sub-folder)
    frank = submission(exercise, add_solution=CORRECT_ADD)
    frank.cells = [c for c in frank.cells
                   if exercises.grade_id(c) not in ("double_solution", "add_hidden")]
    write(frank, "late/frank.ipynb")
    # not a notebook, no exercise metadata, an exercise that does not exist
    (subs / "broken.ipynb").write_text("{ this is not json")
    nometa = copy.deepcopy(exercise)
    del nometa.metadata["sslkit"]
    nbformat.write(nometa, subs / "gina.ipynb")
    sneaky = copy.deepcopy(exercise)
    sneaky.metadata["sslkit"]["exercise"] = "../solutions/99_demo"
    nbformat.write(sneaky, subs / "hank.ipynb")

    # --- cheats and tampering (graded before the honest ones: their file names sort first)
    # rewrites the solution without its hidden tests, and appends to a file of the repository
    mallory = submission(exercise, add_solution=CORRECT_ADD, double_solution=CORRECT_DOUBLE)
    add_cell_after(mallory, "add_solution", (
        "import json\n"
        f"path = {str(solution_file)!r}\n"
        "try:\n"
        "    nb = json.load(open(path))\n"
        "except OSError:\n"
        "    nb = {}\n"
        "open(path, 'w').write(json.dumps(nb).replace('HIDDEN', ''))\n"
        f"open({str(REPO / 'README.md')!r}, 'a').write('graded')"))
    write(mallory, "a1_mallory.ipynb", "mallory")
    # makes an assertion helper a no-op (in an added cell; a wrong answer on floats)
    oscar = submission(exercise, add_solution=WRONG_ON_FLOATS, double_solution=CORRECT_DOUBLE)
    add_cell_after(oscar, "add_solution", "math.isclose = lambda *args, **kwargs: True")
    write(oscar, "a2_oscar.ipynb", "oscar")
    # the same patch where the code reader cannot see it: through vars(), inside the answer
    write(submission(exercise, add_solution=(
        "def add(a, b):\n    vars(math)['isclose'] = lambda *args, **kwargs: True\n"
        "    return int(a) + int(b)"), double_solution=CORRECT_DOUBLE), "a3_olga.ipynb", "olga")
    # wraps every later cell in try/except through IPython's input transformers
    trudy = submission(exercise, add_solution=WRONG_ON_FLOATS, double_solution=CORRECT_DOUBLE)
    add_cell_after(trudy, "add_solution", (
        "def swallow(lines):\n"
        "    return ['try:\\n', *('    ' + line for line in lines), '\\nexcept Exception:\\n',"
        " '    pass\\n']\n"
        "get_ipython().input_transformers_post.append(swallow)"))
    write(trudy, "a4_trudy.ipynb", "trudy")
    # calls the library's own version of `add`, openly and through vars()
    write(submission(exercise, add_solution="import operator\n\n\ndef add(a, b):\n"
                     "    return operator.add(a, b)", double_solution=CORRECT_DOUBLE),
          "a5_rita.ipynb", "rita")
    write(submission(exercise, add_solution="import operator\n\n\ndef add(a, b):\n"
                     "    return [f for n, f in vars(operator).items() if n == 'add'][0](a, b)",
                     double_solution=CORRECT_DOUBLE), "a6_ruth.ipynb", "ruth")
    # reads the solution from disk
    sam = submission(exercise, add_solution=CORRECT_ADD, double_solution=CORRECT_DOUBLE)
    add_cell_after(sam, "add_solution", f"text = open({str(solution_file)!r}).read()")
    write(sam, "a7_sam.ipynb", "sam")

    before, repository = _fingerprint(course / "solutions"), _repository()
    out = run_grader(subs, course / "solutions", course, timeout=TIMEOUT)
    assert _fingerprint(course / "solutions") == before, "grading changed the solutions"
    assert _repository() == repository, "grading changed the repository"
    return (*out, course)


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
        # the grading run keeps only definitions: carol's `double` is defined and right
        ["carol", "99_demo", "add_public", "1", "1", "crashed"],
        ["carol", "99_demo", "add_hidden", "2", "2", "crashed"],
        ["carol", "99_demo", "double_tests", "1", "1", "crashed"],
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
        *(["mallory", "99_demo", gid, "0", pts, "crashed;reads_solution;tampered"]
          for gid, pts in (("add_public", "1"), ("add_hidden", "2"), ("double_tests", "1"))),
        *([who, "99_demo", gid, "0", pts, "tampered"] for who in ("oscar", "olga", "trudy")
          for gid, pts in (("add_public", "1"), ("add_hidden", "2"), ("double_tests", "1"))),
        *([who, "99_demo", gid, earned, pts, "uses_reference"] for who in ("rita", "ruth")
          for gid, earned, pts in (("add_public", "0", "1"), ("add_hidden", "0", "2"),
                                   ("double_tests", "1", "1"))),
        *(["sam", "99_demo", gid, "0", pts, "crashed;reads_solution"]
          for gid, pts in (("add_public", "1"), ("add_hidden", "2"), ("double_tests", "1"))),
    ]
    assert sorted(rows[1:]) == sorted(expected)


def test_the_summary_gives_totals_flags_and_reasons(graded):
    _, _, printed, _ = graded
    lines = printed.splitlines()
    row = {line.split()[0]: line for line in lines if line and not line.startswith(" ")}
    assert row["alice"].split()[2] == "4/4"
    assert row["bob"].split()[2] == "2/4"
    assert row["carol"].split()[2:] == ["4/4", "crashed"]
    assert row["dave"].split()[2:] == ["0/4", "tests_edited,", "failed_check"]
    assert row["ivan"].split()[2:] == ["0/4", "failed_check"]   # not "crashed": it runs
    assert row["erin"].split()[2:] == ["3/4", "timeout"]
    assert row["frank"].split()[2:] == ["3/4", "cells_deleted,", "unfinished"]
    assert row["rita"].split()[2:] == ["1/4", "uses_reference"]
    assert "the process died in cell(s)" in printed
    assert "ValueError: I give up" in printed
    assert f"a run went past {TIMEOUT} s" in printed
    assert "double_tests: NotImplementedError: use add" in printed
    assert "add_solution, line 5: calls operator.add" in printed       # rita, read in the code
    assert "add_solution calls operator.add" in printed                # ruth, seen at run time
    assert "assigns to math.isclose, an attribute of an imported module" in printed  # oscar
    assert "changed math.isclose" in printed                           # olga, at run time
    assert ".input_transformers_post rewrites later cells" in printed  # trudy
    assert "writes " in printed and "99_demo.ipynb" in printed         # mallory
    assert "sandbox:" in lines[-1] and "17 submission(s)" in lines[-1]


def test_feedback_reports_points_flags_and_failed_checks(graded):
    course = graded[3]
    ivan = (course / "feedback" / "ivan.md").read_text()
    assert "**Points: 0 / 4**" in ivan
    assert "| `add_hidden` | 0 / 2 |" in ivan
    assert "**failed_check**" in ivan and "public self-check of add" in ivan
    alice = (course / "feedback" / "alice.md").read_text()
    assert "**Points: 4 / 4**" in alice and "| `add_hidden` | 2 / 2 | passed |" in alice
    assert "failed" not in alice.split("|---|---|---|")[1]
    assert not (course / "feedback" / "alice-checkpoint.md").exists()


def test_hidden_tests_never_reach_the_learners_run(graded):
    course = graded[3]
    executed = nbformat.read(course / "executed" / "dave.ipynb", as_version=4)
    sources = "\n".join(c.source for c in executed.cells)
    assert "assert add(-3, 3) == 0" not in sources and "HIDDEN" not in sources
    public = by_id(executed, "add_public")
    assert public.source == "assert add(1, 2) == 3"  # the exercise's, not dave's `assert True`
    assert any(o.output_type == "error" for o in public.outputs)


def test_the_reference_policy_can_flag_without_taking_points(course, tmp_path):
    solutions = tmp_path / "solutions"
    solutions.mkdir()
    nb = nbformat.read(course / "solutions" / "99_demo.ipynb", as_version=4)
    nb.metadata["sslkit"]["reference_policy"] = "flag"
    nbformat.write(nb, solutions / "99_demo.ipynb")
    exercise = exercises.generate_notebook(nb)
    (tmp_path / "subs").mkdir()
    nbformat.write(submission(exercise, add_solution="import operator\n\n\ndef add(a, b):\n"
                              "    return operator.add(a, b)", double_solution=CORRECT_DOUBLE),
                   tmp_path / "subs" / "rita.ipynb")
    [result] = grade.grade_folder(tmp_path / "subs", solutions, timeout=TIMEOUT)
    assert (result.total, result.flag_text()) == (4, "uses_reference")


# ---------------------------------------------------------------------------- without a kernel
@pytest.fixture
def solution(course):
    return exercises.read_notebook(course / "solutions" / "99_demo.ipynb")


def test_rebuild_takes_answers_from_the_learner_and_public_tests_from_the_exercise(exercise,
                                                                                   solution):
    mine = submission(exercise, add_solution=CORRECT_ADD, add_public="assert True")
    add_cell_after(mine, "add_solution", "HELPER = 1")
    nb, graded_cells, flags = grade.rebuild(mine, solution)
    assert flags == {"tests_edited"}
    sources = [c.source for c in nb.cells]
    assert sources[2] == CORRECT_ADD and sources[3] == "HELPER = 1"
    assert by_id(nb, "add_public").source == "assert add(1, 2) == 3"
    assert by_id(nb, "add_hidden").source == "assert add(2, 2) == 4"  # no hidden part
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


def test_a_real_exercise_flags_the_librarys_own_loss(tmp_path):
    """Exercise 03 as a learner would cheat it: `nt_xent` handed to `losses.nt_xent`, directly
    and through a helper cell; the solution's own answer is the control."""
    solution = exercises.read_notebook(REPO / "solutions" / "03_contrastive_simclr.ipynb")
    exercise = nbformat.read(REPO / "exercises" / "03_contrastive_simclr.ipynb", as_version=4)
    answer = by_id(solution, "nt_xent_solution").source
    (tmp_path / "subs").mkdir()
    nbformat.write(submission(exercise, nt_xent_solution=answer), tmp_path / "subs" / "ok.ipynb")
    direct = ("def nt_xent(z1, z2, temperature=0.5):\n"
              "    return losses.nt_xent(z1, z2, temperature)")
    nbformat.write(submission(exercise, nt_xent_solution=direct), tmp_path / "subs" / "a.ipynb")
    hidden = submission(exercise, nt_xent_solution=(
        "def nt_xent(z1, z2, temperature=0.5):\n    return _loss(z1, z2, temperature)"))
    add_cell_after(hidden, "nt_xent_solution", "_loss = getattr(losses, 'nt' + '_xent')")
    nbformat.write(hidden, tmp_path / "subs" / "b.ipynb")
    results = {r.learner: r for r in grade.grade_folder(tmp_path / "subs", REPO / "solutions",
                                                        timeout=120, jobs=2)}
    assert (results["ok"].total, results["ok"].flag_text()) == (4, "")
    assert (results["a"].total, results["a"].flag_text()) == (0, "uses_reference")
    assert "nt_xent_solution, line 2: calls sslkit.losses.nt_xent" in results["a"].details[
        "uses_reference"]
    # a name built at run time escapes the code reader; the call is still seen when it runs
    assert results["b"].total == 0 and "uses_reference" in results["b"].flags
    assert "nt_xent_solution calls sslkit.losses.nt_xent" in results["b"].details[
        "uses_reference"]


def test_the_os_sandbox_hides_freezes_and_cuts_the_network(tmp_path):
    """Where `unshare` works, even code the audit hook trusts (a given cell) sees the protected
    folder empty, cannot write to the read-only ones, and has no network."""
    if sandbox() == "none":
        pytest.skip("no unprivileged user namespaces on this machine")
    secret = tmp_path / "solutions"
    secret.mkdir()
    (secret / "01.ipynb").write_text("{}")
    probe = (f"import os, socket\nprint(os.listdir({str(secret)!r}))\n"
             "try:\n    socket.create_connection(('127.0.0.1', 9), timeout=5)\n"
             "except OSError as err:\n    print(err.errno)\n"
             f"open({str(tmp_path / 'written')!r}, 'w')")
    result = run_job({"cells": [{"index": 0, "kind": "given", "source": probe}],
                      "protected": [str(secret)], "readonly": [str(tmp_path)]}, timeout=60)
    printed, error = result.cells[0].stdout.split(), result.cells[0].error
    assert printed == ["[]", str(errno.ENETUNREACH)], printed
    assert error is not None and "Read-only file system" in error[1], error
    assert not (tmp_path / "written").exists() and (secret / "01.ipynb").exists()
